"""``spec.sla`` with ``onBreach: Rollback`` on the real cluster: a model that answers every
request with an error is promoted (it is ready: it loads), its SLA windows breach under
real traffic, and the controller rolls back to the revision that served before."""

from __future__ import annotations

import time

from tests.fixtures.crds import install_crds
from tests.integration.deploy.helpers import current, history, infer, upload
from tests.unit.serving.onnx_models import failing_model, linear_model

SLA = {"maxErrorRate": 0.05, "minRequests": 5, "intervalSeconds": 5, "breachWindows": 2,
       "onBreach": "Rollback"}  # fmt: skip


def test_an_sla_breach_by_the_serving_revision_rolls_back_to_the_one_before(
    deployments, host_s3, kubectl
):
    install_crds(kubectl)  # the CRDs are shared: this tree's schema has spec.sla
    good, bad = upload(host_s3, linear_model(k=1)), upload(host_s3, failing_model())
    deployments.create("watched", {
        "model": {"uri": good[0], "checksum": good[1]}, "modelName": "iris", "sla": SLA,
        "replicas": 1, "resources": {"cpu": "100m", "memory": "256Mi"},
    })  # fmt: skip
    deployments.wait("watched", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("watched")
    assert infer(ip, 8080, "iris") == 200

    deployments.patch("watched", {"model": {"uri": bad[0], "checksum": bad[1]}})
    deployments.wait("watched", lambda s: current(s) == 2, timeout=180)
    answers: list[int] = []

    def traffic() -> None:
        answers.extend(infer(ip, 8080, "iris") for _ in range(5))

    status = deployments.wait(
        "watched", lambda s: current(s) == 3 and s.get("phase") != "Progressing",
        timeout=240, every=traffic,
    )  # fmt: skip
    assert 500 in answers  # the breach was real traffic failing
    assert history(status) == [(1, "Superseded"), (2, "RolledBack"), (3, "Promoted")]
    breached = status["history"][1]
    assert "error rate" in breached["slaBreach"]
    assert status["history"][2]["source"] == "rollback/1"
    assert "SLA breach of revision 2" in status["history"][2]["reason"]
    assert status["phase"] == "Degraded" and status["reason"] == "SLABreached"
    deployments.wait_selected("watched", 3)
    # kube-proxy follows the Service's new endpoints within seconds: wait for the first
    # good answer (bounded), then every answer must be good
    deadline = time.monotonic() + 60
    while infer(ip, 8080, "iris") != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    after = [infer(ip, 8080, "iris") for _ in range(10)]
    assert set(after) == {200}, after
    deployments.wait("watched", lambda s: "SLABreached" in deployments.event_reasons("watched"),
                     timeout=30)  # fmt: skip
    # the bad revision's Deployment goes, and its model is not retried
    deployments.wait("watched", lambda s: deployments.revision_deployments("watched") == {3},
                     timeout=60)  # fmt: skip
    assert history(deployments.status("watched"))[-1] == (3, "Promoted")
