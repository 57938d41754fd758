"""What a validated report does to a Trial's status — a pure function of (Trial, report).

The Trial object is the only state: whether a report is new, a duplicate or stale is
decided from ``status.intermediate`` alone, so any operator replica (or one restarted a
moment ago) reaches the same decision, and writing the result with the Trial's
``resourceVersion`` makes concurrent writers serialise instead of losing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from thunderbolt.api.report_schema import EpochReport, StartReport, StopReport
from thunderbolt.api.trial import FINISHED_PHASES, STORED_POINTS, compact_curve
from thunderbolt.reports.errors import InvalidReport, StepBackwards, StepConflict, TrialFinished

Point = tuple[int, float]


@dataclass(frozen=True)
class Plan:
    """What a report adds: new points (the report's own and any backlog not on record)
    and whether the Trial moves from Pending to Running. ``status_patch`` turns it into
    a merge patch against whatever the Trial looks like at write time."""

    result: Literal["accepted", "duplicate"]
    add: dict[int, float] = field(default_factory=dict)
    start: bool = False
    value: float | None = None

    @property
    def writes(self) -> bool:
        return bool(self.add) or self.start


def bound_history(points: Sequence[Point], limit: int = STORED_POINTS) -> list[Point]:
    """The stored curve's bound (``api.trial.compact_curve``: first, last, thinned middle)."""
    return compact_curve(points, limit)


def intermediate_points(trial: dict[str, Any]) -> list[Point]:
    raw = (trial.get("status") or {}).get("intermediate") or []
    return [(int(p["step"]), float(p["value"])) for p in raw]


def objective_metric(trial: dict[str, Any]) -> str:
    return str(((trial.get("spec") or {}).get("objective") or {}).get("metric", ""))


def epoch_value(trial: dict[str, Any], report: EpochReport) -> float:
    if report.value is not None:
        return report.value
    metric = objective_metric(trial)
    if metric not in report.metrics:
        raise InvalidReport(f"epoch report lacks the objective metric {metric!r} (and 'value')")
    return report.metrics[metric]


def _started(status: dict[str, Any], now: str) -> dict[str, Any]:
    patch: dict[str, Any] = {"phase": "Running"}
    if not status.get("startTime"):
        patch["startTime"] = now
    return patch


def merge_points(
    existing: Sequence[Point], add: Mapping[int, float], limit: int = STORED_POINTS
) -> list[Point]:
    """Union by step (what is on record wins), in step order, bounded."""
    merged = dict(existing)
    for step, value in add.items():
        merged.setdefault(step, value)
    return bound_history(sorted(merged.items()), limit)


def status_patch(
    trial: dict[str, Any],
    add: Mapping[int, float],
    start: bool,
    *,
    now: str,
    limit: int = STORED_POINTS,
) -> dict[str, Any] | None:
    """The merge patch that records ``add``/``start`` on ``trial`` as it is now; None when
    there is nothing (left) to write or the Trial has finished meanwhile."""
    status = trial.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in FINISHED_PHASES:
        return None
    patch: dict[str, Any] = {}
    if start and phase == "Pending":
        patch.update(_started(status, now))
    existing = intermediate_points(trial)
    points = merge_points(existing, add, limit)
    if points != existing:
        patch["intermediate"] = [{"step": s, "value": v} for s, v in points]
        if phase == "Pending":
            patch.update(_started(status, now))
    return patch or None


def _backlog(report: EpochReport | StopReport, recorded: Mapping[int, float]) -> dict[int, float]:
    """Points the trainer is not sure were stored (write-behind replicas can crash)."""
    return {p.step: p.value for p in report.backlog if p.step not in recorded}


def plan(
    trial: dict[str, Any],
    report: StartReport | EpochReport | StopReport,
) -> Plan:
    """Decide what ``report`` adds to ``trial``; raises a ``Rejected`` when it must change
    nothing. ``trial`` may include points not yet written (see ``writer``)."""
    status = trial.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in FINISHED_PHASES:
        raise TrialFinished(f"trial is {phase}; reports are closed")
    pending = phase == "Pending"
    if isinstance(report, StartReport):
        return Plan("accepted", start=True) if pending else Plan("duplicate")

    history = intermediate_points(trial)
    recorded = dict(history)
    last_step = history[-1][0] if history else None
    if isinstance(report, StopReport):
        if last_step is not None and report.step < last_step:
            raise StepBackwards(f"stop at step {report.step} before last epoch {last_step}")
        return Plan("accepted", add=_backlog(report, recorded), value=report.objective)

    value = epoch_value(trial, report)
    add = _backlog(report, recorded)
    if last_step is not None and report.step <= last_step:
        on_record = recorded.get(report.step)
        if on_record is None:
            raise StepBackwards(f"step {report.step} is older than the latest step {last_step}")
        if on_record != value:
            raise StepConflict(f"step {report.step} is on record with value {on_record}")
        return Plan("duplicate", add=add, value=value)
    add[report.step] = value
    return Plan("accepted", add=add, start=pending, value=value)


def overlay(trial: dict[str, Any], add: Mapping[int, float], start: bool) -> dict[str, Any]:
    """``trial`` as it will be once ``add``/``start`` are written (for deciding and pruning)."""
    if not add and not start:
        return trial
    status = dict(trial.get("status") or {})
    if add:
        # Unbounded on purpose: decisions must see every point that is still pending.
        merged = merge_points(intermediate_points(trial), add, limit=10**9)
        status["intermediate"] = [{"step": s, "value": v} for s, v in merged]
    if start and (status.get("phase") or "Pending") == "Pending":
        status["phase"] = "Running"
    return {**trial, "status": status}
