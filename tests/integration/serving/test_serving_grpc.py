"""V2 over gRPC, driven by tritonclient's unmodified gRPC client; FP16 and BYTES tensors
over both transports. The server is a subprocess serving HTTP and gRPC at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.serving.server_process import ServerProcess, free_port
from tests.unit.serving import onnx_models
from thunderbolt.deploy.promparse import snapshot


class GrpcServer(ServerProcess):
    def __init__(self, *args: str, **kwargs: object) -> None:
        self.grpc_port = free_port()
        super().__init__(*args, "--grpc-port", str(self.grpc_port), **kwargs)  # type: ignore[arg-type]
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"


def _serve(tmp, model: bytes, name: str) -> GrpcServer:  # type: ignore[no-untyped-def]
    uri, checksum = onnx_models.write_model(model, tmp)
    server = GrpcServer(
        "--model-uri", uri, "--checksum", checksum, "--model-name", name, log_dir=tmp
    )
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    server = _serve(tmp_path_factory.mktemp("grpc-linear"), onnx_models.linear_model(), "iris")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    server = _serve(tmp_path_factory.mktemp("grpc-typed"), onnx_models.fp16_bytes_model(), "typed")
    yield server
    assert server.stop() == 0


def test_health_and_metadata_over_grpc(linear: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(linear.grpc_url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert client.get_server_metadata().name == "thunderbolt"
    meta = client.get_model_metadata("iris", as_json=True)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "4"]}]
    with pytest.raises(InferenceServerException, match="unknown version"):
        client.is_model_ready("iris", "2")


@pytest.mark.parametrize("rows", [1, 5])
def test_grpc_infer_matches_onnxruntime_and_echoes_the_id(linear: GrpcServer, rows: int) -> None:
    x = np.random.default_rng(rows).normal(size=(rows, 4)).astype(np.float32)
    expected = ort.InferenceSession(onnx_models.linear_model()).run(None, {"input": x})[0]
    inp = grpcclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    client = grpcclient.InferenceServerClient(linear.grpc_url)
    result = client.infer("iris", [inp], request_id="g-1", parameters={"trace": "abc"})
    np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-6, atol=1e-6)
    response = result.get_response()
    assert response.id == "g-1" and response.model_name == "iris"
    assert response.parameters["trace"].string_param == "abc"


def test_grpc_mistakes_are_invalid_argument_and_counted_like_http(linear: GrpcServer) -> None:
    client = grpcclient.InferenceServerClient(linear.grpc_url)
    before = snapshot(linear.get("/metrics").text, "iris")
    inp = grpcclient.InferInput("input", [1, 5], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 5), np.float32))
    with pytest.raises(InferenceServerException, match="expected shape") as info:
        client.infer("iris", [inp])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="unknown model") as info:
        client.infer("nope", [inp])
    assert info.value.status() == "StatusCode.NOT_FOUND"
    ok = grpcclient.InferInput("input", [1, 4], "FP32")
    ok.set_data_from_numpy(np.zeros((1, 4), np.float32))
    client.infer("iris", [ok])
    window = snapshot(linear.get("/metrics").text, "iris") - before
    assert window.requests == 2  # the unknown model is not counted
    assert window.error_rate(include_client_errors=True) == 0.5


def test_grpc_and_http_requests_share_batches(linear: GrpcServer) -> None:
    """Both transports feed one batcher: concurrent requests from both land in it."""
    import concurrent.futures

    client = grpcclient.InferenceServerClient(linear.grpc_url)
    x = np.ones((1, 4), np.float32)
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": x.tolist()}]}

    def via_grpc(_: int) -> np.ndarray:
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(x)
        return client.infer("iris", [inp]).as_numpy("output")

    def via_http(_: int) -> np.ndarray:  # tritonclient.http is gevent-based: not from threads
        out = linear.post("/v2/models/iris/infer", json=body).json()["outputs"][0]
        return np.array(out["data"], np.float32).reshape(out["shape"])

    def calls() -> float:
        text = linear.get("/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("thunderbolt_inference_batch_size_count")
        )
        return float(line.rsplit(" ", 1)[1])

    before = calls()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(via_grpc if i % 2 else via_http, i) for i in range(80)]
        results = [f.result() for f in futures]
    np.testing.assert_allclose(results, [results[0]] * 80, rtol=1e-6)
    assert calls() - before < 80  # some requests of either kind were merged


def _typed_feeds() -> dict[str, np.ndarray]:
    return {
        "x_fp16": np.array([[1.5, -2.0], [1000, 0.25]], np.float16),
        "text": np.array([["héllo"], [""]], dtype=object),
    }


def test_fp16_and_bytes_over_grpc(typed: GrpcServer) -> None:
    feeds = _typed_feeds()
    inputs = []
    for name, datatype in (("x_fp16", "FP16"), ("text", "BYTES")):
        inp = grpcclient.InferInput(name, list(feeds[name].shape), datatype)
        inp.set_data_from_numpy(feeds[name])
        inputs.append(inp)
    result = grpcclient.InferenceServerClient(typed.grpc_url).infer("typed", inputs)
    half = result.as_numpy("half")
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, feeds["x_fp16"] * np.float16(2))
    assert [x.decode() for x in result.as_numpy("echo").reshape(-1)] == ["héllo", ""]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_fp16_and_bytes_over_http(typed: GrpcServer, binary: bool) -> None:
    feeds = _typed_feeds()
    inputs = []
    for name, datatype in (("x_fp16", "FP16"), ("text", "BYTES")):
        inp = httpclient.InferInput(name, list(feeds[name].shape), datatype)
        inp.set_data_from_numpy(feeds[name], binary_data=binary)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("half", "echo")]
    result = httpclient.InferenceServerClient(typed.url).infer("typed", inputs, outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("half"), feeds["x_fp16"] * np.float16(2))
    echo = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("echo").reshape(-1)]
    assert echo == ["héllo", ""]


def test_grpc_before_the_model_is_verified_is_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The checksum gate holds for gRPC too: a wrong checksum never serves."""
    uri, _ = onnx_models.write_model(onnx_models.linear_model(), tmp_path)
    server = GrpcServer(
        "--model-uri", uri, "--checksum", "sha256:" + "0" * 64, "--model-name", "iris",
        "--fail-linger", "30", log_dir=tmp_path,
    )  # fmt: skip
    try:
        server.wait_listening()
        client = grpcclient.InferenceServerClient(server.grpc_url)
        assert client.is_server_live()
        assert not client.is_server_ready()
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.zeros((1, 4), np.float32))
        with pytest.raises(InferenceServerException) as info:
            client.infer("iris", [inp])
        assert info.value.status() == "StatusCode.UNAVAILABLE"
    finally:
        server.stop()
