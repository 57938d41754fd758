"""Which revision carries the desired model: start one, replace one, refuse one, or hold
one for approval (``spec.approval: Manual``), and record people's decisions.

Part of the pure planner (``rollout.plan``): state in, ``Step`` changes out.
"""

from __future__ import annotations

import dataclasses

from thunderbolt.api.modeldeployment import CanaryStatus, DecisionRecord, GateResult, HistoryEntry
from thunderbolt.api.modeldeployment import ModelDeploymentStatus as Status
from thunderbolt.deploy import approval
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy.sla import SlaVerdict
from thunderbolt.deploy.sources import ResolvedModel, identity_of
from thunderbolt.deploy.step import Desired, Step, Unresolved


def start_canary(s: Step, item: HistoryEntry) -> None:
    """A Canary strategy's first step for ``item`` (not for a first revision or a rollback)."""
    canary = s.spec.strategy.canary
    if s.spec.gate is not None and item.gate is None and not rv.is_rollback(item):
        return  # the canary starts once the gate passed (``gate_passed``)
    if s.spec.strategy.type == "Canary" and canary is not None and s.stable is not None:
        if not rv.is_rollback(item):
            s.canary = CanaryStatus(revision=item.number, weight=canary.steps[0].weight, step=0)


def apply_decisions(s: Step, found: dict[int, DecisionRecord], bad: list[str]) -> None:
    """Approvals, rejections and deprecations recorded in the annotations."""
    for number, record in approval.apply(s.history, found, s.now_s):
        item = rv.find(Status(history=s.history), number)
        who = f" by {record.by}" if record.by else ""
        why = record.reason or "no reason given"
        if record.decision == "Approved" and item is not None and item.outcome == "Active":
            s.event("Approved", f"revision {number} approved{who}: {why}")
            if s.pending() is not None and s.pending().number == number:  # type: ignore[union-attr]
                start_canary(s, item)
        elif record.decision == "Deprecated":
            s.event("Deprecated", f"revision {number} deprecated{who}: {why}")
        else:
            s.event("Rejected", f"revision {number} rejected{who}: {why}", warning=True)
    for key in bad:
        s.waiting = ("InvalidDecision", f"annotation {key} is not a decision "
                     '({"decision": "Approved|Rejected|Deprecated", "reason": "..."})')  # fmt: skip


def gate_passed(s: Step, item: HistoryEntry, result: GateResult | None) -> bool:
    """Whether ``item`` may get pods: no gate, a rollback, or a passed gate. Records a
    new result (a failed one makes the revision ``GateFailed``)."""
    gate = s.spec.gate
    if gate is None or rv.is_rollback(item) or (item.gate is not None and item.gate.passed):
        return True
    if item.gate is None and result is None:
        s.gate_revision = item.number
        s.progress = ("Gating", f"revision {item.number}: quality gate on {gate.dataset.uri}")
        return False
    result = item.gate or result
    assert result is not None
    i = next(i for i, h in enumerate(s.history) if h.number == item.number)
    item = item.model_copy(update={"gate": result.model_copy(update={"at": result.at or s.now_s})})
    s.history[i] = item
    if result.passed:
        s.event("GatePassed", f"revision {item.number}: {result.message}")
        start_canary(s, item)
        return True
    rv.set_outcome(s.history, item.number, "GateFailed", f"GateFailed: {result.message}", s.now_s)
    s.event("GateFailed", f"revision {item.number}: {result.message}", warning=True)
    s.canary = None
    s.degraded = ("GateFailed", f"revision {item.number} failed its quality gate: {result.message}")
    return False


def sla_step(s: Step, verdict: SlaVerdict | None) -> None:
    """A breach of ``spec.sla`` by the serving revision: Degraded, and with ``onBreach:
    Rollback`` a rollback to the newest older revision that served."""
    sla, stable = s.spec.sla, s.stable
    if sla is None or verdict is None or stable is None or verdict.revision != stable.number:
        return
    if not verdict.breached or verdict.streak < sla.breachWindows:
        return
    s.degraded = ("SLABreached", f"revision {stable.number}: {verdict.message}")
    i, item = next((i, h) for i, h in enumerate(s.history) if h.number == stable.number)
    if item.slaBreach is None:
        s.history[i] = item.model_copy(update={"slaBreach": verdict.message[:1024]})
        s.event("SLABreached", f"revision {stable.number}: {verdict.message}", warning=True)
    if sla.onBreach != "Rollback" or s.pending() is not None or s.canary is not None:
        return
    target = next(
        (h for h in reversed(s.history)
         if h.number < stable.number and rv.served(h) and h.deprecated is None
         and h.slaBreach is None and identity_of(h) != identity_of(stable)),
        None,
    )  # fmt: skip
    if target is None:
        s.degraded = ("SLABreached", f"revision {stable.number}: {verdict.message}; no earlier "
                      "revision served to roll back to")  # fmt: skip
        return
    model = ResolvedModel.from_revision(
        rv.as_revision(target), f"{rv.ROLLBACK_PREFIX}{target.number}"
    )
    note = f"SLA breach of revision {stable.number} ({verdict.message}): back to revision {target.number}"
    s.new_revision(dataclasses.replace(model, note=note[:1024]))


def _sla_held(s: Step, desired: ResolvedModel) -> bool:
    """The desired model was rolled back after an SLA breach: not deployed again."""
    if s.spec.sla is None or s.spec.sla.onBreach != "Rollback":
        return False
    newest = next((h for h in reversed(s.history) if identity_of(h) == desired.identity()), None)
    if newest is None or newest.slaBreach is None:
        return False
    pending = s.pending()
    if newest.outcome == "RolledBack" or (pending is not None and rv.is_rollback(pending)):
        s.degraded = ("SLABreached", f"revision {newest.number} was rolled back after an SLA "
                      f"breach ({newest.slaBreach}); change spec.model")  # fmt: skip
        return True
    return False


def blocked(s: Step, model: ResolvedModel) -> tuple[str, str] | None:
    """Why ``model`` may not be deployed again here: it is deprecated, or was rejected."""
    mlflow = (model.mlflow_name, model.mlflow_version)
    for item in reversed(s.history):
        if item.deprecated is not None and approval.same_model(
            item, model.uri, model.checksum, model.trial, mlflow
        ):
            return ("Deprecated", f"revision {item.number}'s model is deprecated "
                    f"({item.deprecated.reason or '-'}); change spec.model")  # fmt: skip
    for item in reversed(s.history):
        if identity_of(item) == model.identity():
            if item.outcome == "Rejected":
                return ("Rejected", f"revision {item.number} with this model was rejected "
                        f"({item.reason}); change spec.model")  # fmt: skip
            return None
    return None


def _refuse(s: Step, desired: Unresolved, status: Status) -> None:
    model = desired.model
    source = model.source if model else "unknown"
    if rv.already_refused(status, source) is None and model is not None:
        view = Status(currentRevision=s.stable, history=s.history)
        number = rv.next_number(view)
        item = rv.entry(
            model.revision(number, None), "Refused", f"{desired.reason}: {desired.message}"
        )
        s.history.append(item.model_copy(update={"retiredAt": s.now_s}))
        s.event("Refused", f"{source}: {desired.message}", warning=True)
    s.degraded = (desired.reason, desired.message)


def accept_desired(s: Step, desired: Desired, status: Status) -> None:
    """Start, replace or refuse a revision so that the newest one carries ``desired``."""
    pending = s.pending()
    if isinstance(desired, Unresolved):
        if desired.refused:
            _refuse(s, desired, status)
        elif desired.error:
            s.degraded = (desired.reason, desired.message)
        elif s.stable is None and pending is None:
            s.progress = (desired.reason, desired.message)
        return
    target = desired.identity()
    if _sla_held(s, desired):
        return
    if pending is not None and rv.identity_of(pending) == target:
        return
    waits = approval.waiting(s.history)
    if pending is None and s.stable is not None and identity_of(s.stable) == target:
        if waits is not None:  # back to what serves: the waiting revision is moot
            rv.set_outcome(s.history, waits.number, "Superseded",
                           "the desired model changed before it was approved", s.now_s)  # fmt: skip
        return
    if waits is not None:
        if identity_of(waits) == target:
            s.waiting = s.waiting or ("PendingApproval", f"revision {waits.number} waits for approval: "
                         f"thunderbolt approve|reject <name> --revision {waits.number}")  # fmt: skip
            return
        rv.set_outcome(s.history, waits.number, "Superseded",
                       "the desired model changed before it was approved", s.now_s)  # fmt: skip
    held = rv.held_back(status, desired)
    if held is not None and pending is None:
        if held.outcome == "GateFailed":
            s.degraded = ("GateFailed", f"revision {held.number} failed its quality gate: "
                          f"{held.gate.message if held.gate else held.reason}")  # fmt: skip
        else:
            failed = (held.reason or "").split(":", 1)[0]
            why = rv.SHADOW_FAILED if failed == rv.SHADOW_FAILED else rv.ANALYSIS_FAILED
            s.degraded = (why, f"revision {held.number} was rolled back: {held.reason}")
        return
    rollback = desired.source.startswith(rv.ROLLBACK_PREFIX)
    stop = None if rollback else blocked(s, desired)
    if stop is not None and pending is None:
        s.degraded = stop
        return
    if pending is not None:
        why = "the desired model changed before its rollout finished"
        rv.set_outcome(s.history, pending.number, "Superseded", why, s.now_s)
        s.event("RolloutAbandoned", f"revision {pending.number}: {why}")
        s.canary = None
    if stop is not None:
        s.degraded = stop
        return
    if s.stable is not None and identity_of(s.stable) == target:
        return  # back to what serves: nothing new to roll out
    if s.spec.approval == "Manual" and not rollback:
        item = s.new_revision(desired, "PendingApproval")
        s.event("PendingApproval", f"revision {item.number} waits for approval")
        s.waiting = s.waiting or ("PendingApproval", f"revision {item.number} waits for approval: "
                     f"thunderbolt approve|reject <name> --revision {item.number}")  # fmt: skip
        return
    start_canary(s, s.new_revision(desired))
