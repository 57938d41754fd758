"""An Experiment's validation across its Trials: verdict counts, the finding kinds that
recur, and the recommendations worth acting on first, including what the search itself
says about its ranges (``search_range_findings``).

One function over plain Trial dicts, shared by the operator (``status.validation`` of
the Experiment, from its in-memory Trial cache) and ``thunderbolt validate
--experiment``, so the two always agree.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

from thunderbolt.api.trial import trial_number
from thunderbolt.api.validation_summary import MAX_EXPERIMENT_FINDINGS, MAX_RECOMMENDATIONS
from thunderbolt.validation.recommend import ranked_range_findings, recommend

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
    tally = ValidationTally(maximize=_primary_direction(spec) == "maximize")
    for index, trial in enumerate(trials):
        tally.add(index, trial)
    return tally.summary(spec.get("parameters") or [])


class _Part(NamedTuple):
    """One Trial's share of a ``ValidationTally`` (what ``remove`` takes back)."""

    verdict: str
    kinds: tuple[str, ...]  # each kind once (an empty tuple costs nothing)
    actions: tuple[tuple[str, tuple[int, int, int]], ...]
    scored: tuple[float, int, int] | None


class ValidationTally:
    """``summarize``'s counts kept as Trials finish: ``add`` and ``remove`` one Trial
    (by any key), ``summary`` without walking them all. Every part is a counter or a
    sorted list, so adding and removing in any order gives what a fresh fold gives.

    Ties among recommendations go to the lower Trial number (then the order within
    that Trial); among equal objectives, to the lower number.
    """

    def __init__(self, maximize: bool) -> None:
        self.maximize = maximize
        self._parts: dict[Hashable, _Part] = {}
        self._counts = {"passed": 0, "warned": 0, "failed": 0, "unchecked": 0}
        self._kinds: collections.Counter[str] = collections.Counter()
        self._actions: dict[str, list[tuple[int, int, int]]] = {}  # sorted (number, pos, seq)
        self._first: dict[tuple[int, int, int], dict[str, Any]] = {}
        self._scored: list[tuple[float, int, int]] = []  # sorted (signed objective, number, seq)
        self._parameters: dict[int, Mapping[str, Any]] = {}  # seq -> the Trial's parameters
        self._seq = itertools.count()

    def add(self, key: Hashable, trial: Mapping[str, Any]) -> None:
        """Count ``trial`` if it finished (a second add under ``key`` replaces the first)."""
        if key in self._parts:
            self.remove(key)
        status = trial.get("status") or {}
        if status.get("phase") not in FINISHED:
            return
        number = trial_number(trial)
        validation = status.get("validation") or {}
        verdict = _VERDICT_FIELD.get(str(validation.get("verdict")), "unchecked")
        kinds = tuple(sorted({str(f.get("kind")) for f in validation.get("findings") or []}))
        actions = []
        for pos, rec in enumerate(validation.get("recommendations") or []):
            action, at = str(rec.get("action")), (number, pos, next(self._seq))
            bisect.insort(self._actions.setdefault(action, []), at)
            self._first[at] = {k: rec[k] for k in ("action", "finding", "text") if k in rec}
            actions.append((action, at))
        scored = None
        objective = _objective(status)
        if status.get("phase") == "Succeeded" and objective is not None:
            seq = next(self._seq)
            scored = (-objective if self.maximize else objective, number, seq)
            bisect.insort(self._scored, scored)
            self._parameters[seq] = (trial.get("spec") or {}).get("parameters") or {}
        self._counts[verdict] += 1
        self._kinds.update(kinds)
        self._parts[key] = _Part(verdict, kinds, tuple(actions), scored)

    def remove(self, key: Hashable) -> None:
        """Take back what ``add`` counted under ``key`` (nothing if it counted nothing)."""
        part = self._parts.pop(key, None)
        if part is None:
            return
        self._counts[part.verdict] -= 1
        self._kinds.subtract(part.kinds)
        for kind in part.kinds:
            if self._kinds[kind] <= 0:
                del self._kinds[kind]
        for action, at in part.actions:
            ats = self._actions[action]
            del ats[bisect.bisect_left(ats, at)]
            if not ats:
                del self._actions[action]
            del self._first[at]
        if part.scored is not None:
            del self._scored[bisect.bisect_left(self._scored, part.scored)]
            del self._parameters[part.scored[2]]

    @property
    def finished(self) -> int:
        """Finished Trials counted."""
        return len(self._parts)

    def summary(self, parameters: Sequence[Mapping[str, Any]], top: int = 5) -> dict[str, Any]:
        """``ExperimentValidation`` as a plain dict; ``parameters``: the search space."""
        best = [(self._parameters[seq], -v if self.maximize else v)
                for v, _, seq in self._scored[:top]]  # fmt: skip
        ranges = recommend(ranked_range_findings(parameters, best, len(self._scored), top=top))
        recommendations = [{"action": r.action, "finding": r.finding, "text": r.text[:256]}
                           for r in ranges]  # fmt: skip
        # most Trials first; ties: the lowest Trial number that made it first
        for action in sorted(
            self._actions, key=lambda a: (-len(self._actions[a]), self._actions[a][0])
        ):
            if all(r["action"] != action for r in recommendations):
                recommendations.append(self._first[self._actions[action][0]])
        findings = [{"kind": k, "trials": n}
                    for k, n in sorted(self._kinds.items(), key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
        return {
            **self._counts,
            "findings": findings[:MAX_EXPERIMENT_FINDINGS],
            "recommendations": recommendations[:MAX_RECOMMENDATIONS],
        }
