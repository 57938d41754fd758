"""Helpers of the ModelDeployment integration tests: models in S3, requests, status views."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from thunderbolt.artifacts import sha256_digest

BAD_CHECKSUM = "sha256:" + "0" * 64


def upload(host_s3: Any, data: bytes) -> tuple[str, str]:
    key = f"models/{uuid.uuid4().hex}.onnx"
    host_s3.client().put_object(Bucket="models", Key=key, Body=data)
    return f"s3://models/{key}", sha256_digest(data)


def history(status: dict[str, Any]) -> list[tuple[int, str]]:
    return [(h["number"], h["outcome"]) for h in status.get("history", [])]


def current(status: dict[str, Any]) -> int | None:
    return (status.get("currentRevision") or {}).get("number")


def infer_grpc(ip: str, port: int, model: str, timeout: float = 5.0) -> list[list[float]]:
    """One V2 ModelInfer over gRPC with tritonclient's unmodified client; returns the output."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    inp = grpcclient.InferInput("input", [1, 4], "FP32")
    inp.set_data_from_numpy(np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))
    client = grpcclient.InferenceServerClient(f"{ip}:{port}")
    try:
        return client.infer(model, [inp], client_timeout=timeout).as_numpy("output").tolist()
    finally:
        client.close()


def infer(ip: str, port: int, model: str, timeout: float = 5.0) -> int:
    """One V2 inference request on a fresh connection; returns the HTTP status (0: no answer)."""
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                   "data": [0.1, 0.2, 0.3, 0.4]}]}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"http://{ip}:{port}/v2/models/{model}/infer", data=body,
        headers={"Content-Type": "application/json", "Connection": "close"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def train_and_register(
    tracking_uri: str, registered: str, out_dir: Any, trial: str = "iris-t0"
) -> Any:
    """Run the built-in trainer (iris, 2 epochs) with MLflow tracking: it logs the run and
    registers a version the way every Trial does; returns its ``TrainResult``."""
    from thunderbolt.api.trainer_config import TrainerConfig
    from thunderbolt.trainer.run import train

    config = TrainerConfig.model_validate({
        "identity": {"namespace": "deploy-tests", "experiment": "iris", "trial": trial,
                     "uid": uuid.uuid4().hex, "number": 0},
        "dataset": {"uri": "builtin://iris"}, "epochs": 2, "batchSize": 16,
        "parameters": {"hidden_dim": 8, "num_layers": 1},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "tracking": {"trackingUri": tracking_uri, "experimentName": "deploy-tests",
                     "registeredModelName": registered},
    })  # fmt: skip
    result, code = train(config, str(out_dir), emit=lambda _m: None)
    assert code == 0 and result.status == "Succeeded", result
    assert result.mlflowModelVersion and result.trackingError is None, result
    return result
