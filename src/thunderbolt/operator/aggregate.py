"""An Experiment's status, and what to create next, from its Trials: pure.

Level-based: the decision depends only on the spec and the Trials as listed, never on
what the operator remembers, so a restarted operator (or a raised ``maxTrials``)
reaches the same answer. Trial numbers run 0..maxTrials-1 and the next number is the
largest existing one plus one, so no number is ever used twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from thunderbolt import objectives
from thunderbolt.api.experiment import PARETO_FRONT_SIZE, ExperimentSpec
from thunderbolt.api.meta import format_time, parse_time
from thunderbolt.api.trial import FINISHED_PHASES
from thunderbolt.operator.conditions import condition, merge_conditions

LEADERBOARD_SIZE = 5
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_SUMMARY_KEYS = ("mlflowRunId", "mlflowRunUrl", "modelUri", "modelChecksum")


@dataclass(frozen=True)
class Plan:
    phase: str
    reason: str | None
    message: str | None
    create: list[int] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


def _number(trial: dict[str, Any]) -> int:
    return int((trial.get("spec") or {}).get("number", 0))


def _phase(trial: dict[str, Any]) -> str:
    return str((trial.get("status") or {}).get("phase") or "Pending")


def _objective(trial: dict[str, Any]) -> float | None:
    value = (trial.get("status") or {}).get("objective")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def counts(trials: list[dict[str, Any]]) -> dict[str, int]:
    out = {
        "total": len(trials),
        "pending": 0,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "pruned": 0,
    }
    for trial in trials:
        key = _phase(trial).lower()
        out[key] = out.get(key, 0) + 1
    return out


def summary(trial: dict[str, Any], spec: ExperimentSpec | None = None) -> dict[str, Any]:
    """A Trial as the Experiment's status lists it; with several objectives, ``values``."""
    status = trial.get("status") or {}
    out: dict[str, Any] = {
        "name": trial["metadata"]["name"],
        "number": _number(trial),
        "parameters": dict((trial.get("spec") or {}).get("parameters") or {}),
        "objective": _objective(trial),
        "objectiveStd": status.get("objectiveStd"),
    }
    for key in _SUMMARY_KEYS:
        if status.get(key):
            out[key] = status[key]
    if spec is not None and spec.multi_objective:
        found = objectives.values(trial, spec.goals)
        if found is not None:
            out["values"] = {g.metric: v for g, v in zip(spec.goals, found, strict=True)}
    return {k: v for k, v in out.items() if v is not None}


Scored = list[tuple[Mapping[str, Any], list[float]]]


def ranking(
    spec: ExperimentSpec, trials: list[dict[str, Any]], scored: Scored | None = None
) -> list[dict[str, Any]]:
    """Succeeded trials with every objective, best first on the first objective (ties:
    lower number first). ``scored``: ``objectives.scored`` of the same Trials, if at hand
    (possibly only the top few)."""
    if scored is None:
        scored = objectives.scored(trials, spec.goals)
    return [cast(dict[str, Any], t) for t, _ in scored]


def best_trial(
    spec: ExperimentSpec, trials: list[dict[str, Any]], scored: Scored | None = None
) -> dict[str, Any] | None:
    """The Trial ``promote.select`` picks, else the best on the first objective."""
    select = spec.promote.select if spec.promote else None
    if scored is None:
        scored = objectives.scored(trials, spec.goals)
    chosen = objectives.choose_among(scored, spec.goals, select)
    return dict(chosen) if chosen is not None else None


def pareto_status(spec: ExperimentSpec, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """``paretoFront`` (bounded) and ``paretoFrontSize``; None (cleared, should the spec
    have changed) for one objective."""
    if not spec.multi_objective:
        return {"paretoFront": None, "paretoFrontSize": None}
    front = objectives.pareto_front(trials, spec.goals)
    return {
        "paretoFront": [summary(dict(t), spec) for t, _ in front[:PARETO_FRONT_SIZE]],
        "paretoFrontSize": len(front),
    }


def goal_reached(spec: ExperimentSpec, best: float | None) -> bool:
    goal = spec.primary.goal
    if goal is None or best is None:
        return False
    return best >= goal if spec.primary.direction == "maximize" else best <= goal


def estimate_completion(
    spec: ExperimentSpec, trials: list[dict[str, Any]], limit: int, now: datetime
) -> str | None:
    """Mean finished-trial duration times the waves still to run. One pass, parsing one
    time: it runs on every reconcile, over up to 10 000 Trials."""
    finished, total, timed = 0, 0.0, 0
    latest: str | None = None
    for t in trials:
        if _phase(t) not in FINISHED_PHASES:
            continue
        status = t.get("status") or {}
        finished += 1
        if status.get("durationSeconds"):
            total += float(status["durationSeconds"])
            timed += 1
        end = status.get("completionTime")
        # the operator writes these with format_time (fixed-width UTC): text order is
        # time order
        if end and (latest is None or end > latest):
            latest = end
    if not timed:
        return None
    waves = math.ceil(max(0, limit - finished) / spec.parallelTrials)
    # Counted from the latest completion, not from now, so the estimate (and the
    # status) only changes when a trial finishes.
    base = parse_time(latest) or now
    eta = base + timedelta(seconds=waves * total / timed)
    return format_time(max(eta, now))


def decide(
    spec: ExperimentSpec,
    trials: list[dict[str, Any]],
    grid_size: int | None = None,
    ranked: list[dict[str, Any]] | None = None,
    tally: dict[str, int] | None = None,
) -> tuple[str, str | None, str | None, list[int]]:
    """(phase, reason, message, numbers to create) for the Trials as they are
    (``ranked``, ``tally``: ``ranking``/``counts`` of them when the caller has them)."""
    c = counts(trials) if tally is None else tally
    finished = c["succeeded"] + c["failed"] + c["pruned"]
    ranked = ranking(spec, trials) if ranked is None else ranked
    best = _objective(ranked[0]) if ranked else None
    limit = spec.maxTrials if grid_size is None else min(spec.maxTrials, grid_size)
    if c["failed"] > spec.maxFailedTrials:
        return (
            "Failed",
            "FailureBudgetExceeded",
            f"{c['failed']} trials failed, more than maxFailedTrials={spec.maxFailedTrials}",
            [],
        )
    if goal_reached(spec, best):
        return (
            "Succeeded",
            "GoalReached",
            f"trial {ranked[0]['metadata']['name']} reached {spec.primary.metric}={best}"
            f" (goal {spec.primary.goal})",
            [],
        )
    if finished >= limit:
        if c["succeeded"] == 0:
            return "Failed", "NoSuccessfulTrials", f"none of {finished} trials succeeded", []
        reason = "GridExhausted" if limit < spec.maxTrials else "MaxTrialsReached"
        return (
            "Succeeded",
            reason,
            f"{finished} trials finished; best {spec.primary.metric}={best}",
            [],
        )
    active = c["pending"] + c["running"]
    slots = max(0, spec.parallelTrials - active)
    room = max(0, limit - c["total"])
    start = max((_number(t) for t in trials), default=-1) + 1
    create = list(range(start, start + min(slots, room)))
    return (
        "Running",
        "TrialsRunning",
        f"{finished}/{limit} trials finished, {active} running",
        create,
    )


def _conditions(
    phase: str, reason: str | None, message: str | None, at: str, generation: int | None
) -> list[dict[str, Any]]:
    ended = phase in TERMINAL_PHASES
    return [
        condition("Running", phase == "Running", reason or phase, message, at, generation),
        condition("Succeeded", phase == "Succeeded", reason or phase, message, at, generation),
        condition("Complete", ended, reason or phase, message, at, generation),
        condition("Failed", phase == "Failed", reason or phase, message, at, generation),
    ]


def plan(
    experiment: dict[str, Any],
    spec: ExperimentSpec,
    trials: list[dict[str, Any]],
    now: datetime,
    grid_size: int | None = None,
) -> Plan:
    """What to create now and the status to write (computed as if those were created)."""
    # Scored once (it walks every Trial); only the leaderboard's top unless promote.select
    # must weigh every candidate.
    select = spec.promote.select if spec.promote else None
    scored = objectives.scored(trials, spec.goals, None if select else LEADERBOARD_SIZE)
    ranked, c = ranking(spec, trials, scored), counts(trials)
    phase, reason, message, create = decide(spec, trials, grid_size, ranked, dict(c))
    best = best_trial(spec, trials, scored)
    old = experiment.get("status") or {}
    generation = (experiment.get("metadata") or {}).get("generation")
    at = format_time(now)
    c["total"] += len(create)
    c["pending"] += len(create)
    limit = spec.maxTrials if grid_size is None else min(spec.maxTrials, grid_size)
    finished = c["succeeded"] + c["failed"] + c["pruned"]
    terminal = phase in TERMINAL_PHASES
    completion = None
    if terminal:
        completion = old.get("completionTime") if old.get("phase") == phase else None
        completion = completion or at
    status: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "progress": f"{finished}/{spec.maxTrials}",
        "trials": c,
        "bestTrial": summary(best, spec) if best else None,
        "leaderboard": [summary(t, spec) for t in ranked[:LEADERBOARD_SIZE]],
        **pareto_status(spec, trials),
        "startTime": old.get("startTime") or at,
        "completionTime": completion,
        "estimatedCompletionTime": None
        if terminal
        else estimate_completion(spec, trials, limit, now),
        "reason": reason,
        "message": message,
        "conditions": merge_conditions(
            old.get("conditions") or [], _conditions(phase, reason, message, at, generation)
        ),
    }
    return Plan(phase, reason, message, create, status)


def invalid_status(experiment: dict[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """Status of an Experiment whose spec cannot run: Failed, nothing created."""
    old = experiment.get("status") or {}
    generation = (experiment.get("metadata") or {}).get("generation")
    at = format_time(now)
    return {
        "phase": "Failed",
        "observedGeneration": generation,
        "reason": "InvalidSpec",
        "message": message,
        "completionTime": (old.get("completionTime") if old.get("phase") == "Failed" else None)
        or at,
        "estimatedCompletionTime": None,
        "conditions": merge_conditions(
            old.get("conditions") or [],
            _conditions("Failed", "InvalidSpec", message, at, generation),
        ),
    }
