"""An SDK script's MLflow record: a local sqlite-backed MLflow (no server), the same
tracker the built-in trainer uses: Trial tags, per-step metrics, the ONNX artifact and a
registered model version with the Trial's checksum."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from thunderbolt import sdk
from thunderbolt.sdk.torch import export


def test_report_and_export_are_recorded_in_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sqlite MLflow keeps artifacts in ./mlruns
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = {
        "identity": {
            "namespace": "ns",
            "experiment": "digits",
            "trial": "digits-003",
            "uid": "uid-3",
            "number": 3,
        },  # fmt: skip
        "parameters": {"learning_rate": 0.01},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "tracking": {"trackingUri": uri, "registeredModelName": "digits-cnn"},
    }
    with sdk.init(config, output=tmp_path / "out", emit=lambda _m: None) as trial:
        trial.start(tags={"team": "vision"})
        for step, accuracy in enumerate([0.5, 0.8], start=1):
            trial.report(step, val_accuracy=accuracy)
        x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
        torch.manual_seed(0)
        export(nn.Linear(4, 2), x[:2], trial, validation=x)
    result = trial.result
    assert result is not None and result.status == "Succeeded", result
    assert result.mlflowRunId and result.mlflowModelVersion == "1"
    assert result.trackingError is None

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(result.mlflowRunId)
    assert run.info.status == "FINISHED" and run.info.run_name == "digits-003"
    tags = run.data.tags
    assert tags["thunderbolt.trial_uid"] == "uid-3" and tags["thunderbolt.trial_number"] == "3"
    assert tags["team"] == "vision"
    assert run.data.params["learning_rate"] == "0.01"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.8)]
    version = client.get_model_version("digits-cnn", "1")
    assert version.run_id == run.info.run_id
    # The version and its run carry the ONNX file's checksum and the Trial's identity,
    # so a ModelDeployment can verify the bytes and trace them back; the run also carries
    # the objective the Trial's status records.
    assert version.tags["thunderbolt.io/checksum"] == result.modelChecksum
    assert tags["thunderbolt.io/checksum"] == result.modelChecksum
    assert result.modelChecksum.startswith("sha256:")
    assert (version.tags["thunderbolt.trial"], version.tags["thunderbolt.trial_uid"]) == (
        "digits-003",
        "uid-3",
    )
    assert version.tags["thunderbolt.namespace"] == "ns"
    assert version.tags["thunderbolt.experiment"] == "digits"
    assert float(tags["thunderbolt.objective"]) == result.objective == 0.8
    assert tags["thunderbolt.objective_metric"] == "val_accuracy"
    assert result.switches == {"spectral_norm": False}  # read off the exported model
    assert tags["thunderbolt.spectral_norm"] == "false"
    # no artifact store configured: the model stays where it was written (and in MLflow)
    assert result.modelUri == (tmp_path / "out" / "model.onnx").resolve().as_uri()
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
    assert artifacts == ["model/model.onnx"]
