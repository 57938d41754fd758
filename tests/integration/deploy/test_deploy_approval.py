"""``spec.approval: Manual`` on the real cluster, decided with the real CLI.

The first revision waits with nothing deployed until ``thunderbolt approve``; the next one
is rejected with ``thunderbolt reject`` and never gets a Deployment while the first keeps
answering requests. Who decided comes back from the API server's managedFields.
"""

from __future__ import annotations

import time

from tests.fixtures.crds import install_crds
from tests.integration.deploy.helpers import current, history, infer, upload
from tests.unit.serving.onnx_models import linear_model
from thunderbolt.cli import main as cli


def test_pending_then_approved_serves_and_rejected_never_serves(
    deployments, host_s3, cluster, namespace, kubectl
):
    # The CRDs are cluster-wide and shared: make sure this tree's schema (with
    # spec.approval) is the one installed, or the API server would prune the field.
    install_crds(kubectl)
    schema = kubectl("get", "crd", "modeldeployments.thunderbolt.io", "-o", "json").stdout
    assert '"approval"' in schema

    def decide(*argv: str) -> int:
        kube = [
            "-n",
            namespace,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--context",
            cluster.context,
        ]
        return cli([*argv, *kube])

    m1, m2 = upload(host_s3, linear_model(k=1)), upload(host_s3, linear_model(k=2))
    deployments.create("gated", {
        "model": {"uri": m1[0], "checksum": m1[1]}, "approval": "Manual",
        "replicas": 1, "resources": {"cpu": "100m", "memory": "256Mi"},
    })  # fmt: skip
    status = deployments.wait("gated", lambda s: history(s) == [(1, "PendingApproval")])
    assert status["phase"] == "Pending" and status["reason"] == "PendingApproval"
    assert status["history"][0]["modelChecksum"] == m1[1]
    time.sleep(5)
    assert deployments.revision_deployments("gated") == set()
    assert decide("reject", "gated", "--revision", "7", "--reason", "x") == 1  # no such revision

    assert decide("approve", "gated", "--reason", "first model, checked offline") == 0
    status = deployments.wait("gated", lambda s: s.get("phase") == "Available", timeout=240)
    entry = status["history"][0]
    assert (entry["number"], entry["outcome"]) == (1, "Promoted")
    assert entry["approval"]["decision"] == "Approved" and entry["approval"]["by"]
    assert entry["approval"]["manager"] == "thunderbolt-cli" and entry["approval"]["at"]
    assert entry["approval"]["reason"] == "first model, checked offline"
    ip = deployments.cluster_ip("gated")
    assert infer(ip, 8080, "gated") == 200

    deployments.patch("gated", {"model": {"uri": m2[0], "checksum": m2[1]}})
    status = deployments.wait("gated", lambda s: (2, "PendingApproval") in history(s))
    assert status["phase"] == "Available" and status["reason"] == "PendingApproval"
    assert decide("approve", "gated", "--revision", "1", "--reason", "again") == 1  # decided

    assert decide("reject", "gated", "--reason", "worse on the holdout") == 0
    status = deployments.wait("gated", lambda s: (2, "Rejected") in history(s))
    assert status["history"][-1]["approval"]["decision"] == "Rejected"
    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the rejected model never gets a pod
        assert deployments.revision_deployments("gated") == {1}
        answers.append(infer(ip, 8080, "gated"))
        time.sleep(0.5)
    status = deployments.status("gated")
    assert set(answers) == {200} and current(status) == 1
    assert status["phase"] == "Degraded" and status["reason"] == "Rejected"
    assert {"PendingApproval", "Approved", "Rejected"} <= deployments.event_reasons("gated")
