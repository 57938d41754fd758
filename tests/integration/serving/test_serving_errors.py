"""Client mistakes get a 4xx with a V2 error body; model failures a 500; nothing crashes."""

from __future__ import annotations

import gzip
import json
import pathlib
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models
from thunderbolt.deploy.promparse import snapshot

GOOD = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def _doc(**tensor: object) -> bytes:
    return json.dumps({"inputs": [{**GOOD["inputs"][0], **tensor}]}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("errors")
    uri, checksum = onnx_models.write_model(onnx_models.linear_model(), tmp)
    proc = ServerProcess(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "iris", "--max-body-bytes", "4096",
        log_dir=tmp,
    )  # fmt: skip
    proc.wait_ready()
    yield proc
    assert proc.stop() == 0
    assert "Traceback" not in proc.logs()


INFER = "/v2/models/iris/infer"
# (method, path, body, headers, expected status)
MALFORMED: dict[str, tuple[str, str, bytes, dict[str, str], int]] = {
    "invalid json": ("POST", INFER, b"{nope", {}, 400),
    "empty body": ("POST", INFER, b"", {}, 400),
    "json array": ("POST", INFER, b"[1,2]", {}, 400),
    "not utf-8": ("POST", INFER, b"\xff\xfe\x00", {}, 400),
    "no inputs": ("POST", INFER, b'{"id": "x"}', {}, 400),
    "wrong tensor name": ("POST", INFER, _doc(name="features"), {}, 400),
    "wrong datatype": ("POST", INFER, _doc(datatype="INT64", data=[1, 2, 3, 4]), {}, 400),
    "unknown datatype": ("POST", INFER, _doc(datatype="FP8"), {}, 400),
    "wrong width": ("POST", INFER, _doc(shape=[1, 5], data=[1, 2, 3, 4, 5]), {}, 400),
    "wrong rank": ("POST", INFER, _doc(shape=[4]), {}, 400),
    "data shorter than shape": ("POST", INFER, _doc(shape=[2, 4]), {}, 400),
    "data longer than shape": ("POST", INFER, _doc(data=[1, 2, 3, 4, 5]), {}, 400),
    "strings in data": ("POST", INFER, _doc(data=["a", "b", "c", "d"]), {}, 400),
    "null in data": ("POST", INFER, _doc(data=[1, None, 3, 4]), {}, 400),
    "ragged data": ("POST", INFER, _doc(data=[[1, 2], [3]]), {}, 400),
    "zero rows": ("POST", INFER, _doc(shape=[0, 4], data=[]), {}, 400),
    "unknown output": (
        "POST",
        INFER,
        json.dumps({**GOOD, "outputs": [{"name": "logits"}]}).encode(),
        {},
        400,
    ),
    "id not a string": ("POST", INFER, json.dumps({**GOOD, "id": 3}).encode(), {}, 400),
    "bad header length": ("POST", INFER, _doc(), {"Inference-Header-Content-Length": "x"}, 400),
    "header length past body": (
        "POST",
        INFER,
        _doc(),
        {"Inference-Header-Content-Length": "100000"},
        400,
    ),
    "binary size mismatch": (
        "POST",
        INFER,
        _doc(data=None, parameters={"binary_data_size": 8}).replace(b'"data": null, ', b""),
        {},
        400,
    ),  # fmt: skip
    "oversized body": ("POST", INFER, b"[" + b"1," * 5000 + b"1]", {}, 413),
    "oversized after gunzip": (
        "POST",
        INFER,
        gzip.compress(b" " * 100_000),
        {"Content-Encoding": "gzip"},
        413,
    ),
    "unknown model": ("POST", "/v2/models/nope/infer", _doc(), {}, 404),
    "unknown version": ("POST", "/v2/models/iris/versions/9/infer", _doc(), {}, 404),
    "unknown model metadata": ("GET", "/v2/models/nope", b"", {}, 404),
    "unknown path": ("GET", "/v3/everything", b"", {}, 404),
    "GET infer": ("GET", INFER, b"", {}, 405),
    "POST to live": ("POST", "/v2/health/live", b"{}", {}, 405),
    "DELETE model": ("DELETE", "/v2/models/iris", b"", {}, 405),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_gets_4xx_with_error_body(server: ServerProcess, case: str) -> None:
    import requests

    method, path, body, headers, status = MALFORMED[case]
    response = requests.request(method, server.base + path, data=body, headers=headers, timeout=10)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and error


def test_server_still_healthy_after_malformed_requests(server: ServerProcess) -> None:
    import requests

    for method, path, body, headers, _ in MALFORMED.values():
        requests.request(method, server.base + path, data=body, headers=headers, timeout=10)
    # a raw socket that sends garbage and hangs up mid-request
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b'POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"in'
        )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        sock.recv(1024)
    assert server.get("/v2/health/ready").status_code == 200
    response = server.post(INFER, json=GOOD)
    assert response.status_code == 200 and response.json()["outputs"][0]["shape"] == [1, 3]
    snap = snapshot(server.get("/metrics").text, "iris")
    assert snap.server_errors == 0 and snap.client_errors >= 20


def test_a_model_that_fails_answers_500_and_counts_as_error(tmp_path: pathlib.Path) -> None:
    uri, checksum = onnx_models.write_model(onnx_models.failing_model(), tmp_path)
    proc = ServerProcess(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "bad", log_dir=tmp_path
    )
    try:
        proc.wait_ready()
        body = {
            "inputs": [
                {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": list(range(8))}
            ]
        }
        for _ in range(3):
            response = proc.post("/v2/models/bad/infer", json=body)
            assert response.status_code == 500
            assert "model failed" in response.json()["error"]
        assert proc.get("/v2/health/live").status_code == 200
        snap = snapshot(proc.get("/metrics").text, "bad")
        assert snap.requests == 3 and snap.error_rate() == 1.0
    finally:
        assert proc.stop() == 0


def test_fixed_shape_model_reports_static_dims(tmp_path: pathlib.Path) -> None:
    uri, _ = onnx_models.write_model(onnx_models.fixed_batch_model(), tmp_path)
    proc = ServerProcess("--model-uri", uri, "--model-name", "fixed", log_dir=tmp_path)
    try:
        proc.wait_ready()
        assert proc.get("/v2/models/fixed").json()["inputs"][0]["shape"] == [1, 4]
        x = np.arange(4, dtype=np.float32)
        body = {
            "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": x.tolist()}]
        }
        assert (
            proc.post("/v2/models/fixed/infer", json=body).json()["outputs"][0]["data"]
            == (-x).tolist()
        )
        assert "unverified" in proc.logs()
    finally:
        proc.stop()
