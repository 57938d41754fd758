"""An Experiment's validation across its Trials: verdict counts, the finding kinds that
recur, and the recommendations worth acting on first, including what the search itself
says about its ranges (``search_range_findings``).

One function over plain Trial dicts, shared by the operator (``status.validation`` of
the Experiment, from its in-memory Trial cache) and ``thunderbolt validate
--experiment``, so the two always agree.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence
from typing import Any

from thunderbolt.api.validation_summary import MAX_EXPERIMENT_FINDINGS, MAX_RECOMMENDATIONS
from thunderbolt.validation.recommend import experiment_recommendations

FINISHED = ("Succeeded", "Failed", "Pruned")
_VERDICT_FIELD = {"pass": "passed", "warn": "warned", "fail": "failed"}


def _objective(status: Mapping[str, Any]) -> float | None:
    try:
        value = float(status["objective"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _primary_direction(spec: Mapping[str, Any]) -> str:
    goals = spec.get("objectives") or [spec.get("objective") or {}]
    return str((goals[0] or {}).get("direction", "maximize"))


def summarize(spec: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``ExperimentValidation`` as a plain dict, from the Experiment's spec and Trials.

    Only finished Trials count. Recommendations: the search ranges' advice first (it
    concerns the whole search), then the Trials' own recommendations by how many Trials
    made them; at most ``MAX_RECOMMENDATIONS``, one per action.
    """
    counts = {"passed": 0, "warned": 0, "failed": 0, "unchecked": 0}
    kinds: collections.Counter[str] = collections.Counter()
    actions: collections.Counter[str] = collections.Counter()
    first: dict[str, dict[str, Any]] = {}
    scored: list[tuple[Mapping[str, Any], float]] = []
    for trial in trials:
        status = trial.get("status") or {}
        if status.get("phase") not in FINISHED:
            continue
        validation = status.get("validation") or {}
        counts[_VERDICT_FIELD.get(str(validation.get("verdict")), "unchecked")] += 1
        kinds.update({str(f.get("kind")) for f in validation.get("findings") or []})
        for rec in validation.get("recommendations") or []:
            action = str(rec.get("action"))
            actions[action] += 1
            first.setdefault(action, {k: rec[k] for k in ("action", "finding", "text") if k in rec})
        objective = _objective(status)
        if status.get("phase") == "Succeeded" and objective is not None:
            scored.append(((trial.get("spec") or {}).get("parameters") or {}, objective))
    maximize = _primary_direction(spec) == "maximize"
    ranges = experiment_recommendations(spec.get("parameters") or [], scored, maximize=maximize)
    recommendations = [{"action": r.action, "finding": r.finding, "text": r.text[:256]}
                       for r in ranges]  # fmt: skip
    # most Trials first; ties in the order first seen (the Trials' own ranking)
    order = {a: i for i, a in enumerate(first)}
    for action in sorted(actions, key=lambda a: (-actions[a], order[a])):
        if all(r["action"] != action for r in recommendations):
            recommendations.append(first[action])
    findings = [{"kind": k, "trials": n}
                for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
    return {
        **counts,
        "findings": findings[:MAX_EXPERIMENT_FINDINGS],
        "recommendations": recommendations[:MAX_RECOMMENDATIONS],
    }
