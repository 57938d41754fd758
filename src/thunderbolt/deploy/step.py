"""The working state of one reconcile step, shared by the planner's parts."""

from __future__ import annotations

import dataclasses
import datetime as dt

from thunderbolt.api.meta import format_time
from thunderbolt.api.modeldeployment import (
    CanaryStatus,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Revision,
    ShadowStatus,
)
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy.sources import ResolvedModel

# A revision not ready this long after it was created makes the deployment Degraded (it keeps
# trying, and the old revision keeps serving).
PROGRESS_DEADLINE_S = 600.0


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """The desired model is not known: ``refused`` ones get a history entry."""

    reason: str
    message: str
    refused: bool = False
    model: ResolvedModel | None = None
    error: bool = False  # not refused, but wrong until the spec changes (e.g. RevisionNotFound)


Desired = ResolvedModel | Unresolved


class Step:
    """Mutable working state of one reconcile step."""

    def __init__(self, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: dt.datetime):
        self.spec = spec
        self.now = now
        self.now_s = format_time(now)
        self.history: list[HistoryEntry] = list(status.history)
        self.stable: Revision | None = status.currentRevision
        self.canary: CanaryStatus | None = status.canary
        self.shadow: ShadowStatus | None = status.shadow
        self.events: list[tuple[str, str, str]] = []
        self.degraded: tuple[str, str] | None = None
        self.progress: tuple[str, str] | None = None
        # Nothing rolls out, nothing is wrong: a revision waits for a person's decision.
        self.waiting: tuple[str, str] | None = None
        self.gate_revision: int | None = None  # a quality gate must run for it now

    def pending(self) -> HistoryEntry | None:
        view = ModelDeploymentStatus(currentRevision=self.stable, history=self.history)
        return rv.pending(view)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))

    def new_revision(self, model: ResolvedModel, outcome: str = "Active") -> HistoryEntry:
        """A new history entry for ``model``; a ``PendingApproval`` one records what a
        person needs to decide (the serving objective, the Trial's validation verdict)
        and gets ``deployedAt`` only once approved."""
        view = ModelDeploymentStatus(currentRevision=self.stable, history=self.history)
        number = rv.next_number(view)
        reason = model.note or f"new model from {model.source}"
        waits = outcome == "PendingApproval"
        item = rv.entry(model.revision(number, None if waits else self.now_s), outcome, reason)
        item = item.model_copy(
            update={
                "servingObjective": self.stable.objective if self.stable else None,
                "validation": model.validation,
            }
        )
        self.history.append(item)
        self.event("NewRevision", f"revision {number}: {model.uri} ({reason})")
        return item

    def promote(self, item: HistoryEntry, how: str) -> None:
        old = self.stable
        why = f"{item.reason}; promoted: {how}" if item.reason else f"promoted: {how}"
        rv.set_outcome(self.history, item.number, "Promoted", why, self.now_s)
        rv.mark_promoted(self.history, item.number, self.now_s)
        if old is not None:
            if rv.is_rollback(item):
                note = f"rolled back to revision {item.source.removeprefix(rv.ROLLBACK_PREFIX)}"  # type: ignore[union-attr]
                rv.set_outcome(self.history, old.number, "RolledBack", note, self.now_s)
            else:
                note = f"superseded by revision {item.number}"
                rv.set_outcome(self.history, old.number, "Superseded", note, self.now_s)
        self.stable = rv.as_revision(item)
        self.canary = None
        self.shadow = None
        self.event("Promoted", f"revision {item.number} is serving ({how})")
