"""Several objectives: a Trial's values, the Pareto front, and which Trial is promoted.

Pure functions over Trial objects as the API returns them, shared by the operator's
status (``operator.aggregate``), the search (``optuna_bridge``) and the CLI, so the
front a user sees is the front the operator wrote. A Trial's value for the first
objective is its ``status.objective`` (what it reported per epoch); the others come
from ``status.metrics`` (the built-in trainer reports its serving metrics there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from thunderbolt.api.experiment import Objective, Select


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
    status = trial.get("status") or {}
    if metric == primary:
        return _finite(status.get("objective"))
    return _finite((status.get("metrics") or {}).get(metric))


def values(trial: Mapping[str, Any], goals: Sequence[Objective]) -> list[float] | None:
    """The Trial's value for each objective, or None when any is missing or not finite."""
    primary = goals[0].metric
    out = [metric_value(trial, g.metric, primary) for g in goals]
    if any(v is None for v in out):
        return None
    return [float(v) for v in out if v is not None]


def dominates(a: Sequence[float], b: Sequence[float], goals: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, goal in zip(a, b, goals, strict=True):
        gain = (x - y) if goal.direction == "maximize" else (y - x)
        if gain < 0:
            return False
        better = better or gain > 0
    return better


def _number(trial: Mapping[str, Any]) -> int:
    return int((trial.get("spec") or {}).get("number", 0))


def scored(
    trials: Sequence[Mapping[str, Any]], goals: Sequence[Objective]
) -> list[tuple[Mapping[str, Any], list[float]]]:
    """Succeeded Trials with every objective's value, best first on the first objective."""
    out = [
        (t, v)
        for t in trials
        if (t.get("status") or {}).get("phase") == "Succeeded"
        and (v := values(t, goals)) is not None
    ]
    sign = -1.0 if goals[0].direction == "maximize" else 1.0
    out.sort(key=lambda tv: (sign * tv[1][0], _number(tv[0])))
    return out


def pareto_front(
    trials: Sequence[Mapping[str, Any]], goals: Sequence[Objective]
) -> list[tuple[Mapping[str, Any], list[float]]]:
    """The non-dominated succeeded Trials (with their values), best first on the first
    objective. Trials with equal values are all kept. O(n^2) in the scored Trials."""
    candidates = scored(trials, goals)
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
    candidates = scored(trials, goals)
    if select is None:
        return candidates[0][0] if candidates else None
    primary = goals[0].metric
    ok = [(t, v) for t, v in candidates if feasible(t, select, primary)]
    if not ok:
        return None
    return max(ok, key=lambda tv: (score(tv[1], goals, select), -_number(tv[0])))[0]
