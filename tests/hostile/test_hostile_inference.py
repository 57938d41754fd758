"""Hostile inference requests against a real serving process (HTTP and gRPC).

Every answer must be the expected 4xx (or 200 where the input is odd but valid), with a
JSON body; 503 only as the memory budget's "busy, retry" with ``Retry-After``; never
another 5xx; the server stays up and under its memory limit (checked in conftest).
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from tests.hostile.conftest import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, Figures, Served
from thunderbolt.serving.v2grpc import open_inference_grpc_pb2 as pb

INFER = "/v2/models/iris/infer"
ROW = [1.5, 2.5, 3.5, 4.5]


def _doc(**tensor: Any) -> dict[str, Any]:
    base = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}
    return {"inputs": [{**base, **tensor}]}


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def _binary(values: np.ndarray, claimed: int | None = None) -> tuple[bytes, dict[str, str]]:
    blob = values.astype(np.float32).tobytes()
    size = len(blob) if claimed is None else claimed
    header = _raw(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(values.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    )
    return header + blob, {"Inference-Header-Content-Length": str(len(header))}


BINARY_OK, BINARY_HEADERS = _binary(np.ones((2, 4)))
BINARY_NAN, _ = _binary(np.array([[1, np.nan, 3, 4]]))
BINARY_INF, _ = _binary(np.array([[1, np.inf, 3, 4]]))
BINARY_SHORT, SHORT_HEADERS = _binary(np.ones((2, 4)), claimed=64)
BIG = 17 * 1024 * 1024
GZIP_BOMB = gzip.compress(b" " * (40 * 1024 * 1024))  # 40 MiB of spaces in ~40 KiB

# name -> (path, body, headers, accepted status codes)
CASES: dict[str, tuple[str, bytes, dict[str, str], set[int]]] = {
    # malformed JSON
    "invalid json": (INFER, b"{nope", {}, {400}),
    "truncated json": (INFER, _raw(_doc())[:-7], {}, {400}),
    "empty body": (INFER, b"", {}, {400}),
    "json array": (INFER, b"[1, 2]", {}, {400}),
    "json string": (INFER, b'"inputs"', {}, {400}),
    "json null": (INFER, b"null", {}, {400}),
    "not utf-8": (INFER, b"\xff\xfe\x00\x01", {}, {400}),
    "lone surrogate escape": (INFER, _raw(_doc()).replace(b'"input"', b'"\\ud800"', 1), {}, {400}),
    "trailing garbage": (INFER, _raw(_doc()) + b"}}}", {}, {400}),
    "duplicate keys": (INFER, b'{"inputs": [], "inputs": 7}', {}, {400}),
    # non-finite and out-of-range numbers
    "NaN literal": (INFER, _raw(_doc()).replace(b"1.5", b"NaN"), {}, {400}),
    "Infinity literal": (INFER, _raw(_doc()).replace(b"1.5", b"Infinity"), {}, {400}),
    "-Infinity literal": (INFER, _raw(_doc()).replace(b"1.5", b"-Infinity"), {}, {400}),
    "1e39 as FP32": (INFER, _raw(_doc(data=[1e39, 1, 2, 3])), {}, {400}),
    "1e400 (inf in float64)": (INFER, _raw(_doc()).replace(b"1.5", b"1e400"), {}, {400}),
    "output overflows to inf": (INFER, _raw(_doc(data=[3e38] * 4)), {}, {422}),
    "int beyond int64": (INFER, _raw(_doc()).replace(b"1.5", b"9" * 400), {}, {400}),
    # wrong shapes and datatypes
    "wrong datatype": (INFER, _raw(_doc(datatype="INT64", data=[1, 2, 3, 4])), {}, {400}),
    "unknown datatype": (INFER, _raw(_doc(datatype="FP128")), {}, {400}),
    "datatype not a string": (INFER, _raw(_doc(datatype=["FP32"])), {}, {400}),
    "wrong width": (INFER, _raw(_doc(shape=[1, 5], data=[*ROW, 1])), {}, {400}),
    "wrong rank": (INFER, _raw(_doc(shape=[4])), {}, {400}),
    "rank 10": (INFER, _raw(_doc(shape=[1] * 9 + [4])), {}, {400}),
    "negative dimension": (INFER, _raw(_doc(shape=[-1, 4])), {}, {400}),
    "zero rows": (INFER, _raw(_doc(shape=[0, 4], data=[])), {}, {400}),
    "huge shape, little data": (INFER, _raw(_doc(shape=[10**12, 4])), {}, {400}),
    "shape beyond int64": (INFER, _raw(_doc(shape=[10**30, 4])), {}, {400}),
    "float shape": (INFER, _raw(_doc(shape=[1.0, 4.0])), {}, {400}),
    "string shape": (INFER, _raw(_doc(shape="1,4")), {}, {400}),
    "bool shape": (INFER, _raw(_doc(shape=[True, 4])), {}, {400}),
    "strings as data": (INFER, _raw(_doc(data=["1", "2", "3", "4"])), {}, {400}),
    "nulls as data": (INFER, _raw(_doc(data=[None] * 4)), {}, {400}),
    "booleans as FP32": (INFER, _raw(_doc(data=[True, False, True, False])), {}, {400}),
    "objects as data": (INFER, _raw(_doc(data=[{}, {}, {}, {}])), {}, {400}),
    "ragged data": (INFER, _raw(_doc(shape=[2, 2], data=[[1, 2], [3]])), {}, {400}),
    "data not a list": (INFER, _raw(_doc(data="1,2,3,4")), {}, {400}),
    "data longer than shape": (INFER, _raw(_doc(data=[*ROW, 5.5])), {}, {400}),
    # structure
    "deeply nested arrays": (INFER, _nested(200_000), {}, {400}),
    "deeply nested objects": (INFER, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, {}, {400}),
    "deeply nested data": (
        INFER,
        _raw(_doc()).replace(b"[1.5", _nested(50_000)[:-1] + b"1.5"),
        {},
        {400},
    ),  # noqa: E501
    "nested parameters echo": (INFER, _raw({**_doc(), "parameters": {"a": [[[[1]]]]}}), {}, {200}),
    "inputs empty": (INFER, _raw({"inputs": []}), {}, {400}),
    "inputs not a list": (INFER, _raw({"inputs": {"name": "input"}}), {}, {400}),
    "input twice": (INFER, _raw({"inputs": _doc()["inputs"] * 2}), {}, {400}),
    "unknown input": (INFER, _raw(_doc(name="../../etc/passwd")), {}, {400}),
    "id not a string": (INFER, _raw({**_doc(), "id": {"x": 1}}), {}, {400}),
    "unknown output": (INFER, _raw({**_doc(), "outputs": [{"name": "secret"}]}), {}, {400}),
    "classification extension": (
        INFER,
        _raw({**_doc(), "outputs": [{"name": "output", "parameters": {"classification": 2}}]}),
        {},
        {400},  # noqa: E501
    ),  # fmt: skip
    # binary tensor extension
    "binary ok": (INFER, BINARY_OK, BINARY_HEADERS, {200}),
    "binary NaN": (INFER, BINARY_NAN, BINARY_HEADERS, {400}),
    "binary Infinity": (INFER, BINARY_INF, BINARY_HEADERS, {400}),
    "binary size mismatch": (INFER, BINARY_SHORT, SHORT_HEADERS, {400}),
    "header length not a number": (
        INFER,
        BINARY_OK,
        {"Inference-Header-Content-Length": "x"},
        {400},
    ),  # noqa: E501
    "header length past the body": (
        INFER,
        BINARY_OK,
        {"Inference-Header-Content-Length": "99999999"},
        {400},
    ),  # noqa: E501
    "header length negative": (INFER, BINARY_OK, {"Inference-Header-Content-Length": "-5"}, {400}),
    # sizes and encodings
    "oversize body": (INFER, b"[" + b"1," * (BIG // 2) + b"1]", {}, {413}),
    "gzip bomb": (INFER, GZIP_BOMB, {"Content-Encoding": "gzip"}, {413}),
    "corrupt gzip": (INFER, b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, {400}),
    "corrupt deflate": (INFER, b"\x78\x9cnot deflate", {"Content-Encoding": "deflate"}, {400}),
    "gzip ok": (INFER, gzip.compress(_raw(_doc())), {"Content-Encoding": "gzip"}, {200}),
    "deflate ok": (INFER, zlib.compress(_raw(_doc())), {"Content-Encoding": "deflate"}, {200}),
    "unknown encoding": (INFER, _raw(_doc()), {"Content-Encoding": "br-zstd-xyz"}, {400, 415}),
    "never fits the budget": (INFER, b"[" + b"[]," * (5 * 1024 * 1024) + b"[]]", {}, {413}),
    # content types: the body decides, as for tritonclient (which sends none or octet-stream)
    "text/plain content type": (INFER, _raw(_doc()), {"Content-Type": "text/plain"}, {200}),
    "form content type": (
        INFER,
        b"a=1&b=2",
        {"Content-Type": "application/x-www-form-urlencoded"},
        {400},
    ),  # noqa: E501
    "multipart content type": (
        INFER,
        b"--x\r\n\r\n--x--",
        {"Content-Type": "multipart/form-data; boundary=x"},
        {400},
    ),  # noqa: E501
    "xml content type": (INFER, b"<inputs/>", {"Content-Type": "application/xml"}, {400}),
    # routing
    "unknown model": ("/v2/models/secret/infer", _raw(_doc()), {}, {404}),
    "unknown version": ("/v2/models/iris/versions/9/infer", _raw(_doc()), {}, {404}),
    "path traversal": ("/v2/models/../../../etc/passwd", _raw(_doc()), {}, {404}),
    "encoded traversal": ("/v2/models/%2e%2e%2f%2e%2e/infer", _raw(_doc()), {}, {404}),
}


def _check(
    response: requests.Response, expected: set[int], figures: Figures, category: str
) -> None:
    figures.record(category, response.status_code)
    assert response.status_code in expected, (response.status_code, response.text[:300])
    body = response.json()  # every answer is JSON
    if response.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"]
    if response.status_code == 503:
        assert response.headers.get("Retry-After") == "1"
    else:
        assert response.status_code < 500


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_http_request(served: Served, figures: Figures, name: str) -> None:
    path, body, headers, expected = CASES[name]
    response = requests.post(served.base + path, data=body, headers=headers, timeout=60)
    _check(response, expected, figures, "http request")


def test_wrong_methods(served: Served, figures: Figures) -> None:
    for method, path in [("GET", INFER), ("PUT", INFER), ("DELETE", "/v2/models/iris")]:
        response = requests.request(method, served.base + path, timeout=10)
        _check(response, {405}, figures, "http request")


def test_a_chunked_body_without_length_is_read_against_the_limit(
    served: Served, figures: Figures
) -> None:
    def pieces(total: int) -> Any:
        yield b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ['
        for _ in range(total // 65536):
            yield b" " * 65536
        yield b"1, 2, 3, 4]}]}"

    small = requests.post(served.base + INFER, data=pieces(65536), timeout=60)
    _check(small, {200}, figures, "http request")
    huge = requests.post(served.base + INFER, data=pieces(20 * 1024 * 1024), timeout=60)
    _check(huge, {413}, figures, "http request")


def _raw_exchange(served: Served, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", served.port), timeout=wait) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
        b"POST " + b"/a" * 10000 + b" HTTP/1.1\r\n\r\n",  # request line over the limit
        b"POST /v2 HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n",  # header over the limit
        b"POST " + INFER.encode() + b" HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST "
        + INFER.encode()
        + b" HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  # noqa: E501
    ],
    ids=["garbage", "tls", "long-line", "long-header", "negative-length", "smuggling"],
)
def test_malformed_http_gets_a_json_400(served: Served, figures: Figures, data: bytes) -> None:
    answer = _raw_exchange(served, data)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0
    figures.record("malformed HTTP", status)
    assert status in {400, 413, 431}, answer[:200]
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert "error" in json.loads(body)


def _hold(served: Served, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    sock.sendall(data)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return False, received
    finally:
        sock.close()
    return True, received


def test_slow_loris_headers_are_cut_off(served: Served, figures: Figures) -> None:
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n".encode()
    socks = [_hold(served, head[: 5 + i % 40]) for i in range(50)]
    started = time.monotonic()
    outcomes = [_closed_within(s, HEADER_TIMEOUT_S + 3) for s in socks]
    took = time.monotonic() - started
    for closed, received in outcomes:
        figures.record("slow-loris", "closed" if closed else "open")
        assert closed and received == b""
    assert took < HEADER_TIMEOUT_S + 3


def test_slow_loris_bodies_get_408(served: Served, figures: Figures) -> None:
    body = _raw(_doc())
    head = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    socks = [_hold(served, head + body[:10]) for _ in range(20)]
    for sock in socks[:5]:  # a few keep trickling bytes: the deadline is for the whole body
        sock.sendall(body[10:12])
    outcomes = [_closed_within(s, BODY_TIMEOUT_S + 3) for s in socks]
    for closed, received in outcomes:
        status = received.split(b" ", 2)[1].decode() if received else "none"
        figures.record("slow-loris", status)
        assert closed and received.startswith(b"HTTP/1.1 408"), received[:100]
        assert "error" in json.loads(received.split(b"\r\n\r\n", 1)[1])


def test_the_server_still_answers_after_the_slow_clients(served: Served, figures: Figures) -> None:
    response = requests.post(served.base + INFER, json=_doc(), timeout=10)
    _check(response, {200}, figures, "http request")
    assert len(response.json()["outputs"][0]["data"]) == 3


def _large_body() -> bytes:
    """The issue's request: shape [900000, 4], 13.7 MiB of short numbers."""
    data = np.round(np.random.default_rng(0).uniform(1, 9, size=(900000, 4)), 1)
    doc = _doc(shape=[900000, 4], data=data.reshape(-1).tolist())
    return json.dumps(doc, separators=(",", ":")).encode()


def test_concurrent_large_requests_are_served_or_refused_never_oom(
    served: Served, figures: Figures
) -> None:
    body = _large_body()
    assert 13 * 2**20 < len(body) < 14 * 2**20
    answers: list[requests.Response] = []

    def send() -> None:
        answers.append(requests.post(served.base + INFER, data=body, timeout=120))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for response in answers:
        _check(response, {200, 503}, figures, "concurrent large")
        if response.status_code == 200:
            assert len(response.content) < 2.5 * len(body)  # not ~4x the request any more
    assert any(r.status_code == 200 for r in answers)
    assert served.max_rss < 512 * 2**20


def _grpc_infer(served: Served) -> Callable[..., Any]:
    channel = grpc.insecure_channel(
        served.grpc_url,  # type: ignore[attr-defined]
        options=[("grpc.max_send_message_length", 64 * 2**20)],
    )
    return channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
        response_deserializer=pb.ModelInferResponse.FromString,
    )


def _tensor(shape: list[int], values: list[float], datatype: str = "FP32") -> Any:
    return pb.ModelInferRequest.InferInputTensor(
        name="input", datatype=datatype, shape=shape, contents=pb.InferTensorContents(fp32_contents=values)
    )  # fmt: skip


GRPC_CASES: dict[str, tuple[Any, set[grpc.StatusCode]]] = {
    "ok": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([1, 4], ROW)]), {grpc.StatusCode.OK}),
    "NaN contents": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([1, 4], [float("nan")] * 4)]), {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "inf contents": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([1, 4], [float("inf")] * 4)]), {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "wrong shape": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([2, 4], ROW)]), {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "huge shape": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([2**62, 4], ROW)]), {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "wrong datatype": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([1, 4], ROW, "FP64")]), {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "raw size mismatch": (
        pb.ModelInferRequest(model_name="iris", inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[1, 4])], raw_input_contents=[b"\x00" * 15]),  # noqa: E501
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    "raw NaN": (
        pb.ModelInferRequest(model_name="iris", inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[1, 4])], raw_input_contents=[struct.pack("<4f", 1, float("nan"), 2, 3)]),  # noqa: E501
        {grpc.StatusCode.INVALID_ARGUMENT},
    ),
    "no inputs": (pb.ModelInferRequest(model_name="iris"), {grpc.StatusCode.INVALID_ARGUMENT}),
    "unknown model": (pb.ModelInferRequest(model_name="secret", inputs=[_tensor([1, 4], ROW)]), {grpc.StatusCode.NOT_FOUND}),  # noqa: E501
    "garbage message": (b"\xff\xff\xff\xff\x0f garbage", {grpc.StatusCode.INVALID_ARGUMENT}),
    "truncated message": (pb.ModelInferRequest(model_name="iris", inputs=[_tensor([1, 4], ROW)]).SerializeToString()[:-3], {grpc.StatusCode.INVALID_ARGUMENT}),  # noqa: E501
    "message over the limit": (
        pb.ModelInferRequest(model_name="iris", inputs=[pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=[1, 4])], raw_input_contents=[b"\x00" * (17 * 2**20)]),  # noqa: E501
        {grpc.StatusCode.RESOURCE_EXHAUSTED},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(GRPC_CASES))
def test_hostile_grpc_request(served: Served, figures: Figures, name: str) -> None:
    message, expected = GRPC_CASES[name]
    infer = _grpc_infer(served)
    try:
        infer(message, timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
        assert exc.details()
    figures.record("grpc request", code.name)
    assert code in expected
    assert code not in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def test_grpc_port_survives_raw_garbage(served: Served, figures: Figures) -> None:
    host, port = served.grpc_url.split(":")  # type: ignore[attr-defined]
    for data in [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00" * 1000,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64,
    ]:  # noqa: E501
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(data)
            try:
                while sock.recv(65536):
                    pass
            except (TimeoutError, ConnectionResetError):
                pass
        figures.record("grpc garbage", "closed")
    infer = _grpc_infer(served)
    infer(GRPC_CASES["ok"][0], timeout=10)  # still serving
