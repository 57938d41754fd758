"""Canary rollouts judged by the pods' own /metrics: a failing model is rolled back
automatically while the stable revision keeps serving; a healthy one is promoted."""

from __future__ import annotations

from tests.integration.deploy.helpers import current, history, infer, upload
from tests.unit.serving.onnx_models import failing_model, linear_model, slow_model

CANARY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 50, "pauseSeconds": 5}, {"weight": 100, "pauseSeconds": 2}]},
    "analysis": {
        "maxErrorRate": 0.05,
        "maxLatencyP99Ms": 2000,
        "minRequests": 10,
        "intervalSeconds": 2,
    },
}


def test_canary_failing_analysis_is_rolled_back_and_stable_keeps_serving(deployments, host_s3):
    good, bad = upload(host_s3, linear_model(k=1)), upload(host_s3, failing_model())
    deployments.create("cn", {
        "model": {"uri": good[0], "checksum": good[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": CANARY,
    })  # fmt: skip
    deployments.wait("cn", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("cn")

    deployments.patch("cn", {"model": {"uri": bad[0], "checksum": bad[1]}})
    answers: list[int] = []

    def traffic() -> None:
        answers.extend(infer(ip, 8080, "iris") for _ in range(5))

    status = deployments.wait(
        "cn", lambda s: (2, "RolledBack") in history(s), timeout=240, every=traffic
    )
    assert 500 in answers, "the canary never received traffic"
    assert 200 in answers, "the stable revision stopped answering during the canary"
    assert status["phase"] == "Degraded" and status["reason"] == "AnalysisFailed"
    assert "error rate" in status["history"][-1]["reason"]
    assert current(status) == 1 and "canary" not in status
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    deployments.wait("cn", lambda s: deployments.revision_deployments("cn") == {1})
    deployments.wait_selected("cn", 1)
    after = [infer(ip, 8080, "iris") for _ in range(20)]
    assert set(after) == {200}, after
    # Every step left a Kubernetes Event on the ModelDeployment.
    wanted = {"NewRevision", "Promoted", "RolledBack"}
    deployments.wait("cn", lambda s: wanted <= deployments.event_reasons("cn"), timeout=30)
    # The failed model is not retried while the spec still names it.
    status = deployments.status("cn")
    assert history(status)[-1] == (2, "RolledBack") and deployments.revision_deployments("cn") == {
        1
    }


def test_healthy_canary_steps_through_and_is_promoted(deployments, host_s3):
    m1, m2 = upload(host_s3, linear_model(k=1)), upload(host_s3, linear_model(k=2))
    deployments.create("ok", {
        "model": {"uri": m1[0], "checksum": m1[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": CANARY,
    })  # fmt: skip
    deployments.wait("ok", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("ok")
    deployments.patch("ok", {"model": {"uri": m2[0], "checksum": m2[1]}})
    weights: set[int] = set()
    restarted: list[bool] = []

    def traffic() -> None:
        canary = deployments.status("ok").get("canary")
        if canary:
            weights.add(canary["weight"])
            if not restarted:  # a crashed operator picks the canary up where it was
                deployments.operator.restart()  # SIGKILL, then start again
                restarted.append(True)
        for _ in range(5):
            assert infer(ip, 8080, "iris") == 200

    status = deployments.wait("ok", lambda s: current(s) == 2 and s["phase"] == "Available",
                              timeout=240, every=traffic)  # fmt: skip
    assert {50, 100} <= weights and restarted
    assert history(status) == [(1, "Superseded"), (2, "Promoted")]
    deployments.wait_selected("ok", 2)


def test_slow_canary_is_rolled_back_on_p99_latency(deployments, host_s3):
    good, slow = upload(host_s3, linear_model(k=1)), upload(host_s3, slow_model(iterations=300))
    strategy = {**CANARY, "analysis": {"maxErrorRate": 0.5, "maxLatencyP99Ms": 40, "minRequests": 5,
                                       "intervalSeconds": 2}}  # fmt: skip
    deployments.create("slow", {
        "model": {"uri": good[0], "checksum": good[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": strategy,
    })  # fmt: skip
    deployments.wait("slow", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("slow")
    deployments.patch("slow", {"model": {"uri": slow[0], "checksum": slow[1]}})

    def traffic() -> None:
        for _ in range(5):
            assert infer(ip, 8080, "iris", timeout=30) == 200

    status = deployments.wait(
        "slow", lambda s: (2, "RolledBack") in history(s), timeout=240, every=traffic
    )
    assert "p99 latency" in status["history"][-1]["reason"], status["history"][-1]
    assert current(status) == 1 and status["reason"] == "AnalysisFailed"
