"""The Shadow strategy's pure parts: reading the pods' figures, judging them, and the
planner steps from start to promotion or rollback (the controller's side; the mirroring
itself is tested in tests/unit/serving/test_serving_mirror.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from tests.unit.deploy.test_deploy_rollout import T0, model
from thunderbolt.api.modeldeployment import Analysis, ModelDeploymentStatus, Shadow, parse_spec
from thunderbolt.api.serving import MirrorConfig
from thunderbolt.deploy import builders as b
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy import shadow as shadows
from thunderbolt.deploy.promparse import Snapshot
from thunderbolt.deploy.rollout import Observed, plan
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.mirror import MirrorMetrics

LIMITS = Analysis(maxErrorRate=0.05, maxLatencyP99Ms=100, minRequests=20)
SHADOW = {
    "type": "Shadow",
    "shadow": {"percent": 50, "durationSeconds": 30, "minAgreement": 0.9},
    "analysis": {"maxErrorRate": 0.05, "maxLatencyP99Ms": 100, "minRequests": 20},
}


def candidate_text(ok: int, failed: int = 0, seconds: float = 0.01) -> str:
    metrics = ServingMetrics()
    for _ in range(ok):
        metrics.requests.labels("iris", "200").inc()
        metrics.duration.labels("iris").observe(seconds)
    for _ in range(failed):
        metrics.requests.labels("iris", "500").inc()
        metrics.duration.labels("iris").observe(seconds)
    return generate_latest(metrics.registry).decode()


def stable_text(agree: int, disagree: int, candidate: str = "2", timeouts: int = 0) -> str:
    registry = CollectorRegistry()
    m = MirrorMetrics(registry)
    m.rows.labels("iris", candidate, "true").inc(agree)
    m.rows.labels("iris", candidate, "false").inc(disagree)
    m.rows.labels("iris", "9", "false").inc(1000)  # another candidate's rows never count
    m.mirrored.labels("iris", candidate, "timeout").inc(timeouts)
    m.mirrored.labels("iris", candidate, "dropped").inc(3)
    return generate_latest(registry).decode()


def test_measure_adds_pods_and_keeps_to_the_candidate_revision():
    f = shadows.measure([candidate_text(30), candidate_text(10, failed=2)],
                        [stable_text(50, 5, timeouts=1), stable_text(40, 5)], "iris", 2)  # fmt: skip
    assert f.candidate.requests == 42 and f.candidate.server_errors == 2
    assert (f.agreed, f.rows, f.timeouts, f.dropped) == (90, 100, 1, 6)
    assert f.agreement == 0.9
    assert shadows.measure([], [], "iris", 2).agreement is None


@pytest.mark.parametrize(
    ("candidate", "stable", "passed", "reason"),
    [
        (candidate_text(10), stable_text(10, 0), None, "NotEnoughRequests"),
        (candidate_text(10, failed=20), stable_text(10, 0), False, "ErrorRateTooHigh"),
        (candidate_text(30, seconds=0.5), stable_text(30, 0), False, "LatencyTooHigh"),
        (candidate_text(30), stable_text(0, 0), None, "NoComparedRows"),
        (candidate_text(30), stable_text(20, 10), False, "AgreementTooLow"),
        (candidate_text(30), stable_text(29, 1), True, "AnalysisPassed"),
        # accepts mirrors, never answers: no latency of its own, only stable's timeouts
        (candidate_text(0), stable_text(0, 0, timeouts=25), False, "MirrorTimeouts"),
        (candidate_text(0), stable_text(0, 0, timeouts=10), None, "NotEnoughRequests"),
        # slow but answering: judged on its own figures, not on stable's impatience
        (candidate_text(2), stable_text(2, 0, timeouts=50), None, "NotEnoughRequests"),
        (candidate_text(30, seconds=0.5), stable_text(30, 0, timeouts=50), False, "LatencyTooHigh"),
        (candidate_text(100), stable_text(100, 0, timeouts=1), True, "AnalysisPassed"),
    ],
)
def test_judge(candidate, stable, passed, reason):
    verdict = shadows.judge(shadows.measure([candidate], [stable], "iris", 2), LIMITS,
                            Shadow(minAgreement=0.9))  # fmt: skip
    assert (verdict.passed, verdict.reason) == (passed, reason), verdict.message


def verdict(passed: bool | None, revision: int = 2, reason: str = "x") -> shadows.ShadowVerdict:
    figures = shadows.Figures(revision, Snapshot({"200": 40.0, "500": 1.0}), 38, 40, 1, 0)
    return shadows.ShadowVerdict(passed, reason, f"{reason} message", figures)


class Sim:
    def __init__(self, **spec):
        spec.setdefault("model", {"uri": "s3://x/y.onnx", "checksum": "sha256:" + "0" * 64})
        self.spec = parse_spec(spec)
        self.status = ModelDeploymentStatus()
        self.observed: dict[int, Observed] = {}
        self.now = T0
        self.events: list[tuple[str, str, str]] = []
        self.broken: set[int] = set()

    def tick(self, desired, shadow=None, seconds=1.0):
        self.now += dt.timedelta(seconds=seconds)
        for n, o in list(self.observed.items()):  # pods started last tick are ready now
            ready = 0 if n in self.broken else o.replicas
            self.observed[n] = Observed(o.replicas, ready, o.replicas)
        p = plan(self.spec, self.status, desired, dict(self.observed), self.now, generation=1,
                 shadow=shadow)  # fmt: skip
        self.status = p.status
        self.events += p.events
        for n, (_, replicas) in p.deployments.items():
            old = self.observed.get(n)
            if old is None or old.replicas != replicas:
                self.observed[n] = Observed(replicas, min(old.ready, replicas) if old else 0, 0)
        for n in p.delete:
            self.observed.pop(n, None)
        return p

    def outcomes(self):
        return [(h.number, h.outcome) for h in self.status.history]

    def reasons(self):
        return [reason for _, reason, _ in self.events]


def started(replicas: int = 4) -> Sim:
    sim = Sim(replicas=replicas, strategy=SHADOW)
    sim.tick(model(1))
    sim.tick(model(1))
    assert sim.status.currentRevision.number == 1
    p = sim.tick(model(2))
    assert sim.status.shadow.revision == 2 and sim.status.shadow.startedAt is None
    assert p.deployments[1][1] == replicas and p.deployments[2][1] == 2  # 50 % of 4 pods
    assert p.selector_revision == 1 and not p.select_all and p.shadow_revision == 2
    p = sim.tick(model(2))
    assert sim.status.shadow.startedAt is not None and "ShadowStarted" in sim.reasons()
    return sim


def test_passing_shadow_waits_for_its_duration_then_scales_up_and_is_promoted():
    sim = started()
    p = sim.tick(model(2), shadow=verdict(None, reason="NotEnoughRequests"), seconds=40)
    assert sim.status.shadow.passedAt is None and p.selector_revision == 1
    p = sim.tick(model(2), shadow=verdict(True), seconds=1)
    assert sim.status.shadow.passedAt is not None and p.deployments[2][1] == 4
    assert sim.status.shadow.agreement == 0.95 and sim.status.shadow.requests == 41
    assert p.selector_revision == 1  # clients still get stable until the candidate is ready
    p = sim.tick(model(2), shadow=verdict(True))
    assert sim.status.currentRevision.number == 2 and sim.status.shadow is None
    assert p.selector_revision == 2 and p.delete == [1] and p.shadow_revision is None
    assert sim.outcomes() == [(1, "Superseded"), (2, "Promoted")]
    assert "shadow passed" in sim.status.history[-1].reason
    assert {"ShadowPassed", "Promoted"} <= set(sim.reasons())


def test_a_pass_before_the_duration_keeps_observing():
    sim = started()
    sim.tick(model(2), shadow=verdict(True), seconds=5)
    assert sim.status.shadow.passedAt is None
    assert "observing" in sim.status.message and sim.status.phase == "Progressing"


def test_failing_shadow_is_rolled_back_at_once_and_not_retried():
    sim = started()
    p = sim.tick(model(2), shadow=verdict(False, reason="ErrorRateTooHigh"))
    assert sim.outcomes() == [(1, "Promoted"), (2, "RolledBack")]
    assert sim.status.history[-1].reason.startswith("ShadowFailed: ErrorRateTooHigh message")
    assert sim.status.phase == "Degraded" and sim.status.reason == rv.SHADOW_FAILED
    assert sim.status.shadow is None and p.shadow_revision is None
    assert p.delete == [2] and set(p.deployments) == {1} and p.selector_revision == 1
    for _ in range(2):  # the same model stays refused while the spec names it
        p = sim.tick(model(2))
        assert set(p.deployments) == {1} and sim.status.reason == rv.SHADOW_FAILED
    sim.tick(model(3))
    assert sim.status.shadow.revision == 3


def test_stale_verdict_of_another_revision_is_ignored():
    sim = started()
    sim.tick(model(2), shadow=verdict(False, revision=7))
    assert sim.outcomes()[-1] == (2, "Active")


def test_first_revision_and_rollbacks_do_not_shadow():
    sim = Sim(strategy=SHADOW)
    p = sim.tick(model(1))
    assert sim.status.shadow is None and p.selector_revision == 1


def test_pods_mirror_to_the_shadow_service_only_under_the_shadow_strategy():
    owner = b.Owner("iris", "ns", "uid")
    spec = parse_spec({"model": {"uri": "s3://x/y.onnx", "checksum": "sha256:" + "0" * 64},
                       "strategy": SHADOW})  # fmt: skip
    dep = b.deployment(owner, spec, model(1).revision(1, None), 1, b.ServingDefaults("img"))
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    config = MirrorConfig.from_env(env)
    assert config == MirrorConfig("http://iris-shadow.ns.svc:8080", percent=50)
    assert b.shadow_selector(owner, None)[b.LABEL_REVISION] == "none"
    dep = b.deployment(owner, spec, model(1).revision(1, None), 1, b.ServingDefaults("img"),
                       mirror_host="10.96.0.7")  # fmt: skip
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert MirrorConfig.from_env(env).url == "http://10.96.0.7:8080"
    rolling = parse_spec({**spec.model_dump(exclude_none=True), "strategy": {"type": "Rolling"}})
    assert b.mirror_config(owner, rolling) is None


def test_shadow_settings_are_bounded():
    with pytest.raises(ValidationError):
        Shadow(percent=0)
    with pytest.raises(ValidationError):
        Shadow(timeoutMs=120000)
    assert shadows.candidate_replicas(4, 50) == 2 and shadows.candidate_replicas(1, 1) == 1
    with pytest.raises(ValueError):
        MirrorConfig.from_env({"THUNDERBOLT_MIRROR_URL": "ftp://x"})
    with pytest.raises(ValueError):
        MirrorConfig.from_env(
            {"THUNDERBOLT_MIRROR_URL": "http://x", "THUNDERBOLT_MIRROR_PERCENT": "101"}
        )


def test_a_candidate_that_never_gets_ready_degrades_after_the_deadline():
    sim = Sim(replicas=2, strategy=SHADOW)
    sim.tick(model(1))
    sim.tick(model(1))
    sim.broken.add(2)
    sim.tick(model(2))  # its pod never turns ready
    p = sim.tick(model(2), seconds=300)
    assert p.status.phase == "Progressing" and p.status.reason == "WaitingForReadiness"
    p = sim.tick(model(2), seconds=400)
    assert p.status.reason == "ProgressDeadlineExceeded" and p.status.phase == "Degraded"
    assert p.status.shadow.startedAt is None and p.selector_revision == 1
