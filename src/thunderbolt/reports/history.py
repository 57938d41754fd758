"""What a validated report does to a Trial's status — a pure function of (Trial, report).

The Trial object is the only state: whether a report is new, a duplicate or stale is
decided from ``status.intermediate`` alone, so any operator replica (or one restarted a
moment ago) reaches the same decision, and writing the result with the Trial's
``resourceVersion`` makes concurrent writers serialise instead of losing values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from thunderbolt.api.trial import FINISHED_PHASES, MAX_INTERMEDIATE
from thunderbolt.reports.errors import InvalidReport, StepBackwards, StepConflict, TrialFinished
from thunderbolt.reports.schema import EpochReport, StartReport, StopReport

Point = tuple[int, float]


@dataclass(frozen=True)
class Plan:
    """``status_patch`` is a JSON merge patch for the status subresource (None: no write)."""

    result: Literal["accepted", "duplicate"]
    status_patch: dict[str, Any] | None = None
    value: float | None = None
    started: bool = False  # this report moved the Trial from Pending to Running


def bound_history(points: Sequence[Point], limit: int = MAX_INTERMEDIATE) -> list[Point]:
    """At most ``limit`` points, always keeping the first and the latest.

    When full, the middle is thinned to steps that are multiples of a power of two, so
    the whole curve stays visible and Trials of one Experiment keep the same steps (the
    median pruner compares Trials step by step).
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    kept = list(points)
    stride = 2
    while len(kept) > limit:
        last = len(kept) - 1
        kept = [p for i, p in enumerate(kept) if i in (0, last) or p[0] % stride == 0]
        stride *= 2
    return kept


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


def plan(
    trial: dict[str, Any],
    report: StartReport | EpochReport | StopReport,
    *,
    now: str,
    limit: int = MAX_INTERMEDIATE,
) -> Plan:
    """Decide what ``report`` changes; raises a ``Rejected`` when it must change nothing."""
    status = trial.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in FINISHED_PHASES:
        raise TrialFinished(f"trial is {phase}; reports are closed")
    pending = phase == "Pending"
    if isinstance(report, StartReport):
        if pending:
            return Plan("accepted", _started(status, now), started=True)
        return Plan("duplicate")

    history = intermediate_points(trial)
    last_step = history[-1][0] if history else None
    if isinstance(report, StopReport):
        if last_step is not None and report.step < last_step:
            raise StepBackwards(f"stop at step {report.step} before last epoch {last_step}")
        return Plan("accepted", value=report.objective)

    value = epoch_value(trial, report)
    if last_step is not None and report.step <= last_step:
        recorded = dict(history).get(report.step)
        if recorded is None:
            raise StepBackwards(f"step {report.step} is older than the latest step {last_step}")
        if recorded != value:
            raise StepConflict(f"step {report.step} is on record with value {recorded}")
        return Plan("duplicate", value=value)
    points = bound_history([*history, (report.step, value)], limit)
    patch: dict[str, Any] = _started(status, now) if pending else {}
    patch["intermediate"] = [{"step": s, "value": v} for s, v in points]
    return Plan("accepted", patch, value=value, started=pending)
