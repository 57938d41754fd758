"""Training against a real ``mlflow server`` (sqlite, --serve-artifacts), up and down."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.servers import MlflowServer, free_port, mlflow_server  # noqa: F401
from thunderbolt.api.trainer_config import TrainerConfig
from thunderbolt.trainer.run import train


def config(tmp_path: Path, **fields) -> TrainerConfig:
    name = f"t-{uuid.uuid4().hex[:8]}"
    base = {
        "identity": {
            "namespace": "team-a",
            "experiment": name,
            "trial": f"{name}-003",
            "uid": str(uuid.uuid4()),
            "number": 3,
        },  # fmt: skip
        "parameters": {"learning_rate": 0.02, "hidden_dim": 16, "spectral_norm": "true"},
        "task": "classification",
        "dataset": {"uri": "builtin://iris"},
        "epochs": 4,
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
    }
    return TrainerConfig.model_validate(base | fields)


@pytest.fixture(autouse=True)
def one_cpu_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUNDERBOLT_CPU_THREADS", "1")


def test_run_records_params_metrics_tags_artifact_and_model_version(
    mlflow_server: MlflowServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    registered = f"model-{uuid.uuid4().hex[:8]}"
    cfg = config(
        tmp_path,
        tracking={"trackingUri": mlflow_server.url, "registeredModelName": registered},
        artifacts={"uri": "mlflow"},
    )
    result, code = train(cfg, str(tmp_path / "out"), emit=lambda m: None)
    assert code == 0 and result.trackingError is None, result
    run_id = result.mlflowRunId
    assert run_id and result.mlflowRunUrl == (
        f"{mlflow_server.url}/#/experiments/"
        f"{mlflow_server.client().get_run(run_id).info.experiment_id}/runs/{run_id}"
    )
    client = mlflow_server.client()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["learning_rate"] == "0.02"
    assert run.data.params["spectral_norm"] == "True"
    assert run.data.tags["thunderbolt.trial"] == cfg.identity.trial
    assert run.data.tags["thunderbolt.experiment"] == cfg.identity.experiment
    assert run.data.tags["thunderbolt.trial_uid"] == cfg.identity.uid
    assert run.data.tags["thunderbolt.namespace"] == "team-a"
    assert run.data.tags["thunderbolt.spectral_norm"] == "true"
    history = client.get_metric_history(run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    # the Trial finds its run, and the run finds its Trial
    found = client.search_runs(
        [run.info.experiment_id], f"tags.`thunderbolt.trial_uid` = '{cfg.identity.uid}'"
    )
    assert [r.info.run_id for r in found] == [run_id]
    # the ONNX artifact is the model the result describes
    assert result.modelUri == f"runs:/{run_id}/model/model.onnx"
    local = client.download_artifacts(run_id, "model/model.onnx", str(tmp_path / "dl"))
    digest = "sha256:" + hashlib.sha256(Path(local).read_bytes()).hexdigest()
    assert digest == result.modelChecksum
    version = client.get_model_version(registered, result.mlflowModelVersion)
    assert version.run_id == run_id and version.source.endswith("/model")


def test_second_trial_adds_a_version_to_the_same_registered_model(
    mlflow_server: MlflowServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    name = f"shared-{uuid.uuid4().hex[:6]}"
    versions = []
    for i in range(2):
        cfg = config(tmp_path, epochs=1, tracking={"trackingUri": mlflow_server.url,
                     "experimentName": name, "registeredModelName": name})  # fmt: skip
        result, code = train(cfg, str(tmp_path / f"out{i}"), emit=lambda m: None)
        assert code == 0 and result.trackingError is None
        versions.append(result.mlflowModelVersion)
    assert versions == ["1", "2"]


def test_restarted_trial_continues_its_unfinished_mlflow_run(
    mlflow_server: MlflowServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, epochs=2, tracking={"trackingUri": mlflow_server.url})
    client = mlflow_server.client()
    experiment = client.create_experiment(cfg.identity.experiment)
    # what a pod killed mid-run leaves behind
    crashed = client.create_run(experiment, tags={"thunderbolt.trial_uid": cfg.identity.uid})
    result, code = train(cfg, str(tmp_path / "out"), emit=lambda m: None)
    assert code == 0 and result.mlflowRunId == crashed.info.run_id
    assert client.get_run(crashed.info.run_id).info.status == "FINISHED"
    runs = client.search_runs([experiment])
    assert len(runs) == 1


def test_mlflow_down_still_uploads_the_model_and_reports_tracking_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-never-logged")
    down = f"http://admin:hunter2-never-logged@127.0.0.1:{free_port()}"
    store = tmp_path / "store"
    cfg = config(
        tmp_path,
        tracking={"trackingUri": down, "registeredModelName": "never"},
        artifacts={"uri": store.as_uri()},
    )
    lines: list[str] = []
    started = time.monotonic()
    result, code = train(cfg, str(tmp_path / "out"), emit=lines.append)
    assert time.monotonic() - started < 60
    assert code == 0 and result.status == "Succeeded"
    assert result.trackingError and "MLflow" in result.trackingError
    assert result.mlflowRunId is None and result.mlflowModelVersion is None
    ident = cfg.identity
    uploaded = store / ident.namespace / ident.experiment / ident.trial / "model.onnx"
    assert result.modelUri == uploaded.as_uri() and uploaded.exists()
    everything = "\n".join(lines) + (tmp_path / "out" / "result.json").read_text()
    assert "hunter2" not in everything


def test_mlflow_as_artifact_store_falls_back_to_checkpoint_uri_when_down(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        tracking={"trackingUri": f"http://127.0.0.1:{free_port()}"},
        artifacts={"uri": "mlflow"},
        checkpointUri=(tmp_path / "ckpt").as_uri(),
    )
    result, code = train(cfg, str(tmp_path / "out"), emit=lambda m: None)
    assert code == 0 and result.trackingError
    assert result.modelUri == (tmp_path / "ckpt" / "model.onnx").as_uri()
    assert (tmp_path / "ckpt" / "model.onnx").exists()
