"""``spec.sla``: windows judged from the serving pods' counters, a Degraded breach, and
an automatic rollback to the newest older revision that served."""

from __future__ import annotations

import datetime as dt

from tests.unit.deploy.test_deploy_rollout import Sim, model, serve_first
from thunderbolt.api.modeldeployment import SLA
from thunderbolt.deploy import sla as slas
from thunderbolt.deploy.promparse import Snapshot
from thunderbolt.deploy.rollout import Observed, plan


def counters(ok: float, errors: float, slow: float = 0.0) -> Snapshot:
    total = ok + errors
    fast = total - slow
    buckets = ((0.01, fast), (0.1, fast), (1.0, total), (float("inf"), total))
    return Snapshot({"200": ok, "500": errors}, buckets)


def test_a_window_is_the_difference_of_two_readings_and_is_judged_on_its_own():
    sla = SLA(maxErrorRate=0.05, maxLatencyP99Ms=200, minRequests=10)
    before, after = counters(1000, 0), counters(1090, 10)  # 100 requests, 10 errors since
    verdict = slas.judge(sla, 3, after - before, ready=2, replicas=2)
    assert verdict.breached and "error rate 10.0% over 100 requests" in verdict.message
    # the cumulative numbers alone (1% errors) would have hidden it
    assert not slas.judge(sla, 3, after, ready=2, replicas=2).breached
    slow = slas.judge(sla, 3, counters(1100, 0, slow=50) - before, ready=2, replicas=2)
    assert slow.breached and "p99 latency" in slow.message
    quiet = slas.judge(sla, 3, counters(1005, 0) - before, ready=2, replicas=2)
    assert quiet.breached is None
    down = slas.judge(SLA(minAvailability=0.9), 3, Snapshot(), ready=1, replicas=2)
    assert down.breached and "availability 50% (1/2 pods ready)" in down.message


def test_breaches_must_follow_each_other_to_count():
    first = slas.streak(None, slas.SlaVerdict(3, True, "x"))
    unjudged = slas.streak(first, slas.SlaVerdict(3, None, "quiet"))
    second = slas.streak(unjudged, slas.SlaVerdict(3, True, "x"))
    assert (first.streak, unjudged.streak, second.streak) == (1, 1, 2)
    assert slas.streak(second, slas.SlaVerdict(3, False, "ok")).streak == 0
    assert slas.streak(second, slas.SlaVerdict(4, True, "x")).streak == 1  # another revision


class SlaSim(Sim):
    def tick(self, desired, verdict=None, seconds=1.0, gateway=False, sla=None):
        self.now += dt.timedelta(seconds=seconds)
        for n, o in list(self.observed.items()):
            self.observed[n] = Observed(o.replicas, o.replicas, o.replicas)
        p = plan(self.spec, self.status, desired, dict(self.observed), self.now, generation=1,
                 verdict=verdict, sla=sla)  # fmt: skip
        self.status, self.plan = p.status, p
        self.events += p.events
        for n, (_, replicas) in p.deployments.items():
            if n not in self.observed or self.observed[n].replicas != replicas:
                self.observed[n] = Observed(replicas, 0, 0)
        for n in p.delete:
            self.observed.pop(n, None)
        return p


def breach(revision: int, streak: int = 2) -> slas.SlaVerdict:
    return slas.SlaVerdict(
        revision, True, "error rate 40.0% over 50 requests in the window exceeds 1.0%", streak
    )


def test_a_breach_alerts_and_clears_when_the_windows_are_good_again():
    sim = SlaSim(sla={"maxErrorRate": 0.01, "breachWindows": 2})
    serve_first(sim, model(1))
    sim.tick(model(1), sla=breach(1, streak=1))
    assert sim.status.phase == "Available"  # one window is not a breach yet
    sim.tick(model(1), sla=breach(1))
    assert sim.status.phase == "Degraded" and sim.status.reason == "SLABreached"
    assert sim.status.history[0].slaBreach and sum(e[1] == "SLABreached" for e in sim.events) == 1
    sim.tick(model(1), sla=breach(1, streak=3))
    assert sum(e[1] == "SLABreached" for e in sim.events) == 1  # one Event per breach
    sim.tick(model(1), sla=slas.SlaVerdict(1, False, "ok"))
    assert sim.status.phase == "Available" and sim.outcomes() == [(1, "Promoted")]


def test_on_breach_rollback_returns_to_the_newest_revision_that_served_and_holds():
    sim = SlaSim(sla={"maxErrorRate": 0.01, "onBreach": "Rollback"})
    serve_first(sim, model(1))
    for _ in range(3):
        sim.tick(model(2))
    assert sim.outcomes() == [(1, "Superseded"), (2, "Promoted")]
    p = sim.tick(model(2), sla=breach(2))
    assert sim.outcomes()[-1] == (3, "Active") and sim.status.history[-1].source == "rollback/1"
    assert "SLA breach of revision 2" in sim.status.history[-1].reason and 3 in p.deployments
    for _ in range(3):
        p = sim.tick(model(2))
    assert sim.outcomes() == [(1, "Superseded"), (2, "RolledBack"), (3, "Promoted")]
    assert sim.status.currentRevision.number == 3 and set(p.deployments) == {3}
    assert sim.status.phase == "Degraded" and sim.status.reason == "SLABreached"
    assert "change spec.model" in sim.status.message  # model 2 is not redeployed
    sim.tick(model(4))
    assert sim.outcomes()[-1] == (4, "Active")  # a new model goes ahead


def test_without_an_earlier_revision_a_breach_only_alerts():
    sim = SlaSim(sla={"maxErrorRate": 0.01, "onBreach": "Rollback"})
    serve_first(sim, model(1))
    sim.tick(model(1), sla=breach(1))
    assert sim.outcomes() == [(1, "Promoted")] and "no earlier revision" in sim.status.message
