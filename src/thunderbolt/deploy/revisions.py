"""Revision numbers and history: every model change is a new, never reused number.

History outcomes (newest last, bounded by ``revisionHistoryLimit``):

- ``Active``     -- being rolled out now (waiting for readiness, or a canary in progress)
- ``Promoted``   -- finished its rollout; the serving revision is the latest Promoted one
- ``Superseded`` -- served, then was replaced by a newer revision (or was replaced while
                    still rolling out)
- ``RolledBack`` -- taken away: its canary failed analysis, or ``spec.rollbackTo`` moved
                    traffic back to an older revision's model
- ``Refused``    -- never deployed: its artifact or checksum could not be verified
- ``PendingApproval`` -- waits for a person's decision (``spec.approval: Manual``)
- ``Rejected``   -- a person said no: never deployed (``approval``, ``deprecated`` say who)
- ``GateFailed`` -- its quality gate (``spec.gate``) failed: it never got a pod

``spec.rollbackTo: N`` deploys revision N's model as a *new* revision (source
``rollback/N``), the way ``kubectl rollout undo`` does, so numbers only grow and the
history tells what happened in order.
"""

from __future__ import annotations

from thunderbolt.api.modeldeployment import HistoryEntry, ModelDeploymentStatus, Revision
from thunderbolt.deploy.sources import ResolvedModel, identity_of

ROLLBACK_PREFIX = "rollback/"
# The reason of a canary rolled back by analysis starts with this; such a model is not
# retried while the spec keeps naming it (it would fail the same way).
ANALYSIS_FAILED = "AnalysisFailed"
SHADOW_FAILED = "ShadowFailed"  # a shadow's analysis (``thunderbolt.deploy.shadow``)


class RevisionNotFound(Exception):
    pass


def next_number(status: ModelDeploymentStatus) -> int:
    numbers = [h.number for h in status.history]
    if status.currentRevision is not None:
        numbers.append(status.currentRevision.number)
    return max(numbers, default=0) + 1


def entry(revision: Revision, outcome: str = "Active", reason: str | None = None) -> HistoryEntry:
    return HistoryEntry(**revision.model_dump(), outcome=outcome, reason=reason)  # type: ignore[arg-type]


def as_revision(item: HistoryEntry) -> Revision:
    return Revision(**item.model_dump(include=set(Revision.model_fields)))


def pending(status: ModelDeploymentStatus) -> HistoryEntry | None:
    """The revision being rolled out: the newest ``Active`` entry that is not serving yet."""
    current = status.currentRevision.number if status.currentRevision else None
    for item in reversed(status.history):
        if item.outcome == "Active" and item.number != current:
            return item
    return None


def find(status: ModelDeploymentStatus, number: int) -> HistoryEntry | None:
    for item in status.history:
        if item.number == number:
            return item
    return None


def rollback_target(status: ModelDeploymentStatus, number: int) -> ResolvedModel:
    """The model of recorded revision ``number``, to be deployed as a new revision."""
    current = status.currentRevision
    if current is not None and current.number == number:
        return ResolvedModel.from_revision(current, current.source or f"{ROLLBACK_PREFIX}{number}")
    # Once the rollback is done, N itself may have been trimmed from the history: the
    # revision that carries N's model (source rollback/N) answers for it.
    source = f"{ROLLBACK_PREFIX}{number}"
    for carrier in [current, *reversed(status.history)]:
        if (
            carrier is not None
            and carrier.source == source
            and getattr(carrier, "outcome", "Promoted") in ("Active", "Promoted")
        ):
            return ResolvedModel.from_revision(carrier, source)
    item = find(status, number)
    if item is None:
        raise RevisionNotFound(f"revision {number} is not in the history (limit reached?)")
    if item.outcome == "Refused" or not item.modelUri:
        raise RevisionNotFound(f"revision {number} was refused and never served")
    if item.outcome in ("Rejected", "PendingApproval", "GateFailed"):
        raise RevisionNotFound(f"revision {number} is {item.outcome}: it is never deployed")
    if item.deprecated is not None:
        raise RevisionNotFound(f"revision {number} is deprecated: it is never deployed again")
    return ResolvedModel.from_revision(as_revision(item), f"{ROLLBACK_PREFIX}{number}")


def is_rollback(item: Revision | None) -> bool:
    return bool(item and (item.source or "").startswith(ROLLBACK_PREFIX))


def set_outcome(
    history: list[HistoryEntry], number: int, outcome: str, reason: str | None, now: str | None
) -> None:
    """Mark an entry (retiredAt is set for every outcome but Active and Promoted)."""
    for i, item in enumerate(history):
        if item.number == number:
            update: dict[str, object] = {"outcome": outcome}
            if reason is not None:
                update["reason"] = reason[:1024]
            if outcome not in ("Active", "Promoted"):
                update["retiredAt"] = now
            history[i] = item.model_copy(update=update)


def mark_promoted(history: list[HistoryEntry], number: int, now: str | None) -> None:
    for i, item in enumerate(history):
        if item.number == number and item.promotedAt is None:
            history[i] = item.model_copy(update={"promotedAt": now})


# Reasons ``promote`` gives the revision it replaces; they tell, for entries recorded
# before ``promotedAt`` existed, that the revision had served.
_REPLACED_AFTER_SERVING = ("superseded by revision ", "rolled back to revision ")


def served(item: HistoryEntry) -> bool:
    """Whether the revision ever served all traffic (a canary share does not count)."""
    if item.promotedAt is not None or item.outcome == "Promoted":
        return True
    return item.outcome in ("Superseded", "RolledBack") and (item.reason or "").startswith(
        _REPLACED_AFTER_SERVING
    )


def held_back(status: ModelDeploymentStatus, model: ResolvedModel) -> HistoryEntry | None:
    """The entry explaining why ``model`` is not retried: its canary failed analysis, or
    its quality gate failed, last."""
    if not status.history:
        return None
    last = status.history[-1]
    failed = last.outcome == "GateFailed" or (
        last.outcome == "RolledBack"
        and (last.reason or "").startswith((ANALYSIS_FAILED, SHADOW_FAILED))
    )
    if failed and identity_of(last) == model.identity():
        return last
    return None


def already_refused(status: ModelDeploymentStatus, source: str) -> HistoryEntry | None:
    for item in reversed(status.history):
        if item.outcome == "Refused" and item.source == source:
            return item
        if item.outcome != "Refused":
            return None
    return None


def trim(history: list[HistoryEntry], limit: int, keep: set[int]) -> list[HistoryEntry]:
    """Drop the oldest entries beyond ``limit``, never the serving or rolling-out ones."""
    ordered = sorted(history, key=lambda h: h.number)
    excess = len(ordered) - limit
    if excess <= 0:
        return ordered
    result: list[HistoryEntry] = []
    for item in ordered:
        if excess > 0 and item.number not in keep:
            excess -= 1
            continue
        result.append(item)
    return result
