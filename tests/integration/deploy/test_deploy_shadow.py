"""The Shadow strategy on the real cluster: the candidate only receives mirrored requests
from the stable pods, so a faulty candidate is refused with zero failed client requests,
and one that agrees with stable is promoted through the normal path."""

from __future__ import annotations

import re

from tests.integration.deploy.helpers import current, history, infer, upload
from tests.unit.serving.onnx_models import failing_model, linear_model, slow_model

SHADOW = {
    "type": "Shadow",
    "shadow": {"percent": 100, "durationSeconds": 5, "minAgreement": 0.95, "timeoutMs": 2000},
    "analysis": {"maxErrorRate": 0.05, "maxLatencyP99Ms": 2000, "minRequests": 10,
                 "intervalSeconds": 2},
}  # fmt: skip


def test_shadow_refuses_a_faulty_candidate_then_promotes_an_agreeing_one(deployments, host_s3):
    good, faulty = upload(host_s3, linear_model()), upload(host_s3, failing_model())
    same = upload(host_s3, linear_model(tag="retrained"))  # other bytes, same answers
    deployments.create("sh", {
        "model": {"uri": good[0], "checksum": good[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": SHADOW,
    })  # fmt: skip
    deployments.wait("sh", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("sh")
    answers: list[int] = []
    seen: list[dict] = []

    def traffic() -> None:
        answers.extend(infer(ip, 8080, "iris") for _ in range(5))
        shadow = deployments.status("sh").get("shadow")
        if shadow:
            seen.append(shadow)

    deployments.patch("sh", {"model": {"uri": faulty[0], "checksum": faulty[1]}})
    status = deployments.wait(
        "sh", lambda s: (2, "RolledBack") in history(s), timeout=240, every=traffic
    )
    assert answers and set(answers) == {200}, f"clients saw {sorted(set(answers))}"
    assert status["history"][-1]["reason"].startswith("ShadowFailed: error rate 100.0%")
    assert status["phase"] == "Degraded" and status["reason"] == "ShadowFailed"
    assert current(status) == 1 and "shadow" not in status
    deployments.wait("sh", lambda s: deployments.revision_deployments("sh") == {1})
    assert deployments.selector("sh-shadow")["thunderbolt.io/revision"] == "none"

    deployments.patch("sh", {"model": {"uri": same[0], "checksum": same[1]}})
    answers.clear()
    seen.clear()
    status = deployments.wait(
        "sh", lambda s: current(s) == 3 and s["phase"] == "Available", timeout=240, every=traffic
    )
    assert answers and set(answers) == {200}, f"clients saw {sorted(set(answers))}"
    assert history(status) == [(1, "Superseded"), (2, "RolledBack"), (3, "Promoted")]
    assert "shadow passed" in status["history"][-1]["reason"]
    assert any((s.get("comparedRows") or 0) >= 1 and s.get("agreement") == 1.0 for s in seen)
    deployments.wait_selected("sh", 3)
    wanted = {"ShadowStarted", "ShadowPassed", "RolledBack", "Promoted"}
    deployments.wait("sh", lambda s: wanted <= deployments.event_reasons("sh"), timeout=30)
    assert {infer(ip, 8080, "iris") for _ in range(10)} == {200}


def test_shadow_refuses_a_slow_candidate_on_p99_while_clients_keep_getting_answers(
    deployments, host_s3
):
    good, slow = upload(host_s3, linear_model()), upload(host_s3, slow_model(iterations=300))
    strategy = {**SHADOW, "shadow": {**SHADOW["shadow"], "timeoutMs": 200},
                "analysis": {**SHADOW["analysis"], "maxLatencyP99Ms": 40, "minRequests": 5}}  # fmt: skip
    deployments.create("shs", {
        "model": {"uri": good[0], "checksum": good[1]}, "modelName": "iris",
        "resources": {"cpu": "100m", "memory": "256Mi"}, "strategy": strategy,
    })  # fmt: skip
    deployments.wait("shs", lambda s: s.get("phase") == "Available")
    ip = deployments.cluster_ip("shs")
    deployments.patch("shs", {"model": {"uri": slow[0], "checksum": slow[1]}})
    answers: list[int] = []

    def traffic() -> None:
        answers.extend(infer(ip, 8080, "iris") for _ in range(5))

    status = deployments.wait(
        "shs", lambda s: (2, "RolledBack") in history(s), timeout=240, every=traffic
    )
    assert answers and set(answers) == {200}, f"clients saw {sorted(set(answers))}"
    reason = status["history"][-1]["reason"]
    # its own p99 once it has answered minRequests; before its first answer (about 1.4 s at
    # 100m CPU) stable's 200 ms timeouts may already refuse it
    assert re.match(r"ShadowFailed: (p99 latency|\d+ mirrored requests timed out)", reason), reason
    assert current(status) == 1 and status["reason"] == "ShadowFailed"
