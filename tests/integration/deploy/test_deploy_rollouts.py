"""Rolling and blue-green rollouts, a wrong checksum, rollbackTo and the history limit, for real.

The test process on the host sends inference requests to the Service's ClusterIP while
revisions change, so "the old revision keeps serving" is observed, not assumed.
"""

from __future__ import annotations

from tests.integration.deploy.helpers import (
    BAD_CHECKSUM,
    current,
    history,
    infer,
    infer_grpc,
    upload,
)
from tests.unit.serving.onnx_models import linear_model


def test_rolling_switches_after_readiness_wrong_checksum_never_serves_and_rollback_restores(
    deployments, host_s3
):
    m1, m2 = upload(host_s3, linear_model(k=1)), upload(host_s3, linear_model(k=2))
    deployments.create("iris", {
        "model": {"uri": m1[0], "checksum": m1[1]},
        "replicas": 1, "resources": {"cpu": "100m", "memory": "256Mi"},
        "revisionHistoryLimit": 3,
    })  # fmt: skip
    status = deployments.wait("iris", lambda s: s.get("phase") == "Available")
    assert current(status) == 1 and history(status) == [(1, "Promoted")]
    assert status["endpoint"].endswith(".svc:8080/v2/models/iris")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Available": "True", "Progressing": "False", "Degraded": "False"}
    ip = deployments.cluster_ip("iris")
    assert infer(ip, 8080, "iris") == 200
    assert len(infer_grpc(ip, 8081, "iris")[0]) == 1  # the Service's named port "grpc"

    # A model whose checksum does not match never becomes ready: the Service stays on r1.
    deployments.patch("iris", {"model": {"uri": m2[0], "checksum": BAD_CHECKSUM}})
    deployments.wait("iris", lambda s: (2, "Active") in history(s))
    answers = []
    deployments.wait(
        "iris", lambda s: len(answers) >= 20, timeout=120,
        every=lambda: answers.append(infer(ip, 8080, "iris")),
    )  # fmt: skip
    status = deployments.status("iris")
    assert current(status) == 1 and status["phase"] == "Progressing"
    assert deployments.selector("iris")["thunderbolt.io/revision"] == "1"
    assert set(answers) == {200}, answers

    # The right checksum rolls out; the stuck revision is superseded and removed.
    deployments.patch("iris", {"model": {"uri": m2[0], "checksum": m2[1]}})
    status = deployments.wait("iris", lambda s: current(s) == 3 and s.get("phase") == "Available")
    assert history(status) == [(1, "Superseded"), (2, "Superseded"), (3, "Promoted")]
    deployments.wait_selected("iris", 3)
    deployments.wait("iris", lambda s: deployments.revision_deployments("iris") == {3})
    assert infer(ip, 8080, "iris") == 200

    # rollbackTo 1: r1's model comes back as revision 4; the history keeps only 3 entries.
    deployments.patch("iris", {"rollbackTo": 1})
    status = deployments.wait("iris", lambda s: current(s) == 4 and s.get("phase") == "Available")
    assert status["currentRevision"]["modelUri"] == m1[0]
    assert status["currentRevision"]["source"] == "rollback/1"
    assert history(status) == [(2, "Superseded"), (3, "RolledBack"), (4, "Promoted")]
    deployments.wait_selected("iris", 4)
    assert infer(ip, 8080, "iris") == 200


def test_blue_green_previews_the_new_revision_and_switches_only_when_ready(deployments, host_s3):
    m1, m2 = upload(host_s3, linear_model(k=1)), upload(host_s3, linear_model(k=3))
    deployments.create("bg", {
        "model": {"uri": m1[0], "checksum": m1[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": {"type": "BlueGreen"},
    })  # fmt: skip
    status = deployments.wait("bg", lambda s: s.get("phase") == "Available")
    assert status["previewEndpoint"].startswith("http://bg-preview.")
    ip = deployments.cluster_ip("bg")

    deployments.patch("bg", {"model": {"uri": m2[0], "checksum": m2[1]}})
    seen_preview_first = []

    def observe() -> None:
        # Selectors first: the operator records a promotion before it switches the Service,
        # so a status read afterwards that still says Active proves the switch had not happened.
        main = deployments.selector("bg")["thunderbolt.io/revision"]
        preview = deployments.selector("bg-preview").get("thunderbolt.io/revision")
        if (2, "Active") in history(deployments.status("bg")):
            assert main == "1", "main Service switched before the new revision was ready"
            seen_preview_first.append(preview)
        assert infer(ip, 8080, "iris") == 200

    status = deployments.wait("bg", lambda s: current(s) == 2, every=observe)
    assert "2" in seen_preview_first
    deployments.wait_selected("bg", 2)
    assert deployments.selector("bg-preview")["thunderbolt.io/revision"] == "2"
    assert history(status) == [(1, "Superseded"), (2, "Promoted")]
