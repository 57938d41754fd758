"""Several worker processes on one port: every request answered, /metrics sums all
workers, SIGTERM drains them all (exit 0), a failed load in any worker exits 1."""

from __future__ import annotations

import concurrent.futures
import pathlib

import numpy as np

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models
from thunderbolt.deploy.promparse import snapshot

BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def test_two_workers_share_the_port_and_the_metrics(tmp_path: pathlib.Path) -> None:
    uri, checksum = onnx_models.write_model(onnx_models.linear_model(), tmp_path)
    server = ServerProcess(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "iris", "--workers", "2",
        log_dir=tmp_path,
    )  # fmt: skip
    try:
        server.wait_ready()

        def call(_: int) -> list[float]:
            # A new connection each time, so the kernel spreads them over both workers.
            response = server.post(
                "/v2/models/iris/infer", json=BODY, headers={"Connection": "close"}
            )
            assert response.status_code == 200, response.text
            return list(response.json()["outputs"][0]["data"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(200)))
        np.testing.assert_allclose(results, [results[0]] * 200, rtol=1e-6)
        # Whichever worker answers /metrics reports the pod's total.
        for _ in range(3):
            text = server.get("/metrics", headers={"Connection": "close"}).text
            assert snapshot(text, "iris").requests == 200
        assert "thunderbolt_model_ready" in text
    finally:
        assert server.stop() == 0


def test_a_worker_failing_its_checksum_fails_the_server(tmp_path: pathlib.Path) -> None:
    uri, _ = onnx_models.write_model(onnx_models.linear_model(), tmp_path)
    server = ServerProcess(
        "--model-uri", uri, "--checksum", "sha256:" + "0" * 64, "--model-name", "iris",
        "--workers", "2", log_dir=tmp_path,
    )  # fmt: skip
    assert server.proc.wait(60) == 1
    server.stop()
