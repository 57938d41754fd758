"""Process lifecycle: never ready on a bad checksum, drain in-flight requests on SIGTERM."""

from __future__ import annotations

import pathlib
import threading
import time

import pytest
import requests

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models
from thunderbolt.artifacts import sha256_digest


def test_checksum_mismatch_is_never_ready_and_exits_nonzero(tmp_path: pathlib.Path) -> None:
    uri, _ = onnx_models.write_model(onnx_models.linear_model(), tmp_path)
    wrong = sha256_digest(b"some other model")
    proc = ServerProcess(
        "--model-uri", uri, "--checksum", wrong, "--model-name", "iris", "--fail-linger", "5",
        log_dir=tmp_path,
    )  # fmt: skip
    proc.wait_listening()
    seen_ready, seen_failure_metric = set(), False
    while proc.proc.poll() is None:
        try:
            seen_ready.add(proc.get("/v2/health/ready").status_code)
            seen_ready.add(proc.get("/v2/models/iris/ready").status_code)
            text = proc.get("/metrics").text
            seen_failure_metric |= (
                'thunderbolt_model_checksum_failures_total{model="iris"} 1.0' in text
            )
            body = {
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                ]
            }
            seen_ready.add(proc.post("/v2/models/iris/infer", json=body).status_code)
        except requests.ConnectionError:
            break
        time.sleep(0.1)
    assert proc.proc.wait(15) == 1
    proc.stop()
    assert seen_ready == {503}
    assert seen_failure_metric
    assert "checksum mismatch" in proc.logs() and wrong in proc.logs()


def test_missing_model_exits_nonzero_with_the_reason(tmp_path: pathlib.Path) -> None:
    uri = (tmp_path / "absent.onnx").as_uri()
    proc = ServerProcess("--model-uri", uri, "--model-name", "iris", log_dir=tmp_path)
    assert proc.proc.wait(120) == 1
    assert "cannot read" in proc.logs()
    proc.stop()


def test_not_onnx_exits_nonzero(tmp_path: pathlib.Path) -> None:
    uri, checksum = onnx_models.write_model(b"not a model", tmp_path)
    proc = ServerProcess(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "iris", log_dir=tmp_path
    )
    assert proc.proc.wait(120) == 1
    assert "cannot load the model" in proc.logs()
    proc.stop()


@pytest.mark.parametrize("batching", [True, False], ids=["batching", "no-batching"])
def test_sigterm_finishes_the_in_flight_request(tmp_path: pathlib.Path, batching: bool) -> None:
    uri, checksum = onnx_models.write_model(onnx_models.slow_model(iterations=4000), tmp_path)
    args = ["--model-uri", uri, "--checksum", checksum, "--model-name", "slow"]
    proc = ServerProcess(*args, *([] if batching else ["--no-batching"]), log_dir=tmp_path)
    proc.wait_ready()
    body = {
        "id": "slow-1",
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
    }
    answer: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: answer.append(proc.post("/v2/models/slow/infer", json=body))
    )
    sender.start()
    deadline = time.monotonic() + 60
    while (
        'thunderbolt_inference_batch_size_count{model="slow"} 1.0' not in proc.get("/metrics").text
    ):
        assert time.monotonic() < deadline, "the request never reached the model"
        time.sleep(0.02)
    assert not answer, "the model is too fast for this test: raise slow_model iterations"
    proc.terminate()
    closed_by = time.monotonic() + 30
    while True:  # the listener closes while the request is still draining
        try:
            proc.get("/v2/health/live")
        except requests.ConnectionError:
            break
        assert time.monotonic() < closed_by, "listener still open after SIGTERM"
        time.sleep(0.05)
    sender.join(120)
    assert proc.stop() == 0
    assert answer and answer[0].status_code == 200
    assert answer[0].json()["id"] == "slow-1"
    assert answer[0].json()["outputs"][0]["data"] == [1, 2, 3, 4]
    assert "draining 1 in flight" in proc.logs()
