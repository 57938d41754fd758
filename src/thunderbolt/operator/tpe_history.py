"""TPE whose cost per suggestion stays small as a study grows to thousands of trials.

Optuna's ``TPESampler`` rereads every finished trial on every suggestion: it checks each
trial's state and constraints, sorts them all by value, and converts each one's
parameters to their internal representation, all in Python. At 10 000 trials that is
about 100 ms per suggestion, nearly all of it spent on trials that have not changed
since the last one. A finished trial never changes, so ``FinishedTrials`` reads each one
once and keeps the columns TPE needs as arrays; ``HistoryTPESampler`` splits and builds
its Parzen estimators from those arrays. Its proposals are Optuna's, value for value
(tests/unit/operator/test_tpe_history.py compares them on random studies); cases it
does not cover (several objectives, constraints) go to Optuna's own code.

The table lives outside the sampler (the operator builds a fresh sampler per suggestion
with its own seed) and is handed from one sampler to the next, like the search-space
cache; it is tied to one study and one direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers._tpe.sampler import _get_infeasible_trial_score, default_gamma
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _pruned_key(trial: FrozenTrial, maximize: bool) -> tuple[float, float]:
    """Optuna's order for pruned trials: the furthest step first, then its value."""
    if not trial.intermediate_values:
        return 1.0, 0.0
    step, value = max(trial.intermediate_values.items())
    if math.isnan(value):
        return -step, math.inf
    return -step, -value if maximize else value


class _Column:
    """One parameter's internal values over the table's rows (None: trial lacks it)."""

    def __init__(self, name: str, distribution: BaseDistribution) -> None:
        self.name, self.distribution = name, distribution
        self.values: list[Any] = []
        self.present: list[bool] = []
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def extend(self, params: Sequence[dict[str, Any]]) -> None:
        for p in params[len(self.values) :]:
            found = self.name in p
            self.present.append(found)
            self.values.append(self.distribution.to_internal_repr(p[self.name]) if found else 0)
            self._arrays = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (np.asarray(self.values), np.asarray(self.present, dtype=bool))
        return self._arrays


class FinishedTrials:
    """What TPE reads from each finished (complete or pruned) trial, read once."""

    def __init__(self, maximize: bool) -> None:
        self.maximize = maximize
        self._row: dict[int, int] = {}  # Optuna trial number -> row
        self._complete: list[bool] = []
        self._value: list[float] = []  # complete: the objective; pruned: unused
        self._pruned_key: list[tuple[float, float]] = []
        self._params: list[dict[str, Any]] = []
        self._columns: dict[tuple[str, BaseDistribution], _Column] = {}
        self.supported = True  # False once a trial carries constraints
        # The last call's trials (kept alive, so their ids stay theirs), ids and rows
        self._last: list[FrozenTrial] = []
        self._last_ids = np.empty(0, dtype=np.uint64)
        self._last_rows = np.empty(0, dtype=np.int64)

    def rows(self, trials: Sequence[FrozenTrial]) -> np.ndarray:
        """Each trial's row (-1 for a running one), adding finished trials seen first.

        Optuna hands over the same objects from one suggestion to the next (a trial that
        changes is a new object), so positions holding the very object of the last call
        keep its row, found with one vectorized comparison; only new or changed trials
        are looked up one by one."""
        ids = np.fromiter(map(id, trials), dtype=np.uint64, count=len(trials))
        out = np.full(len(trials), -1, dtype=np.int64)
        common = min(len(trials), len(self._last_ids))
        same = self._last_ids[:common] == ids[:common]
        out[:common][same] = self._last_rows[:common][same]
        for i in np.flatnonzero(out < 0).tolist():
            trial = trials[i]
            row = self._row.get(trial.number)
            if row is None:
                row = self._add(trial) if trial.state in _FINISHED else -1
            out[i] = row
        self._last, self._last_ids, self._last_rows = list(trials), ids, out
        return out

    def _add(self, trial: FrozenTrial) -> int:
        if _get_infeasible_trial_score(trial) > 0:
            self.supported = False
        row = len(self._params)
        complete = trial.state == TrialState.COMPLETE
        self._complete.append(complete)
        self._value.append(float(trial.value) if complete else math.nan)  # type: ignore[arg-type]
        self._pruned_key.append((0.0, 0.0) if complete else _pruned_key(trial, self.maximize))
        self._params.append(dict(trial.params))
        self._row[trial.number] = row
        return row

    def split(self, rows: np.ndarray, n_below: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (into ``rows``) of the below and above groups, as Optuna splits them:
        the best complete trials, then the furthest pruned ones, fill ``n_below``;
        everything else (running trials too) is above. Both in the trials' order."""
        positions = np.arange(len(rows))
        finished = rows >= 0
        complete_flags = np.asarray(self._complete, dtype=bool)
        is_complete = np.zeros(len(rows), dtype=bool)
        is_complete[finished] = complete_flags[rows[finished]]
        is_pruned = finished & ~is_complete

        below = np.zeros(len(rows), dtype=bool)
        complete = positions[is_complete]
        values = np.asarray(self._value)[rows[complete]]
        order = np.argsort(-values if self.maximize else values, kind="stable")
        take = min(n_below, len(complete))
        below[complete[order[:take]]] = True
        n_below = max(0, n_below - take)

        pruned = positions[is_pruned]
        if n_below and len(pruned):
            keys = np.asarray(self._pruned_key, dtype=float).reshape(-1, 2)[rows[pruned]]
            order = np.lexsort((keys[:, 1], keys[:, 0]))  # stable, by step then value
            below[pruned[order[: min(n_below, len(pruned))]]] = True
        return positions[below], positions[~below]

    def observations(
        self,
        trials: Sequence[FrozenTrial],
        rows: np.ndarray,
        selected: np.ndarray,
        search_space: dict[str, BaseDistribution],
        running_params: dict[int, dict[str, Any]],
    ) -> dict[str, np.ndarray]:
        """Optuna's ``_get_internal_repr`` for ``trials[selected]``: the internal values of
        the trials that have every parameter of ``search_space``."""
        if not search_space:
            return {}
        sel_rows = rows[selected]
        finished = sel_rows >= 0
        has_all = np.ones(len(selected), dtype=bool)
        columns: dict[str, np.ndarray] = {}
        for name, distribution in search_space.items():
            column = self._columns.get((name, distribution))
            if column is None:
                column = self._columns[(name, distribution)] = _Column(name, distribution)
            column.extend(self._params)
            values, present = column.arrays()
            picked = np.zeros(len(selected), dtype=values.dtype if len(values) else float)
            here = np.zeros(len(selected), dtype=bool)
            picked[finished] = values[sel_rows[finished]] if len(values) else 0
            here[finished] = present[sel_rows[finished]] if len(present) else False
            for i in np.flatnonzero(~finished):
                params = running_params[int(selected[i])]
                if name in params:
                    picked[i] = distribution.to_internal_repr(params[name])
                    here[i] = True
            has_all &= here
            columns[name] = picked
        if not has_all.any():
            return {name: np.asarray([]) for name in search_space}
        return {name: col[has_all] for name, col in columns.items()}


def _without(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """``trials`` less the one numbered ``number`` (the one being sampled: usually the
    newest, so the search starts from the end)."""
    for i in range(len(trials) - 1, -1, -1):
        if trials[i].number == number:
            return trials[:i] + trials[i + 1 :]
    return trials


class HistoryTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE reading finished trials from a ``FinishedTrials`` table."""

    history: FinishedTrials | None = None

    def take_history(self, previous: optuna.samplers.BaseSampler) -> None:
        """Keep the previous sampler's table (same study): only new trials get read."""
        if isinstance(previous, HistoryTPESampler):
            self.history = previous.history

    def _covers(self, study: Study) -> bool:
        return not study._is_multi_objective() and self._constraints_func is None

    def _history_rows(self, study: Study, trial: FrozenTrial) -> tuple[list[FrozenTrial], Any]:
        """The trials TPE reads for ``trial`` and their rows in the table (one pass)."""
        maximize = study.direction == StudyDirection.MAXIMIZE
        if self.history is None or self.history.maximize != maximize:
            self.history = FinishedTrials(maximize)
        states: tuple[TrialState, ...] = _FINISHED
        if self._constant_liar:
            states = (*_FINISHED, TrialState.RUNNING)
        trials = study._get_trials(deepcopy=False, states=states, use_cache=not self._constant_liar)
        if self._constant_liar:
            trials = _without(trials, trial.number)
        return trials, self.history.rows(trials)

    def _sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Optuna's, less its own pass over all trials to count the finished ones: the
        table's rows count them, and ``_sample`` then reuses the same pass."""
        if not search_space or not self._covers(study):
            return super()._sample_relative(study, trial, search_space)
        trials, rows = self._history_rows(study, trial)
        if int((rows >= 0).sum()) < self._n_startup_trials:
            return {}
        return self._sample_rows(study, trial, search_space, trials, rows)

    def _sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._covers(study):
            return super()._sample(study, trial, search_space)
        trials, rows = self._history_rows(study, trial)
        return self._sample_rows(study, trial, search_space, trials, rows)

    def _sample_rows(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        trials: list[FrozenTrial],
        rows: np.ndarray,
    ) -> dict[str, Any]:
        assert self.history is not None
        if not self.history.supported:
            return super()._sample(study, trial, search_space)
        if self._gamma is None:
            self._gamma = default_gamma
        n = int((rows >= 0).sum())
        below, above = self.history.split(rows, self._gamma(n))
        running = {int(i): self._get_params(trials[i], study) for i in np.flatnonzero(rows < 0)}
        below_obs = self.history.observations(trials, rows, below, search_space, running)
        above_obs = self.history.observations(trials, rows, above, search_space, running)
        estimator = self._parzen_estimator_cls
        mpe_below = estimator(below_obs, search_space, self._parzen_estimator_parameters)
        mpe_above = estimator(above_obs, search_space, self._parzen_estimator_parameters)
        samples_below = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acq_func_vals = self._compute_acquisition_func(samples_below, mpe_below, mpe_above)
        ret = optuna.samplers.TPESampler._compare(samples_below, acq_func_vals)
        for name, distribution in search_space.items():
            ret[name] = distribution.to_external_repr(ret[name])
        return ret
