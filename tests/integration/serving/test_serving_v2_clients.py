"""The server as a subprocess, driven by tritonclient's unmodified HTTP client."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models
from thunderbolt.deploy.promparse import snapshot


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("linear")
    uri, checksum = onnx_models.write_model(onnx_models.linear_model(), tmp)
    server = ServerProcess(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "iris", log_dir=tmp
    )
    server.wait_ready()
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("multi")
    uri, checksum = onnx_models.write_model(onnx_models.multi_dtype_model(), tmp)
    server = ServerProcess(
        log_dir=tmp,
        env={
            "THUNDERBOLT_MODEL_URI": uri,
            "THUNDERBOLT_MODEL_CHECKSUM": checksum,
            "THUNDERBOLT_MODEL_NAME": "multi",
        },
    )
    server.wait_ready()
    yield server
    assert server.stop() == 0


def _client(server: ServerProcess) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(url=server.url)


def test_health_and_metadata(linear: ServerProcess) -> None:
    client = _client(linear)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "2")
    assert client.get_server_metadata()["name"] == "thunderbolt"
    meta = client.get_model_metadata("iris")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
    assert client.get_model_metadata("iris", "1") == meta


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("rows", [1, 7])
def test_infer_matches_onnxruntime(linear: ServerProcess, binary: bool, rows: int) -> None:
    x = np.random.default_rng(rows).normal(size=(rows, 4)).astype(np.float32)
    expected = ort.InferenceSession(onnx_models.linear_model()).run(None, {"input": x})[0]
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("output", binary_data=binary)
    result = _client(linear).infer(
        "iris", [inp], outputs=[out], request_id="req-9", model_version="1"
    )
    np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-6, atol=1e-6)
    response = result.get_response()
    assert response["id"] == "req-9" and response["model_name"] == "iris"


def test_default_request_and_gzip_compression(linear: ServerProcess) -> None:
    x = np.ones((3, 4), np.float32)
    inp = httpclient.InferInput("input", [3, 4], "FP32")
    inp.set_data_from_numpy(x)
    result = _client(linear).infer("iris", [inp], request_compression_algorithm="gzip")
    assert result.as_numpy("output").shape == (3, 3)


def test_parameters_are_echoed(linear: ServerProcess) -> None:
    inp = httpclient.InferInput("input", [1, 4], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 4), np.float32), binary_data=False)
    result = _client(linear).infer("iris", [inp], parameters={"trace": "abc"})
    assert result.get_response()["parameters"]["trace"] == "abc"


def test_four_datatypes_and_an_output_subset(multi: ServerProcess) -> None:
    feeds = {
        "x_fp64": np.array([[1.25, -2.5], [3.0, 1e-300]], np.float64),
        "x_int32": np.array([[1, -2], [2**31 - 2, 0]], np.int32),
        "x_int64": np.array([[2**40], [-5]], np.int64),
        "flag": np.array([[True], [False]]),
    }
    types = {"x_fp64": "FP64", "x_int32": "INT32", "x_int64": "INT64", "flag": "BOOL"}
    expected = ort.InferenceSession(onnx_models.multi_dtype_model()).run(None, feeds)
    for binary in (True, False):
        inputs = []
        for name, array in feeds.items():
            inp = httpclient.InferInput(name, list(array.shape), types[name])
            inp.set_data_from_numpy(array, binary_data=binary)
            inputs.append(inp)
        result = _client(multi).infer("multi", inputs)
        for name, want in zip(["y_fp64", "y_int32", "y_int64", "not_flag"], expected, strict=True):
            got = result.as_numpy(name)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        subset = _client(multi).infer(
            "multi",
            inputs,
            outputs=[httpclient.InferRequestedOutput("not_flag", binary_data=binary)],
        )
        assert [o["name"] for o in subset.get_response()["outputs"]] == ["not_flag"]


def test_client_mistakes_raise_in_tritonclient_with_the_server_message(
    linear: ServerProcess,
) -> None:
    inp = httpclient.InferInput("input", [1, 5], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 5), np.float32))
    with pytest.raises(InferenceServerException, match="expected shape") as info:
        _client(linear).infer("iris", [inp])
    assert info.value.status() == "400"
    with pytest.raises(InferenceServerException, match="unknown model"):
        _client(linear).infer("nope", [inp])


def test_metrics_count_requests_by_code(linear: ServerProcess) -> None:
    linear.post("/v2/models/iris/infer", data=b"{bad")
    text = linear.get("/metrics").text
    assert 'thunderbolt_inference_requests_total{code="400",model="iris"}' in text
    assert "thunderbolt_inference_request_duration_seconds_bucket" in text
    assert 'thunderbolt_model_ready{model="iris"} 1.0' in text
    snap = snapshot(text, "iris")
    assert snap.client_errors >= 1 and snap.requests > snap.client_errors
    assert snap.p99_ms is not None


def test_version_of_the_other_paths(linear: ServerProcess, tmp_path: pathlib.Path) -> None:
    body = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
    }
    assert linear.post("/v2/models/iris/versions/1/infer", json=body).status_code == 200
    missing = linear.post("/v2/models/iris/versions/7/infer", json=body)
    assert missing.status_code == 404 and "version" in missing.json()["error"]


KSERVE_PYTHON = pathlib.Path(__file__).resolve().parents[3] / ".cache/bench-kserve-venv/bin/python"
KSERVE_CLIENT = """
import asyncio, json, sys, numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main():
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    for binary in (False, True):
        inp = InferInput("input", [2, 4], "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        request = InferRequest(model_name="iris", infer_inputs=[inp], request_id="k1")
        res = await client.infer(sys.argv[1], request, model_name="iris")
        print(res.id, json.dumps(res.outputs[0].as_numpy().tolist()))
    await client.close()

asyncio.run(main())
"""


@pytest.mark.skipif(
    not KSERVE_PYTHON.exists(), reason="kserve venv absent: run bench/serving_bench.py once"
)
def test_kserve_inference_rest_client(linear: ServerProcess) -> None:
    import subprocess

    out = subprocess.run(
        [str(KSERVE_PYTHON), "-c", KSERVE_CLIENT, linear.base],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    expected = ort.InferenceSession(onnx_models.linear_model()).run(None, {"input": x})[0]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        request_id, _, values = line.partition(" ")
        assert request_id == "k1"
        np.testing.assert_allclose(np.array(json.loads(values)), expected, rtol=1e-6)


def test_large_json_request_is_decoded_off_the_event_loop(linear: ServerProcess) -> None:
    x = np.random.default_rng(5).normal(size=(20_000, 4)).astype(np.float32)  # ~1.5 MB of JSON
    expected = ort.InferenceSession(onnx_models.linear_model()).run(None, {"input": x})[0]
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    out = httpclient.InferRequestedOutput("output", binary_data=False)
    result = _client(linear).infer("iris", [inp], outputs=[out])
    np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-5, atol=1e-5)
