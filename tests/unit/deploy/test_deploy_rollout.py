"""Rollout strategies, revisions and history, driven tick by tick through the pure planner.

``Sim`` plays the cluster's part with data only: Deployments it is told to ensure exist
with the planned replicas and become ready one tick later, unless the test marks a
revision broken (a wrong checksum: the server never reports ready).
"""

from __future__ import annotations

import datetime as dt

from thunderbolt.api.modeldeployment import ModelDeploymentStatus, parse_spec
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy.analysis import Verdict
from thunderbolt.deploy.rollout import Observed, Unresolved, plan
from thunderbolt.deploy.sources import ResolvedModel

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def model(n: int) -> ResolvedModel:
    return ResolvedModel(
        uri=f"s3://models/m{n}.onnx", checksum="sha256:" + f"{n:x}" * 64, source="uri"
    )


PASS = Verdict(True, "AnalysisPassed", "ok")
FAIL = Verdict(False, "ErrorRateTooHigh", "error rate 40.0% over 100 requests exceeds 1.0%")
WAIT = Verdict(None, "NotEnoughRequests", "3 requests, need 50")


class Sim:
    def __init__(self, **spec):
        spec.setdefault("model", {"uri": "s3://x/y.onnx", "checksum": "sha256:" + "0" * 64})
        self.spec = parse_spec(spec)
        self.status = ModelDeploymentStatus()
        self.observed: dict[int, Observed] = {}
        self.broken: set[int] = set()
        self.now = T0
        self.plan = None
        self.events: list[tuple[str, str, str]] = []

    def tick(self, desired, verdict=None, seconds=1.0, gateway=False):
        self.now += dt.timedelta(seconds=seconds)
        for n, o in list(self.observed.items()):  # pods started last tick are ready now
            ready = 0 if n in self.broken else o.replicas
            self.observed[n] = Observed(o.replicas, ready, o.replicas)
        p = plan(self.spec, self.status, desired, dict(self.observed), self.now,
                 generation=1, verdict=verdict, gateway_api=gateway)  # fmt: skip
        self.status, self.plan = p.status, p
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

    def condition(self, type_):
        return next(c for c in self.status.conditions if c.type == type_)


def serve_first(sim: Sim, m=None):
    m = m or model(1)
    sim.tick(m)
    sim.tick(m)
    assert sim.status.currentRevision and sim.status.phase == "Available"
    return m


def test_first_revision_is_selected_at_once_and_available_when_ready():
    sim = Sim(replicas=2)
    p = sim.tick(model(1))
    assert sim.status.phase == "Progressing" and sim.status.currentRevision is None
    assert p.selector_revision == 1 and p.deployments[1][1] == 2
    assert sim.condition("Available").status == "False"
    sim.tick(model(1))
    assert sim.status.phase == "Available"
    assert sim.status.currentRevision.number == 1
    assert sim.status.currentRevision.modelUri == "s3://models/m1.onnx"
    assert sim.outcomes() == [(1, "Promoted")]
    assert sim.condition("Available").status == "True"
    assert sim.condition("Progressing").status == "False"
    assert sim.condition("Degraded").status == "False"


def test_rolling_switches_the_service_only_after_the_new_revision_is_ready():
    sim = Sim(replicas=2)
    serve_first(sim)
    p = sim.tick(model(2))
    assert p.selector_revision == 1 and set(p.deployments) == {1, 2}
    assert sim.status.phase == "Progressing" and sim.outcomes() == [(1, "Promoted"), (2, "Active")]
    p = sim.tick(model(2))
    assert p.selector_revision == 2 and p.delete == [1]
    assert sim.status.currentRevision.number == 2
    assert sim.outcomes() == [(1, "Superseded"), (2, "Promoted")]
    assert sim.status.history[0].retiredAt is not None


def test_a_revision_that_never_becomes_ready_never_gets_traffic():
    sim = Sim()
    serve_first(sim)
    sim.broken.add(2)
    for _ in range(20):
        p = sim.tick(model(2), seconds=5)
        assert p.selector_revision == 1
    assert sim.status.currentRevision.number == 1
    assert sim.status.phase == "Progressing"
    sim.tick(model(2), seconds=600)  # past the progress deadline
    assert sim.status.phase == "Degraded" and sim.status.reason == "ProgressDeadlineExceeded"
    assert sim.condition("Available").status == "True"
    # A fixed model replaces the stuck revision.
    p = sim.tick(model(3))
    assert sim.outcomes() == [(1, "Promoted"), (2, "Superseded"), (3, "Active")]
    assert 2 in p.delete and p.selector_revision == 1
    sim.tick(model(3))
    assert sim.status.currentRevision.number == 3 and sim.status.phase == "Available"


def test_reverting_the_spec_mid_rollout_keeps_the_serving_revision_without_a_new_one():
    sim = Sim()
    serve_first(sim)
    sim.broken.add(2)
    sim.tick(model(2))
    p = sim.tick(model(1))
    assert sim.outcomes() == [(1, "Promoted"), (2, "Superseded")]
    assert p.delete == [2] and sim.status.phase == "Available"


def test_blue_green_previews_the_new_revision_before_switching():
    sim = Sim(strategy={"type": "BlueGreen"})
    p = sim.tick(model(1))
    assert p.preview_revision == 1
    sim.tick(model(1))
    p = sim.tick(model(2))
    assert (p.selector_revision, p.preview_revision) == (1, 2)
    p = sim.tick(model(2))
    assert (p.selector_revision, p.preview_revision) == (2, 2)


CANARY = {
    "type": "Canary",
    "canary": {"steps": [{"weight": 10, "pauseSeconds": 30}, {"weight": 50, "pauseSeconds": 0}]},
    "analysis": {"maxErrorRate": 0.01, "maxLatencyP99Ms": 50, "minRequests": 50},
}


def test_canary_steps_through_weights_pauses_and_analysis_then_promotes():
    sim = Sim(replicas=9, strategy=CANARY)
    serve_first(sim)
    p = sim.tick(model(2))
    assert sim.status.canary.revision == 2 and sim.status.canary.step == 0
    assert p.deployments[1][1] == 9 and p.deployments[2][1] == 1  # 10 %: 9 stable : 1 canary
    assert p.select_all  # one Service over both revisions
    assert sim.status.canary.stepStartedAt is None
    sim.tick(model(2), verdict=PASS)
    assert sim.status.canary.stepStartedAt is not None
    sim.tick(model(2), verdict=PASS, seconds=10)
    assert sim.status.canary.step == 0  # still pausing
    sim.tick(model(2), verdict=WAIT, seconds=30)
    assert sim.status.canary.step == 0  # pause over, but not enough requests to judge
    assert "enough requests" in sim.status.message
    p = sim.tick(model(2), verdict=PASS)
    assert sim.status.canary.step == 1 and sim.status.canary.weight == 50
    assert p.deployments[1][1] == 9 and p.deployments[2][1] == 9
    sim.tick(model(2), verdict=PASS)  # step 2 ready, no pause: finish
    assert sim.status.canary.weight == 100
    p = sim.tick(model(2), verdict=PASS)
    assert sim.status.currentRevision.number == 2 and sim.status.canary is None
    assert p.selector_revision == 2 and not p.select_all and p.delete == [1]
    assert sim.outcomes() == [(1, "Superseded"), (2, "Promoted")]
    assert any(reason == "CanaryStep" for _, reason, _ in sim.events)


def test_canary_waits_for_stale_revisions_to_go_before_selecting_all_pods():
    sim = Sim(strategy=CANARY)
    serve_first(sim)
    sim.observed[7] = Observed(1, 1, 1)  # a leftover revision's pods
    p = sim.tick(model(2))
    assert p.delete == [7] and not p.select_all and p.selector_revision == 1
    p = sim.tick(model(2))
    assert p.select_all


def test_failed_analysis_rolls_back_the_canary_and_leaves_stable_serving():
    sim = Sim(replicas=2, strategy=CANARY)
    serve_first(sim)
    sim.tick(model(2))
    sim.tick(model(2), verdict=WAIT)
    p = sim.tick(model(2), verdict=FAIL)
    assert p.deployments == {1: (sim.status.currentRevision, 2)}
    assert p.delete == [2] and p.selector_revision == 1 and not p.select_all
    assert sim.status.canary is None and sim.status.currentRevision.number == 1
    assert sim.status.phase == "Degraded" and sim.status.reason == rv.ANALYSIS_FAILED
    assert sim.outcomes() == [(1, "Promoted"), (2, "RolledBack")]
    assert "error rate 40.0%" in sim.status.history[-1].reason
    assert sim.condition("Available").status == "True"
    # The same model is not retried while the spec names it ...
    for _ in range(3):
        p = sim.tick(model(2))
        assert set(p.deployments) == {1} and sim.status.phase == "Degraded"
    # ... a new one is.
    sim.tick(model(3))
    assert sim.outcomes()[-1] == (3, "Active") and sim.status.canary.revision == 3


def test_gateway_api_gets_exact_route_weights_during_a_canary():
    sim = Sim(strategy=CANARY)
    serve_first(sim)
    p = sim.tick(model(2), gateway=True)
    assert p.route_weights == {1: 90, 2: 10}
    assert sim.tick(model(2), gateway=False).route_weights is None


def test_rollback_to_deploys_the_old_model_as_a_new_revision_without_canary():
    sim = Sim(strategy=CANARY)
    serve_first(sim)
    sim.spec = sim.spec.model_copy(
        update={"strategy": parse_spec({"model": {"trialRef": "x"}}).strategy}
    )
    sim.tick(model(2))
    sim.tick(model(2))
    assert sim.status.currentRevision.number == 2
    sim.spec = parse_spec({"model": {"trialRef": "x"}, "strategy": CANARY, "rollbackTo": 1})
    target = rv.rollback_target(sim.status, 1)
    assert target.uri == model(1).uri and target.source == "rollback/1"
    sim.tick(target)
    assert sim.status.canary is None and sim.outcomes()[-1] == (3, "Active")
    sim.tick(target)
    assert sim.status.currentRevision.number == 3
    assert sim.status.currentRevision.modelUri == model(1).uri
    assert sim.outcomes() == [(1, "Superseded"), (2, "RolledBack"), (3, "Promoted")]
    assert sim.status.history[1].reason == "rolled back to revision 1"
    # Staying pinned changes nothing.
    sim.tick(rv.rollback_target(sim.status, 1))
    assert sim.outcomes()[-1] == (3, "Promoted")


def test_rollback_to_an_unknown_revision_degrades_and_keeps_serving():
    sim = Sim()
    serve_first(sim)
    try:
        rv.rollback_target(sim.status, 9)
        raise AssertionError("expected RevisionNotFound")
    except rv.RevisionNotFound as exc:
        desired = Unresolved("RevisionNotFound", str(exc), error=True)
    p = sim.tick(desired)
    assert sim.status.phase == "Degraded" and sim.status.reason == "RevisionNotFound"
    assert set(p.deployments) == {1} and sim.status.currentRevision.number == 1


def test_history_is_bounded_and_keeps_the_serving_revision():
    sim = Sim(revisionHistoryLimit=2)
    for n in range(1, 6):
        sim.tick(model(n))
        sim.tick(model(n))
    assert [h.number for h in sim.status.history] == [4, 5]
    assert sim.status.currentRevision.number == 5
    assert sim.outcomes() == [(4, "Superseded"), (5, "Promoted")]
    # Numbers are never reused after trimming.
    sim.tick(model(1))
    assert sim.outcomes()[-1] == (6, "Active")


def test_refused_model_is_recorded_once_and_the_current_revision_keeps_serving():
    sim = Sim()
    serve_first(sim)
    bad = ResolvedModel(
        uri="models:/iris/4", checksum=None, source="mlflow/iris/4", mlflow_version="4"
    )
    refused = Unresolved(
        "ChecksumMismatch",
        "tagged sha256:aa but the artifact is sha256:bb",
        refused=True,
        model=bad,
    )
    for _ in range(3):
        p = sim.tick(refused)
        assert set(p.deployments) == {1} and p.selector_revision == 1
    assert sim.outcomes() == [(1, "Promoted"), (2, "Refused")]
    assert sim.status.history[-1].mlflowModelVersion == "4"
    assert sim.status.history[-1].reason.startswith("ChecksumMismatch")
    assert sim.status.phase == "Degraded" and sim.condition("Degraded").reason == "ChecksumMismatch"
    assert sim.condition("Available").status == "True"
    sim.tick(model(5))
    assert sim.outcomes()[-1] == (3, "Active")


def test_unresolved_source_with_nothing_serving_is_pending():
    sim = Sim()
    p = sim.tick(Unresolved("TrialNotFinished", "Trial t is Running; waiting for Succeeded"))
    assert sim.status.phase == "Pending" and p.deployments == {} and p.selector_revision is None
    assert sim.condition("Progressing").reason == "TrialNotFinished"


def test_trim_never_drops_kept_entries():
    sim = Sim(revisionHistoryLimit=1)
    serve_first(sim)
    sim.broken.add(2)
    sim.tick(model(2))
    assert [h.number for h in sim.status.history] == [1, 2]  # serving + rolling out


def test_a_finished_rollback_stays_put_when_its_target_left_the_history():
    sim = Sim(revisionHistoryLimit=3)
    serve_first(sim)
    for n in (2, 3):
        sim.tick(model(n))
        sim.tick(model(n))
    target = rv.rollback_target(sim.status, 1)
    sim.tick(target)
    sim.tick(target)
    assert sim.status.currentRevision.number == 4
    assert [h.number for h in sim.status.history] == [2, 3, 4]  # r1 trimmed
    again = rv.rollback_target(sim.status, 1)
    assert again.identity() == model(1).identity()
    sim.tick(again)
    assert sim.status.phase == "Available"
    assert sim.outcomes() == [(2, "Superseded"), (3, "RolledBack"), (4, "Promoted")]
