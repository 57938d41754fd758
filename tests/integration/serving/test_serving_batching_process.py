"""Dynamic batching in the real server: concurrent clients, merged calls, exact answers."""

from __future__ import annotations

import pathlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models


def _batch_histogram(text: str, model: str) -> tuple[float, float]:
    """(number of onnxruntime calls, of which single-row) from /metrics."""
    calls = single = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name == "thunderbolt_inference_batch_size_count":
                calls = sample.value
            if (
                sample.name == "thunderbolt_inference_batch_size_bucket"
                and sample.labels["le"] == "1.0"
            ):
                single = sample.value
    return calls, single


def _run_concurrently(server: ServerProcess, arrays: list[np.ndarray]) -> list[np.ndarray]:
    local = threading.local()  # tritonclient's HTTP client is gevent-based: one per thread

    def one(x: np.ndarray) -> np.ndarray:
        if not hasattr(local, "client"):
            local.client = httpclient.InferenceServerClient(url=server.url)
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return local.client.infer("iris", [inp]).as_numpy("output")

    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(one, arrays))


def test_concurrent_requests_are_batched_with_unbatched_answers(tmp_path: pathlib.Path) -> None:
    uri, checksum = onnx_models.write_model(onnx_models.linear_model(), tmp_path)
    args = ["--model-uri", uri, "--checksum", checksum, "--model-name", "iris"]
    batched = ServerProcess(
        *args, "--max-batch-size", "16", "--max-delay-ms", "20", log_dir=tmp_path
    )
    unbatched = ServerProcess(*args, "--no-batching", log_dir=tmp_path)
    try:
        batched.wait_ready()
        unbatched.wait_ready()
        rng = np.random.default_rng(3)
        arrays = [
            rng.normal(size=(int(rng.integers(1, 3)), 4)).astype(np.float32) for _ in range(96)
        ]
        session = ort.InferenceSession(onnx_models.linear_model())
        direct = [session.run(None, {"input": x})[0] for x in arrays]
        for server in (batched, unbatched):
            for got, want in zip(_run_concurrently(server, arrays), direct, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

        calls, single = _batch_histogram(batched.get("/metrics").text, "iris")
        assert 0 < calls < len(arrays) and single < calls, (calls, single)
        calls, single = _batch_histogram(unbatched.get("/metrics").text, "iris")
        assert calls == len(arrays)
    finally:
        assert batched.stop() == 0 and unbatched.stop() == 0
