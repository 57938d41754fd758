"""What every reconcile reads from an Experiment's finished Trials, kept as they finish.

At 10 000 Trials, recounting the phases, the leaderboard, the completion estimate and
the validation summary over every Trial cost ~50 ms per reconcile, most of the
operator's CPU per finished Trial (docs/operator.md, "10 000 Trials"). A finished
Trial seldom changes again, so a ``FinishedTally`` folds each one in once and takes it
back out if it changes or goes. Every part is a counter, an exact sum or a sorted list,
so the tally after any sequence of changes equals one folded from scratch:
``aggregate.plan`` without a tally folds one from scratch, and the unit tests compare
the two.

``sync`` still walks the Trials once, but only to see whether each one is a record it
folded already (one identity check: the Trial cache hands out the same record object
until the Trial changes, and never changes a record in place).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from thunderbolt import objectives
from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.trial import FINISHED_PHASES, trial_number
from thunderbolt.validation.across_trials import ValidationTally

Ranked = tuple[float, int, int]  # (signed first objective, number, sequence)


def _key(trial: Mapping[str, Any]) -> Hashable:
    """The Trial's uid; a Trial without one (a hand-made dict) is its own key."""
    uid = (trial.get("metadata") or {}).get("uid")
    return str(uid) if uid else ("object", id(trial))


def goals_key(spec: ExperimentSpec) -> tuple[tuple[str, str], ...]:
    """What a tally's ranking depends on: a spec with other goals needs a new tally."""
    return tuple((g.metric, g.direction) for g in spec.goals)


class FinishedTally:
    """An Experiment's finished Trials, folded: phase counts, durations, completion
    times, the scored Trials ranked on the first objective, and the validation tally."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.key = goals_key(spec)
        self._metrics = [g.metric for g in spec.goals]
        self._sign = -1.0 if spec.goals[0].direction == "maximize" else 1.0
        self._folded: dict[Hashable, Mapping[str, Any]] = {}
        # id() of each folded record: it holds a reference, so no other object has its id
        self._ids: set[int] = set()
        self.phases: Counter[str] = Counter()  # lower-case phase -> Trials
        self.timed = 0
        self._duration_us = 0  # an integer sum: exact, so the same in any order
        self._completions: list[str] = []  # sorted; fixed-width UTC, so text order is time
        self._numbers: list[int] = []  # sorted
        self._ranked: list[Ranked] = []
        self._scored: dict[int, tuple[Mapping[str, Any], list[float]]] = {}  # seq -> Trial
        self._entry: dict[Hashable, Ranked] = {}
        self._seq = itertools.count()
        self.validation = ValidationTally(maximize=spec.goals[0].direction == "maximize")

    def sync(self, trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Fold in what finished or changed, take out what went; returns the Trials
        that have not finished (in the order given)."""
        active: list[Mapping[str, Any]] = []
        seen = 0
        for trial in trials:
            if id(trial) in self._ids:  # this very record is folded: nothing to read
                seen += 1
                continue
            if (trial.get("status") or {}).get("phase") not in FINISHED_PHASES:
                active.append(trial)
                continue
            key = _key(trial)
            self._remove(key)
            self._add(key, trial)
            seen += 1
        if seen != len(self._folded):  # a finished Trial went (deleted, or a new Experiment)
            current = {
                _key(t) for t in trials if (t.get("status") or {}).get("phase") in FINISHED_PHASES
            }
            for key in [k for k in self._folded if k not in current]:
                self._remove(key)
        return active

    def _add(self, key: Hashable, trial: Mapping[str, Any]) -> None:
        status = trial.get("status") or {}
        self._folded[key] = trial
        self._ids.add(id(trial))
        self.phases[str(status["phase"]).lower()] += 1
        bisect.insort(self._numbers, trial_number(trial))
        if status.get("durationSeconds"):
            self.timed += 1
            self._duration_us += round(float(status["durationSeconds"]) * 1e6)
        if status.get("completionTime"):
            bisect.insort(self._completions, str(status["completionTime"]))
        if status.get("phase") == "Succeeded":
            values = objectives.status_values(status, self._metrics)
            if values is not None:
                entry = (self._sign * values[0], trial_number(trial), next(self._seq))
                bisect.insort(self._ranked, entry)
                self._scored[entry[2]] = (trial, values)
                self._entry[key] = entry
        self.validation.add(key, trial)

    def _remove(self, key: Hashable) -> None:
        trial = self._folded.pop(key, None)
        if trial is None:
            return
        self._ids.discard(id(trial))
        status = trial.get("status") or {}
        self.phases[str(status["phase"]).lower()] -= 1
        del self._numbers[bisect.bisect_left(self._numbers, trial_number(trial))]
        if status.get("durationSeconds"):
            self.timed -= 1
            self._duration_us -= round(float(status["durationSeconds"]) * 1e6)
        if status.get("completionTime"):
            at = bisect.bisect_left(self._completions, str(status["completionTime"]))
            del self._completions[at]
        entry = self._entry.pop(key, None)
        if entry is not None:
            del self._ranked[bisect.bisect_left(self._ranked, entry)]
            del self._scored[entry[2]]
        self.validation.remove(key)

    @property
    def finished(self) -> int:
        return len(self._folded)

    @property
    def largest_number(self) -> int:
        """The largest finished Trial number; -1 before any finished."""
        return self._numbers[-1] if self._numbers else -1

    @property
    def duration(self) -> float:
        """Seconds of the timed Trials, summed to the microsecond."""
        return self._duration_us / 1e6

    @property
    def latest_completion(self) -> str | None:
        return self._completions[-1] if self._completions else None

    def scored(self, top: int | None = None) -> objectives.Scored:
        """``objectives.scored`` of the finished Trials: best first, the ``top`` best."""
        ranked = self._ranked if top is None else self._ranked[:top]
        return [self._scored[seq] for _, _, seq in ranked]


class Tallies:
    """One ``FinishedTally`` per Experiment uid; a reconcile (which holds the
    Experiment's lock) is the only user of its Experiment's tally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, FinishedTally] = {}

    def get(self, uid: str, spec: ExperimentSpec) -> FinishedTally:
        """The Experiment's tally; a new one if the spec's objectives changed."""
        with self._lock:
            tally = self._by_uid.get(uid)
            if tally is None or tally.key != goals_key(spec):
                tally = self._by_uid[uid] = FinishedTally(spec)
            return tally

    def forget(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)


TALLIES = Tallies()
