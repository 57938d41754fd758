"""One reconcile step of a ModelDeployment, as a pure function: state in, plan out.

The handler gathers what it needs (the desired model, the revision Deployments it sees, the
latest canary verdict, the time) and carries out the returned ``Plan``. Everything about
strategies lives here, so every transition is unit-tested without a cluster:

- ``Rolling``: the new revision gets its own Deployment at full size; the Service selector
  switches to it once all its pods are ready, then the old Deployment is deleted (its pods
  drain on SIGTERM). A revision that never becomes ready never gets traffic.
- ``BlueGreen``: the same, and ``<name>-preview`` selects the newest revision all along,
  so it can be tested before the switch.
- ``Canary``: both revisions behind one Service selecting all pods; ``canary.split_replicas``
  turns each step's weight into pod counts; each step waits for readiness, its pause and a
  passing analysis; a failing analysis deletes the canary while the stable stays untouched.
- ``Shadow``: the candidate runs beside stable and only gets mirrored requests (the
  ``<name>-shadow`` Service selects it); see ``thunderbolt.deploy.shadow``.
The first revision, and rollbacks (``spec.rollbackTo``), switch after readiness whatever the
strategy: there is nothing to compare the first with, and a rollback target served before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from thunderbolt.api.common import Condition
from thunderbolt.api.meta import parse_time
from thunderbolt.api.modeldeployment import (
    CanaryStatus,
    DecisionRecord,
    GateResult,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Revision,
)
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy import shadow as shadows
from thunderbolt.deploy.accept import accept_desired, apply_decisions, gate_passed, sla_step
from thunderbolt.deploy.analysis import Verdict
from thunderbolt.deploy.canary import route_weights, split_replicas, step_decision
from thunderbolt.deploy.sla import SlaVerdict
from thunderbolt.deploy.step import PROGRESS_DEADLINE_S, Desired, Step, Unresolved

__all__ = ["Desired", "Observed", "Plan", "Unresolved", "plan"]


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a revision's Deployment reports."""

    replicas: int
    ready: int
    updated: int
    current_generation: bool = True

    def ready_for(self, want: int) -> bool:
        if want == 0:
            return True
        return (
            self.current_generation
            and self.replicas == want
            and self.ready >= want
            and self.updated >= want
        )


@dataclasses.dataclass
class Plan:
    deployments: dict[int, tuple[Revision, int]]  # revision number -> (revision, replicas)
    delete: list[int]
    select_all: bool  # main Service selects every revision's pods (canary split by pod counts)
    selector_revision: int | None  # otherwise the one revision it selects (None: no Service yet)
    preview_revision: int | None  # BlueGreen preview Service target
    route_weights: dict[int, int] | None  # HTTPRoute weights during a canary
    status: ModelDeploymentStatus
    gate_revision: int | None  # the revision whose quality gate (a Job) must run now
    events: list[tuple[str, str, str]]  # (type, reason, message)
    shadow_revision: int | None = None  # what the <name>-shadow Service selects (Shadow)


def _age(since: str | None, now: dt.datetime) -> float | None:
    started = parse_time(since)
    return None if started is None else (now - started).total_seconds()


def _condition(type_: str, ok: bool, reason: str, message: str, previous: list[Condition],
               now: str, generation: int | None) -> Condition:  # fmt: skip
    status = "True" if ok else "False"
    before = next((c for c in previous if c.type == type_), None)
    since = before.lastTransitionTime if before and before.status == status else now
    return Condition(type=type_, status=status, reason=reason, message=message[:32768],
                     lastTransitionTime=since, observedGeneration=generation)  # fmt: skip


def _roll_canary(s: Step, item: HistoryEntry, observed: dict[int, Observed],
                 verdict: Verdict | None, want: dict[int, int]) -> None:  # fmt: skip
    assert s.stable is not None and s.canary is not None
    steps = s.spec.strategy.canary.steps  # type: ignore[union-attr]
    replicas = s.spec.replicas
    if verdict is not None and verdict.passed is False:
        reason = f"{rv.ANALYSIS_FAILED}: {verdict.message}"
        rv.set_outcome(s.history, item.number, "RolledBack", reason, s.now_s)
        s.event("RolledBack", f"revision {item.number}: {verdict.message}", warning=True)
        s.canary = None
        s.degraded = (
            rv.ANALYSIS_FAILED,
            f"revision {item.number} was rolled back: {verdict.message}",
        )
        want[s.stable.number] = replicas
        return
    canary = s.canary
    finishing = canary.step >= len(steps)
    weight = 100 if finishing else steps[canary.step].weight
    split = split_replicas(replicas, weight)
    want[s.stable.number] = replicas if finishing else split.stable
    want[item.number] = replicas if finishing else split.canary
    obs = observed.get(item.number)
    ready = obs is not None and obs.ready_for(want[item.number])
    if finishing:
        if ready:
            s.promote(item, f"canary passed {len(steps)} steps")
            want.clear()
            want[item.number] = replicas
        else:
            s.progress = ("CanaryFinishing", f"scaling revision {item.number} to {replicas} pods")
        return
    if ready and canary.stepStartedAt is None:
        canary = canary.model_copy(update={"stepStartedAt": s.now_s})
        s.event("CanaryStep", f"step {canary.step + 1}/{len(steps)}: weight {weight}% "
                f"({split.canary} canary : {split.stable} stable pods, {split.effective_weight:.0f}%)")  # fmt: skip
    analysis_ok: bool | None = None
    if s.spec.strategy.analysis is not None:
        analysis_ok = bool(verdict is not None and verdict.passed)
    decision = step_decision(
        steps, canary.step, ready, _age(canary.stepStartedAt, s.now), analysis_ok
    )
    if decision.action == "advance":
        nxt = steps[decision.next_step]
        canary = CanaryStatus(revision=item.number, weight=nxt.weight, step=decision.next_step)
        split = split_replicas(replicas, nxt.weight)
        want[s.stable.number], want[item.number] = split.stable, split.canary
    elif decision.action == "promote":
        canary = CanaryStatus(revision=item.number, weight=100, step=len(steps))
        want[s.stable.number], want[item.number] = replicas, replicas
    s.canary = canary
    s.progress = ("CanaryProgressing", decision.why)


def plan(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    desired: Desired,
    observed: dict[int, Observed],
    now: dt.datetime,
    *,
    generation: int | None = None,
    verdict: Verdict | None = None,
    gateway_api: bool = False,
    decisions: dict[int, DecisionRecord] | None = None,
    bad_decisions: list[str] | None = None,
    gate_results: dict[int, GateResult] | None = None,
    sla: SlaVerdict | None = None,
    shadow: shadows.ShadowVerdict | None = None,
) -> Plan:
    s = Step(spec, status, now)
    apply_decisions(s, decisions or {}, bad_decisions or [])
    accept_desired(s, desired, status)
    sla_step(s, sla)
    want = _wanted_replicas(s, observed, verdict, gate_results or {}, shadow)
    pending = s.pending()
    keep = set(want)
    revisions = {h.number: rv.as_revision(h) for h in s.history}
    if s.stable is not None:
        revisions[s.stable.number] = s.stable
    deployments = {n: (revisions[n], r) for n, r in want.items() if n in revisions}
    delete = sorted(n for n in observed if n not in keep)
    # The Service selects one revision, except while a canary shares traffic by pod counts;
    # then only once no other revision's pods are left to be selected by accident.
    gating = s.gate_revision is not None
    selector_revision = (
        s.stable.number if s.stable else (pending.number if pending and not gating else None)
    )
    canary_live = (
        s.canary is not None and pending is not None and s.stable is not None and not gating
    )
    select_all = canary_live and set(observed) <= keep
    weights = None
    if canary_live and gateway_api and s.stable is not None and s.canary is not None:
        weights = route_weights(s.stable.number, s.canary.revision, s.canary.weight)
    preview = None
    if spec.strategy.type == "BlueGreen":
        preview = pending.number if pending else (s.stable.number if s.stable else None)
    history = rv.trim(s.history, spec.revisionHistoryLimit, keep)
    new_status = _status(s, status, history, observed, generation, pending)
    return Plan(
        deployments=deployments,
        delete=delete,
        select_all=select_all,
        selector_revision=selector_revision,
        preview_revision=preview,
        route_weights=weights,
        status=new_status,
        events=s.events,
        gate_revision=s.gate_revision,
        shadow_revision=s.shadow.revision if s.shadow is not None else None,
    )


def _wanted_replicas(
    s: Step, observed: dict[int, Observed], verdict: Verdict | None,
    gate_results: dict[int, GateResult], shadow: shadows.ShadowVerdict | None = None,
) -> dict[int, int]:  # fmt: skip
    """Replicas per revision: the stable one, plus the pending one (canary, shadow or full)."""
    replicas = s.spec.replicas
    want: dict[int, int] = {}
    if s.stable is not None:
        want[s.stable.number] = replicas
    item = s.pending()
    if s.shadow is not None and (item is None or s.shadow.revision != item.number):
        s.shadow = None  # its revision was superseded, refused or rolled back
    if item is None:
        return want
    if not gate_passed(s, item, gate_results.get(item.number)):
        s.shadow = None
        return want  # no pod, no traffic until the gate passed
    if s.spec.strategy.type == "Shadow" and s.stable is not None and not rv.is_rollback(item):
        obs = observed.get(item.number)
        shadows.roll(s, item, lambda n: obs is not None and obs.ready_for(n), shadow, want)
        return want
    s.shadow = None
    if s.canary is not None and s.canary.revision == item.number and s.stable is not None:
        _roll_canary(s, item, observed, verdict, want)
        return want
    s.canary = None
    want[item.number] = replicas
    _roll_whole(s, item, observed.get(item.number), want)
    return want


def _roll_whole(s: Step, item: HistoryEntry, obs: Observed | None, want: dict[int, int]) -> None:
    """Recreate/BlueGreen (or a first revision): promote once every pod is ready."""
    replicas = s.spec.replicas
    if obs is not None and obs.ready_for(replicas):
        how = "first revision" if s.stable is None else f"{s.spec.strategy.type} rollout"
        s.promote(item, "rollback" if rv.is_rollback(item) else how)
        want.clear()
        want[item.number] = replicas
        return
    ready = obs.ready if obs else 0
    s.progress = ("WaitingForReadiness", f"revision {item.number}: {ready}/{replicas} pods ready")
    age = _age(item.deployedAt, s.now)
    if age is not None and age > PROGRESS_DEADLINE_S:
        s.degraded = ("ProgressDeadlineExceeded",
                      f"revision {item.number} not ready after {age:.0f}s; revision "
                      f"{s.stable.number if s.stable else '-'} keeps serving")  # fmt: skip


def _status(s: Step, old: ModelDeploymentStatus, history: list[HistoryEntry],
            observed: dict[int, Observed], generation: int | None,
            pending: HistoryEntry | None) -> ModelDeploymentStatus:  # fmt: skip
    stable_obs = observed.get(s.stable.number) if s.stable else None
    available = stable_obs is not None and (stable_obs.ready > 0 or s.spec.replicas == 0)
    progressing = pending is not None or s.progress is not None
    avail_reason = (
        "RevisionAvailable" if available else ("NoRevision" if s.stable is None else "NoReadyPods")
    )
    avail_msg = (f"revision {s.stable.number} serving" if available and s.stable else
                 "no ready pods serving the current revision")  # fmt: skip
    prog_reason, prog_msg = s.progress or ("RolloutComplete", "no rollout in progress")
    deg_reason, deg_msg = s.degraded or ("AsExpected", "")
    conditions = [
        _condition("Available", available, avail_reason, avail_msg, old.conditions, s.now_s, generation),
        _condition("Progressing", progressing, prog_reason, prog_msg, old.conditions, s.now_s, generation),
        _condition("Degraded", s.degraded is not None, deg_reason, deg_msg, old.conditions, s.now_s, generation),
    ]  # fmt: skip
    if s.degraded is not None:
        phase, reason, message = "Degraded", deg_reason, deg_msg
    elif s.stable is None and pending is None:
        phase, reason, message = "Pending", *(s.waiting or (prog_reason, prog_msg))
    elif progressing:
        phase, reason, message = "Progressing", prog_reason, prog_msg
    elif not available:
        phase, reason, message = "Progressing", avail_reason, avail_msg
    else:  # serving; a revision waiting for a decision is worth the message
        phase, reason, message = "Available", *(s.waiting or (avail_reason, avail_msg))
    return ModelDeploymentStatus(
        phase=phase,  # type: ignore[arg-type]
        observedGeneration=generation,
        currentRevision=s.stable,
        canary=s.canary,
        shadow=s.shadow,
        history=history,
        endpoint=old.endpoint,
        previewEndpoint=old.previewEndpoint,
        reason=reason,
        message=message[:1024],
        conditions=conditions,
    )
