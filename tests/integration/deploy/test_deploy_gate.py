"""``spec.gate`` on the real cluster: the gate Job (the real serving image running
``thunderbolt gate``) refuses a worse model on the very first deployment, before it has
a pod, and lets a good one roll out."""

from __future__ import annotations

import pathlib
import time

from kubernetes import client

from tests.fixtures.crds import install_crds
from tests.integration.deploy.helpers import history, infer, upload


def trained(tmp_path: pathlib.Path, name: str, epochs: int, lr: float) -> bytes:
    from thunderbolt.api.trainer_config import TrainerConfig
    from thunderbolt.trainer.run import train

    config = TrainerConfig.model_validate({
        "dataset": {"uri": "builtin://iris"}, "epochs": epochs, "seed": 0,
        "parameters": {"learning_rate": lr, "hidden_dim": 16},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
    })  # fmt: skip
    result, code = train(config, str(tmp_path / name), emit=lambda _m: None)
    assert code == 0, result
    return (tmp_path / name / "model.onnx").read_bytes()


def test_the_gate_refuses_a_worse_first_model_before_it_has_a_pod(
    deployments, host_s3, kubectl, tmp_path
):
    install_crds(kubectl)  # the CRDs are shared: this tree's schema has spec.gate
    poor = upload(host_s3, trained(tmp_path, "poor", 1, 1e-4))
    good = upload(host_s3, trained(tmp_path, "good", 40, 0.05))
    gate = {"dataset": {"uri": "builtin://iris"}, "metric": "accuracy", "threshold": 0.9}
    deployments.create("gated", {
        "model": {"uri": poor[0], "checksum": poor[1]}, "gate": gate, "modelName": "iris",
        "replicas": 1, "resources": {"cpu": "200m", "memory": "512Mi"},
    })  # fmt: skip
    status = deployments.wait("gated", lambda s: (1, "GateFailed") in history(s), timeout=300)
    entry = status["history"][0]
    assert entry["gate"]["passed"] is False and entry["gate"]["value"] < 0.9
    assert entry["gate"]["rows"] == 150 and "below the threshold 0.9" in entry["reason"]
    assert status["phase"] == "Degraded" and status["reason"] == "GateFailed"
    assert deployments.revision_deployments("gated") == set()  # it never had a pod
    assert "gated" not in {s.metadata.name for s in deployments.core.list_namespaced_service(
        deployments.namespace).items}  # fmt: skip
    assert "GateFailed" in deployments.event_reasons("gated")

    deployments.patch("gated", {"model": {"uri": good[0], "checksum": good[1]}})
    status = deployments.wait("gated", lambda s: s.get("phase") == "Available", timeout=300)
    assert history(status) == [(1, "GateFailed"), (2, "Promoted")]
    passed = status["history"][-1]["gate"]
    assert passed["passed"] is True and passed["value"] >= 0.9
    assert infer(deployments.cluster_ip("gated"), 8080, "iris") == 200
    batch = client.BatchV1Api(deployments.custom.api_client)
    deadline = time.monotonic() + 30  # the gate Jobs are removed once their result is recorded
    while batch.list_namespaced_job(deployments.namespace).items:
        assert time.monotonic() < deadline, "gate Jobs left behind"
        time.sleep(1)
