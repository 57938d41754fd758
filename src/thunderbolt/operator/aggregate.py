"""An Experiment's status, and what to create next, from its Trials: pure.

Level-based: the decision depends only on the spec and the Trials as listed, never on
what the operator remembers, so a restarted operator (or a raised ``maxTrials``)
reaches the same answer. Trial numbers run 0..maxTrials-1 and the next number is the
largest existing one plus one, so no number is ever used twice. A ``FinishedTally``
kept across reconciles only saves walking the finished Trials again: the plan is the
one a tally folded from scratch gives (``tests/unit/operator/test_tally.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from thunderbolt import objectives
from thunderbolt.api.experiment import PARETO_FRONT_SIZE, ExperimentSpec
from thunderbolt.api.meta import format_time, parse_time
from thunderbolt.api.trial import trial_number
from thunderbolt.objectives import Scored
from thunderbolt.operator.conditions import condition, merge_conditions
from thunderbolt.operator.tally import FinishedTally, goals_key

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


def _phase(trial: Mapping[str, Any]) -> str:
    return str((trial.get("status") or {}).get("phase") or "Pending")


def _objective(trial: Mapping[str, Any]) -> float | None:
    value = (trial.get("status") or {}).get("objective")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Tallied:
    """The Trials as ``plan`` reads them: the finished ones folded in a tally, the
    others (at most ``parallelTrials`` or so) as they are."""

    spec: ExperimentSpec
    tally: FinishedTally
    active: list[Mapping[str, Any]]

    @classmethod
    def of(
        cls,
        spec: ExperimentSpec,
        trials: Sequence[Mapping[str, Any]],
        tally: FinishedTally | None = None,
    ) -> Tallied:
        """``tally`` (kept by the caller across reconciles) brought up to date with
        ``trials``; a fresh one when there is none or the spec's objectives changed."""
        if tally is None or tally.key != goals_key(spec):
            tally = FinishedTally(spec)
        return cls(spec, tally, tally.sync(trials))

    def counts(self) -> dict[str, int]:
        out = {
            "total": self.tally.finished + len(self.active),
            "pending": 0,
            "running": 0,
            "succeeded": 0,
            "failed": 0,
            "pruned": 0,
        }
        for phase, n in self.tally.phases.items():
            out[phase] = out.get(phase, 0) + n
        for trial in self.active:
            key = _phase(trial).lower()
            out[key] = out.get(key, 0) + 1
        return out

    def next_number(self) -> int:
        """The largest number in use plus one: no number is ever used twice."""
        return max(self.tally.largest_number, *(trial_number(t) for t in self.active), -1) + 1

    def ranked(self, top: int | None = None) -> Scored:
        """Succeeded Trials with every objective, best first on the first objective
        (ties: lower number first); only the ``top`` best if given."""
        return self.tally.scored(top)


def summary(trial: Mapping[str, Any], spec: ExperimentSpec | None = None) -> dict[str, Any]:
    """A Trial as the Experiment's status lists it; with several objectives, ``values``."""
    status = trial.get("status") or {}
    out: dict[str, Any] = {
        "name": trial["metadata"]["name"],
        "number": trial_number(trial),
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


def best_trial(view: Tallied) -> Mapping[str, Any] | None:
    """The Trial ``promote.select`` picks, else the best on the first objective."""
    select = view.spec.promote.select if view.spec.promote else None
    # every candidate only when select must weigh them all
    return objectives.choose_among(view.ranked(None if select else 1), view.spec.goals, select)


def pareto_status(view: Tallied) -> dict[str, Any]:
    """``paretoFront`` (bounded) and ``paretoFrontSize``; None (cleared, should the spec
    have changed) for one objective."""
    spec = view.spec
    if not spec.multi_objective:
        return {"paretoFront": None, "paretoFrontSize": None}
    front = objectives.pareto_front([], spec.goals, view.ranked())
    return {
        "paretoFront": [summary(t, spec) for t, _ in front[:PARETO_FRONT_SIZE]],
        "paretoFrontSize": len(front),
    }


def goal_reached(spec: ExperimentSpec, best: float | None) -> bool:
    goal = spec.primary.goal
    if goal is None or best is None:
        return False
    return best >= goal if spec.primary.direction == "maximize" else best <= goal


def estimate_completion(view: Tallied, limit: int, now: datetime) -> str | None:
    """Mean finished-trial duration times the waves still to run."""
    tally = view.tally
    if not tally.timed:
        return None
    waves = math.ceil(max(0, limit - tally.finished) / view.spec.parallelTrials)
    # Counted from the latest completion, not from now, so the estimate (and the
    # status) only changes when a trial finishes.
    base = parse_time(tally.latest_completion) or now
    eta = base + timedelta(seconds=waves * tally.duration / tally.timed)
    return format_time(max(eta, now))


def decide(
    spec: ExperimentSpec,
    trials: Sequence[Mapping[str, Any]],
    grid_size: int | None = None,
    view: Tallied | None = None,
) -> tuple[str, str | None, str | None, list[int]]:
    """(phase, reason, message, numbers to create) for the Trials as they are
    (``view``: them, tallied, when the caller has it; ``trials`` is then not read)."""
    view = Tallied.of(spec, trials) if view is None else view
    c = view.counts()
    finished = c["succeeded"] + c["failed"] + c["pruned"]
    ranked = view.ranked(1)
    best = _objective(ranked[0][0]) if ranked else None
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
            f"trial {ranked[0][0]['metadata']['name']} reached {spec.primary.metric}={best}"
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
    start = view.next_number()
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
    trials: Sequence[Mapping[str, Any]],
    now: datetime,
    grid_size: int | None = None,
    tally: FinishedTally | None = None,
) -> Plan:
    """What to create now and the status to write (computed as if those were created).
    ``tally``: the Experiment's, kept across reconciles (brought up to date here), so
    that the finished Trials are not walked again; without it, one from scratch."""
    view = Tallied.of(spec, trials, tally)
    c = view.counts()
    phase, reason, message, create = decide(spec, trials, grid_size, view)
    best = best_trial(view)
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
        "leaderboard": [summary(t, spec) for t, _ in view.ranked(LEADERBOARD_SIZE)],
        **pareto_status(view),
        "startTime": old.get("startTime") or at,
        "completionTime": completion,
        "estimatedCompletionTime": None if terminal else estimate_completion(view, limit, now),
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
