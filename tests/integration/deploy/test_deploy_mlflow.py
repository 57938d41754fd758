"""A ModelDeployment following an MLflow alias, against a real ``mlflow server`` on the host."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from tests.integration.deploy.helpers import current, history, infer
from tests.unit.serving.onnx_models import linear_model
from thunderbolt.artifacts import sha256_digest


def register(mlflow_client, name: str, data: bytes, tags: dict[str, str] | None = None) -> str:
    """Log ``data`` as model/model.onnx of a new run and register it; returns the version."""
    experiment = mlflow_client.get_experiment_by_name("deploy-tests")
    experiment_id = (
        experiment.experiment_id if experiment else mlflow_client.create_experiment("deploy-tests")
    )
    run = mlflow_client.create_run(experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        mlflow_client.log_artifact(run.info.run_id, str(path), "model")
    mlflow_client.set_terminated(run.info.run_id)
    try:
        mlflow_client.create_registered_model(name)
    except Exception:  # registered by an earlier call
        pass
    version = mlflow_client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags or {}
    )
    return str(version.version)


def test_alias_move_rolls_out_a_new_revision_and_an_unverifiable_version_is_refused(
    deployments, host_mlflow
):
    mlflow = host_mlflow.client()
    name = f"iris-{uuid.uuid4().hex[:6]}"
    v1_data = linear_model(k=1)
    v1 = register(mlflow, name, v1_data, {"thunderbolt.io/checksum": sha256_digest(v1_data)})
    mlflow.set_registered_model_alias(name, "champion", v1)
    deployments.create("follow", {
        "model": {"mlflowModel": {"name": name, "alias": "champion", "trackingUri": host_mlflow.url,
                                  "pollSeconds": 5}},
        "modelName": "iris", "resources": {"cpu": "100m", "memory": "256Mi"},
    })  # fmt: skip
    status = deployments.wait("follow", lambda s: s.get("phase") == "Available", timeout=240)
    revision = status["currentRevision"]
    assert revision["mlflowModelVersion"] == v1 and revision["modelUri"] == f"models:/{name}/{v1}"
    assert revision["modelChecksum"] == sha256_digest(v1_data)
    assert revision["mlflowModelUrl"].startswith(host_mlflow.url)
    ip = deployments.cluster_ip("follow")
    assert infer(ip, 8080, "iris") == 200

    # The alias moves to an untagged version: its checksum is computed from the artifact.
    v2_data = linear_model(k=2)
    v2 = register(mlflow, name, v2_data)
    mlflow.set_registered_model_alias(name, "champion", v2)
    status = deployments.wait(
        "follow", lambda s: current(s) == 2 and s["phase"] == "Available", timeout=240
    )
    assert status["currentRevision"]["mlflowModelVersion"] == v2
    assert status["currentRevision"]["modelChecksum"] == sha256_digest(v2_data)
    entry = status["history"][-1]
    assert entry["reason"].startswith(f"alias champion -> version {v2};") and entry["deployedAt"]
    assert history(status) == [(1, "Superseded"), (2, "Promoted")]

    # A version whose tagged checksum does not match its artifact is refused; v2 keeps serving.
    v3 = register(
        mlflow, name, linear_model(k=3), {"thunderbolt.io/checksum": "sha256:" + "1" * 64}
    )
    mlflow.set_registered_model_alias(name, "champion", v3)
    status = deployments.wait("follow", lambda s: (3, "Refused") in history(s), timeout=120)
    refused = status["history"][-1]
    assert refused["mlflowModelVersion"] == v3 and refused["reason"].startswith("ChecksumMismatch")
    assert status["phase"] == "Degraded" and current(status) == 2
    assert deployments.revision_deployments("follow") == {2}
    assert infer(ip, 8080, "iris") == 200


def test_the_trainers_own_version_is_served_verified_and_a_tampered_one_refused(
    deployments, host_mlflow, tmp_path, kubectl
):
    from tests.fixtures.crds import install_crds
    from tests.integration.deploy.helpers import train_and_register

    install_crds(kubectl)  # shared CRDs: this tree's schema (requireChecksumTag, mlflowRunId)

    mlflow = host_mlflow.client()
    name = f"iris-{uuid.uuid4().hex[:6]}"
    result = train_and_register(host_mlflow.url, name, tmp_path / "out")
    v1 = result.mlflowModelVersion
    deployments.create("own", {
        "model": {"mlflowModel": {"name": name, "version": v1, "trackingUri": host_mlflow.url,
                                  "requireChecksumTag": True}},
        "modelName": "iris", "resources": {"cpu": "100m", "memory": "256Mi"},
    })  # fmt: skip
    status = deployments.wait("own", lambda s: s.get("phase") == "Available", timeout=240)
    revision = status["currentRevision"]
    assert revision["modelChecksum"] == result.modelChecksum  # verified against the tag
    assert (revision["trial"], revision["experiment"]) == ("iris-t0", "iris")
    assert revision["objective"] == result.objective
    assert revision["objectiveMetric"] == "val_accuracy"
    assert revision["mlflowRunId"] == result.mlflowRunId
    ip = deployments.cluster_ip("own")
    assert infer(ip, 8080, "iris") == 200

    # A second version of the same run's artifact, carrying the trainer's tags, whose bytes
    # are then changed in the artifact store: refused, and version 1 keeps serving.
    original = mlflow.get_model_version(name, v1)
    v2 = str(mlflow.create_model_version(name, original.source, run_id=original.run_id,
                                         tags=dict(original.tags)).version)  # fmt: skip
    relative = mlflow.get_run(result.mlflowRunId).info.artifact_uri.split("mlflow-artifacts:/")[1]
    stored = host_mlflow.log.parent / "artifacts" / relative / "model" / "model.onnx"
    stored.write_bytes(linear_model(k=4))
    deployments.patch("own", {"model": {"mlflowModel": {"version": v2}}})
    status = deployments.wait("own", lambda s: (2, "Refused") in history(s), timeout=120)
    refused = status["history"][-1]
    assert refused["reason"].startswith("ChecksumMismatch")
    assert refused["mlflowModelVersion"] == v2 and refused["modelChecksum"] == result.modelChecksum
    assert status["phase"] == "Degraded" and current(status) == 1
    assert deployments.revision_deployments("own") == {1}
    assert infer(ip, 8080, "iris") == 200
