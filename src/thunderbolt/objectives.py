"""Several objectives: a Trial's values, the Pareto front, and which Trial is promoted.

Pure functions over Trial objects as the API returns them, shared by the operator's
status (``operator.aggregate``), the search (``optuna_bridge``) and the CLI, so the
front a user sees is the front the operator wrote. A Trial's value for the first
objective is its ``status.objective`` (what it reported per epoch); the others come
from ``status.metrics`` (the built-in trainer reports its serving metrics there).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Any

from thunderbolt.api.experiment import Objective, Select
from thunderbolt.api.trial import trial_number


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def metric_value(trial: Mapping[str, Any], metric: str, primary: str | None = None) -> float | None:
    """``metric``'s finite value on ``trial``; the primary metric is ``status.objective``."""
    return _status_metric(trial.get("status") or {}, metric, primary)


def _status_metric(status: Mapping[str, Any], metric: str, primary: str | None) -> float | None:
    if metric == primary:
        return _finite(status.get("objective"))
    return _finite((status.get("metrics") or {}).get(metric))


def values(trial: Mapping[str, Any], goals: Sequence[Objective]) -> list[float] | None:
    """The Trial's value for each objective, or None when any is missing or not finite."""
    return status_values(trial.get("status") or {}, [g.metric for g in goals])


def status_values(status: Mapping[str, Any], metrics: Sequence[str]) -> list[float] | None:
    """``values`` from a Trial's status and the objectives' metric names."""
    out = []
    for metric in metrics:  # the first is the primary
        value = _status_metric(status, metric, metrics[0])
        if value is None:
            return None
        out.append(value)
    return out


def dominates(a: Sequence[float], b: Sequence[float], goals: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, goal in zip(a, b, goals, strict=True):
        gain = (x - y) if goal.direction == "maximize" else (y - x)
        if gain < 0:
            return False
        better = better or gain > 0
    return better


Scored = list[tuple[Mapping[str, Any], list[float]]]


def scored(
    trials: Sequence[Mapping[str, Any]], goals: Sequence[Objective], top: int | None = None
) -> Scored:
    """Succeeded Trials with every objective's value, best first on the first objective;
    only the ``top`` best if given (a heap, not a sort of 10 000 Trials per reconcile)."""
    metrics = [g.metric for g in goals]
    out = []
    for t in trials:
        status = t.get("status") or {}
        if status.get("phase") == "Succeeded":
            found = status_values(status, metrics)
            if found is not None:
                out.append((t, found))
    sign = -1.0 if goals[0].direction == "maximize" else 1.0

    def rank(tv: tuple[Mapping[str, Any], list[float]]) -> tuple[float, int]:
        return (sign * tv[1][0], trial_number(tv[0]))

    if top is not None:
        return heapq.nsmallest(top, out, key=rank)
    out.sort(key=rank)
    return out


def pareto_front(
    trials: Sequence[Mapping[str, Any]], goals: Sequence[Objective], ranked: Scored | None = None
) -> Scored:
    """The non-dominated succeeded Trials (with their values), best first on the first
    objective. Trials with equal values are all kept. O(n^2) in the scored Trials;
    ``ranked``: ``scored(trials, goals)``, if at hand."""
    candidates = scored(trials, goals) if ranked is None else ranked
    return [
        (t, v)
        for t, v in candidates
        if not any(dominates(other, v, goals) for _, other in candidates)
    ]


def feasible(trial: Mapping[str, Any], select: Select, primary: str) -> bool:
    """Whether the Trial meets every constraint (a missing metric fails it)."""
    for c in select.constraints:
        value = metric_value(trial, c.metric, primary)
        if value is None:
            return False
        if c.max is not None and value > c.max:
            return False
        if c.min is not None and value < c.min:
            return False
    return True


def score(vals: Sequence[float], goals: Sequence[Objective], select: Select) -> float:
    """What ``select`` maximizes: the weighted sum, or the chosen objective (signed)."""
    metrics = [g.metric for g in goals]
    if select.weights:
        return sum(w * vals[metrics.index(m)] for m, w in select.weights.items())
    index = metrics.index(select.objective) if select.objective else 0
    return vals[index] if goals[index].direction == "maximize" else -vals[index]


def choose(
    trials: Sequence[Mapping[str, Any]], goals: Sequence[Objective], select: Select | None
) -> Mapping[str, Any] | None:
    """The Experiment's best Trial by ``select`` (None: the best on the first objective);
    None when no succeeded Trial meets the constraints. Ties: the lower number."""
    return choose_among(scored(trials, goals), goals, select)


def choose_among(
    candidates: Sequence[tuple[Mapping[str, Any], list[float]]],
    goals: Sequence[Objective],
    select: Select | None,
) -> Mapping[str, Any] | None:
    """``choose`` over what ``scored`` returned (a reconcile scores 10 000 Trials once)."""
    if select is None:
        return candidates[0][0] if candidates else None
    primary = goals[0].metric
    ok = [(t, v) for t, v in candidates if feasible(t, select, primary)]
    if not ok:
        return None
    return max(ok, key=lambda tv: (score(tv[1], goals, select), -trial_number(tv[0])))[0]
