"""``spec.approval: Manual``: revisions wait for a decision, recorded in the history.

Driven through the pure planner with the ``Sim`` of the rollout tests; decisions are the
annotations the CLI writes, parsed as the controller parses them (with the managedFields
entry the API server would have written).
"""

from __future__ import annotations

import datetime as dt
import json

from tests.unit.deploy.test_deploy_rollout import PASS, Sim, model, serve_first
from thunderbolt.deploy import approval
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy.rollout import Observed, plan
from thunderbolt.deploy.sources import ResolvedModel


class ApprovalSim(Sim):
    def __init__(self, **spec):
        spec.setdefault("approval", "Manual")
        super().__init__(**spec)
        self.metadata: dict = {"annotations": {}, "managedFields": []}

    def decide(self, number: int, decision: str, reason: str, by: str = "alice") -> None:
        key, value = approval.annotation(number, decision, reason, by)
        self.metadata["annotations"][key] = value
        self.metadata["managedFields"].append({
            "manager": "thunderbolt-cli", "operation": "Update", "time": "2026-01-01T00:05:00Z",
            "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{key}": {}}}},
        })  # fmt: skip

    def tick(self, desired, verdict=None, seconds=1.0, gateway=False):
        self.now += dt.timedelta(seconds=seconds)
        for n, o in list(self.observed.items()):
            self.observed[n] = Observed(o.replicas, o.replicas, o.replicas)
        found, bad = approval.decisions(self.metadata)
        p = plan(self.spec, self.status, desired, dict(self.observed), self.now, generation=1,
                 verdict=verdict, decisions=found, bad_decisions=bad)  # fmt: skip
        self.status, self.plan = p.status, p
        self.events += p.events
        for n, (_, replicas) in p.deployments.items():
            old = self.observed.get(n)
            if old is None or old.replicas != replicas:
                self.observed[n] = Observed(replicas, 0, 0)
        for n in p.delete:
            self.observed.pop(n, None)
        return p


def with_objective(n: int, objective: float) -> ResolvedModel:
    m = model(n)
    return ResolvedModel(uri=m.uri, checksum=m.checksum, source=f"trial/t{n}", trial=f"t{n}",
                         objective=objective, objective_metric="val_accuracy",
                         validation="Warn")  # fmt: skip


def test_a_first_revision_waits_deploys_nothing_and_rolls_out_once_approved():
    sim = ApprovalSim(replicas=2)
    m = with_objective(1, 0.9)
    for _ in range(3):
        p = sim.tick(m)
    assert sim.outcomes() == [(1, "PendingApproval")]
    assert p.deployments == {} and p.selector_revision is None
    assert (sim.status.phase, sim.status.reason) == ("Pending", "PendingApproval")
    waiting = sim.status.history[0]
    assert waiting.objective == 0.9 and waiting.validation == "Warn" and waiting.deployedAt is None
    assert waiting.modelChecksum == m.checksum and waiting.source == "trial/t1"

    sim.decide(1, "Approved", "checked the confusion matrix")
    p = sim.tick(m)
    assert sim.outcomes() == [(1, "Active")] and p.deployments[1][1] == 2
    entry = sim.status.history[0]
    assert entry.approval is not None and entry.approval.by == "alice"
    assert entry.approval.manager == "thunderbolt-cli"
    assert entry.approval.at == "2026-01-01T00:05:00Z"
    assert "approved by alice: checked the confusion matrix" in (entry.reason or "")
    assert entry.deployedAt is not None
    sim.tick(m)
    sim.tick(m)
    assert sim.status.phase == "Available" and sim.outcomes() == [(1, "Promoted")]
    assert (
        "Normal",
        "Approved",
        "revision 1 approved by alice: checked the confusion matrix",
    ) in sim.events


def test_a_rejected_revision_is_never_deployed_and_not_asked_for_again():
    sim = ApprovalSim(replicas=1)
    sim.tick(with_objective(1, 0.9))
    sim.decide(1, "Approved", "ok")
    for _ in range(3):
        sim.tick(with_objective(1, 0.9))
    assert sim.status.phase == "Available"
    worse = with_objective(2, 0.8)
    sim.tick(worse)
    waiting = sim.status.history[-1]
    assert (waiting.number, waiting.outcome, waiting.servingObjective) == (
        2,
        "PendingApproval",
        0.9,
    )
    assert (sim.status.phase, sim.status.reason) == ("Available", "PendingApproval")
    sim.decide(2, "Rejected", "worse than serving")
    for _ in range(3):
        p = sim.tick(worse)
        assert set(p.deployments) == {1}
    assert sim.outcomes() == [(1, "Promoted"), (2, "Rejected")]
    assert sim.status.phase == "Degraded" and sim.status.reason == "Rejected"
    assert sim.status.currentRevision is not None and sim.status.currentRevision.number == 1
    # A later "approval" of the rejected revision changes nothing: decisions are final.
    sim.decide(2, "Approved", "changed my mind")
    sim.tick(worse)
    assert sim.outcomes() == [(1, "Promoted"), (2, "Rejected")]
    # Another model is asked for as usual.
    sim.tick(with_objective(3, 0.95))
    assert sim.outcomes()[-1] == (3, "PendingApproval")


def test_a_changed_model_supersedes_the_waiting_revision_and_automatic_never_waits():
    sim = ApprovalSim()
    sim.tick(model(1))
    sim.tick(model(2))
    assert sim.outcomes() == [(1, "Superseded"), (2, "PendingApproval")]
    auto = Sim()
    serve_first(auto)
    assert auto.outcomes() == [(1, "Promoted")]


def test_an_approved_canary_runs_its_steps():
    sim = ApprovalSim(replicas=2, strategy={"type": "Canary", "canary": {"steps": [
        {"weight": 50, "pauseSeconds": 0}]}, "analysis": {"minRequests": 0}})  # fmt: skip
    sim.tick(model(1))
    sim.decide(1, "Approved", "first")
    for _ in range(3):
        sim.tick(model(1))
    sim.tick(model(2))
    sim.decide(2, "Approved", "second")
    sim.tick(model(2), verdict=PASS)
    assert sim.status.canary is not None and sim.status.canary.revision == 2


def test_a_deprecated_model_is_never_promoted_again_nor_rolled_back_to():
    sim = ApprovalSim(approval="Automatic")
    serve_first(sim, model(1))
    for _ in range(3):
        sim.tick(model(2))
    assert sim.outcomes() == [(1, "Superseded"), (2, "Promoted")]
    sim.decide(1, "Deprecated", "trained on leaked labels")
    sim.tick(model(2))
    assert sim.status.history[0].deprecated is not None
    assert sim.status.history[0].deprecated.reason == "trained on leaked labels"
    p = sim.tick(model(1))
    assert sim.status.phase == "Degraded" and sim.status.reason == "Deprecated"
    assert set(p.deployments) == {2} and len(sim.outcomes()) == 2
    try:
        rv.rollback_target(sim.status, 1)
    except rv.RevisionNotFound as exc:
        assert "deprecated" in str(exc)
    else:
        raise AssertionError("a deprecated revision was accepted as a rollback target")


def test_malformed_decisions_are_reported_and_ignored():
    sim = ApprovalSim()
    sim.tick(model(1))
    sim.metadata["annotations"]["approval.thunderbolt.io/1"] = "yes please"
    sim.tick(model(1))
    assert sim.outcomes() == [(1, "PendingApproval")]
    assert (
        sim.status.reason == "InvalidDecision" and "approval.thunderbolt.io/1" in sim.status.message
    )


def test_undecided_sees_a_new_decision_from_the_watch_cache():
    metadata = {"annotations": {}}
    history = [{"number": 3, "outcome": "PendingApproval"}]
    assert not approval.undecided(metadata, history)
    key, value = approval.annotation(3, "Approved", "fine", None)
    metadata["annotations"][key] = value
    assert json.loads(value) == {"decision": "Approved", "reason": "fine"}
    assert approval.undecided(metadata, history)
    assert not approval.undecided(metadata, [{"number": 3, "outcome": "Active"}])
