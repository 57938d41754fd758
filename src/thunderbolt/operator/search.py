"""The Optuna side of an Experiment: a study mirrored from its Trials.

Trials are the source of truth. Each Experiment (by uid) has one ``Search`` in memory,
built on first use from the Trials the API lists and then kept up to date
incrementally: a Trial that finishes is told to Optuna exactly once, a running one is
added as a RUNNING Optuna trial so samplers (constant liar, grid) see it. Nothing
here talks to Kubernetes, so the same code runs in the unit tests and the benchmark.

The sampler is rebuilt per suggestion with a seed derived from ``algorithm.seed`` and
the trial number: the parameters of trial *n* depend only on the seed, *n* and the
trials finished so far, so a restarted operator proposes what the old one would have.
(The grid sampler keeps one seed: it numbers its grid points by a seeded shuffle.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from thunderbolt.api.experiment import ExperimentSpec, Parameter
from thunderbolt.operator.tpe_history import HistoryTPESampler
from thunderbolt.optuna_bridge import TrialRecord, make_pruner

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

NUMBER_ATTR = "thunderbolt.number"


@contextmanager
def _quiet() -> Iterator[None]:
    # GP/CMA-ES and add_trial emit ExperimentalWarnings on every call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def distribution(p: Parameter) -> BaseDistribution:
    if p.type == "categorical":
        return CategoricalDistribution(list(p.choices or []))
    assert p.low is not None and p.high is not None
    if p.type == "int":
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def distributions(spec: ExperimentSpec) -> dict[str, BaseDistribution]:
    return {p.name: distribution(p) for p in spec.parameters}


def grid_values(p: Parameter) -> list[Any]:
    if p.type == "categorical":
        return list(p.choices or [])
    assert p.low is not None and p.high is not None and (p.step or p.type == "int")
    step = p.step or 1
    count = int(round((p.high - p.low) / step)) + 1
    values = [p.low + i * step for i in range(count) if p.low + i * step <= p.high + 1e-12]
    return [int(v) for v in values] if p.type == "int" else [round(v, 12) for v in values]


def grid_space(spec: ExperimentSpec) -> dict[str, list[Any]]:
    return {p.name: grid_values(p) for p in spec.parameters}


def search_space_size(spec: ExperimentSpec) -> int | None:
    """Number of grid points for the grid sampler (it has nothing new after that)."""
    if spec.algorithm.name != "grid":
        return None
    size = 1
    for values in grid_space(spec).values():
        size *= len(values)
    return size


def _carry_search_space(old: BaseSampler, new: BaseSampler) -> None:
    """Hand the incremental caches to the next sampler.

    TPE and CMA-ES keep an ``IntersectionSearchSpace`` that is updated incrementally; a
    fresh sampler would recompute it over every trial (O(n) per suggestion, most of the
    cost at 1000 trials). It depends on the trials only, not on the seed.
    """
    cache = getattr(old, "_search_space", None)
    if type(old) is type(new) and isinstance(cache, optuna.search_space.IntersectionSearchSpace):
        setattr(new, "_search_space", cache)  # noqa: B010
    if isinstance(new, HistoryTPESampler):
        new.take_history(old)  # TPE's table of finished trials (tpe_history.py)


class _GridSampler(optuna.samplers.GridSampler):
    """Grid sampler that never calls ``study.stop()``: maxTrials decides when to stop."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


class _TPESampler(HistoryTPESampler):
    """TPE whose random startup trials spread every categorical parameter's choices evenly.

    With a handful of startup trials, plain random draws often give one choice a single
    unlucky trial (e.g. ``spectral_norm: false`` only with a tiny learning rate), and TPE
    then never proposes it again. Here trial ``number`` < startup takes the choice at
    ``number`` in a seeded shuffle of the choices repeated evenly over the startup trials
    (numeric parameters stay random, drawn as random search draws them).
    """

    def __init__(
        self, *, number: int | None = None, plan_seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._number = number
        self._plan_seed = plan_seed  # the Experiment's (one plan for all its trials)

    def balanced_choice(self, name: str, choices: tuple[Any, ...]) -> Any:
        assert self._number is not None
        startup = self._n_startup_trials
        plan = [i % len(choices) for i in range(startup)]
        key = f"{self._plan_seed}:{name}".encode()
        random.Random(hashlib.sha256(key).hexdigest()).shuffle(plan)
        return choices[plan[self._number]]

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, dist: BaseDistribution
    ) -> Any:
        value = super().sample_independent(study, trial, param_name, dist)
        startup = self._number is not None and self._number < self._n_startup_trials
        if startup and isinstance(dist, CategoricalDistribution):
            states = (TrialState.COMPLETE, TrialState.PRUNED)
            if len(study._get_trials(deepcopy=False, states=states, use_cache=True)) < (
                self._n_startup_trials
            ):
                return self.balanced_choice(param_name, dist.choices)
        return value


class _NSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II whose generations follow trial numbers (``number // population_size``).

    Optuna assigns a generation when a trial is asked, from the trials complete at
    that moment, and keeps it only in the study; a study rebuilt from Trials after a
    restart would lose it. Numbering generations by trial number makes them a function
    of the Trials, so the rebuilt study assigns what the old one had.
    """

    def __init__(self, *, number: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._number = number

    def generation_of(self, number: int) -> int:
        return number // int(self.population_size or 1)

    def get_trial_generation(self, study: Any, trial: FrozenTrial) -> int:
        key = self._get_generation_key()
        if key not in trial.system_attrs and self._number is not None:
            generation = self.generation_of(self._number)
            study._storage.set_trial_system_attr(trial._trial_id, key, generation)
            return generation
        return int(super().get_trial_generation(study, trial))

    def forget_parents(self, study: Any) -> None:
        """Drop the parent populations Optuna caches per generation: they depend on which
        trials were complete when first asked, which a rebuilt study cannot know; without
        the cache they come from the complete trials now, on both."""
        prefix = self._get_parent_cache_key_prefix()
        for key in list(study._storage.get_study_system_attrs(study._study_id)):
            if key.startswith(prefix):
                study._storage.set_study_system_attr(study._study_id, key, None)


MAX_STARTUP_TRIALS = 10  # Optuna's own default for TPE and GP


def startup_trials(max_trials: int, num_parameters: int) -> int:
    """Random trials before TPE/GP take over, sized to the budget.

    Optuna's fixed 10 makes a 10-trial search pure random search and a 20-trial one half
    random. Here: 30% of ``maxTrials``, at least half the number of parameters, at
    least 2, at most 10, and never more than half the budget (so at least half the trials
    are guided): 10 trials -> 3, 20 -> 6, 40+ -> 10 (for up to 6 parameters).
    bench/search_quality.py measured 30% ahead of 20% at 20 trials (docs/search-quality.md).
    """
    wanted = max(math.ceil(0.3 * max_trials), math.ceil(num_parameters / 2), 2)
    return max(1, min(wanted, MAX_STARTUP_TRIALS, max_trials // 2))


def cmaes_popsize(max_trials: int, num_parameters: int) -> int | None:
    """CMA-ES's population, so that a small budget still sees several generations.

    Optuna's default (4 + 3 ln d: 9 for 6 parameters) leaves one generation in 10
    trials; this takes at most a fifth of the budget, never below 4. None: the default.
    """
    default = 4 + math.floor(3 * math.log(max(num_parameters, 1)))
    if max_trials >= 5 * default:
        return None
    return max(4, max_trials // 5)


def nsga2_population(max_trials: int) -> int:
    """NSGA-II's population: a quarter of the budget, 4..50 (Optuna's default is 50,
    which would leave a search of fewer than 100 trials one random generation)."""
    return max(4, min(50, max_trials // 4))


def sampler_defaults(spec: ExperimentSpec) -> dict[str, Any]:
    """Settings this operator picks when ``algorithm.settings`` does not name them."""
    name, budget, dims = spec.algorithm.name, spec.maxTrials, len(spec.parameters)
    if name == "nsga2":
        return {"population_size": nsga2_population(budget)}
    if name == "tpe":
        return {
            "n_startup_trials": startup_trials(budget, dims),
            "constant_liar": spec.parallelTrials > 1,
        }
    if name == "gp":
        return {"n_startup_trials": startup_trials(budget, dims)}
    if name == "cmaes":
        numeric = sum(1 for p in spec.parameters if p.type != "categorical")
        popsize = cmaes_popsize(budget, numeric)
        # categorical parameters are drawn at random by CMA-ES's independent sampler
        return {"warn_independent_sampling": False} | ({"popsize": popsize} if popsize else {})
    return {}


def make_sampler(spec: ExperimentSpec, seed: int | None, number: int | None = None) -> BaseSampler:
    """The Optuna sampler for ``spec.algorithm``: ``sampler_defaults`` overridden by the
    user's ``settings`` (passed as kwargs). ``number``: the trial it will be asked for."""
    name = spec.algorithm.name
    kwargs: dict[str, Any] = sampler_defaults(spec) | dict(spec.algorithm.settings)
    with _quiet():
        if name == "tpe":
            if kwargs.pop("balanced_startup", True):
                plan_seed = spec.algorithm.seed
                return _TPESampler(seed=seed, number=number, plan_seed=plan_seed, **kwargs)
            return HistoryTPESampler(seed=seed, **kwargs)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed, **kwargs)
        if name == "grid":
            return _GridSampler(grid_space(spec), seed=seed, **kwargs)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, **kwargs)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **kwargs)
        if name == "nsga2":
            return _NSGAIISampler(seed=seed, number=number, **kwargs)
    raise ValueError(f"unknown sampler {name!r}")


def seed_for(spec: ExperimentSpec, number: int) -> int | None:
    """Sampler seed for trial ``number``; None (fresh randomness) without algorithm.seed."""
    if spec.algorithm.seed is None:
        return None
    return (spec.algorithm.seed * 1_000_003 + number) % (2**31 - 1)


def trial_seed(spec: ExperimentSpec, number: int) -> int:
    """The model seed a Trial gets (recorded in its spec): weights, shuffling, dropout."""
    return (spec.algorithm.seed or 0) + number


def split_seed(spec: ExperimentSpec, uid: str) -> int:
    """The train/validation split seed, one per Experiment so every Trial is judged on
    the same rows: ``validation.seed``, else ``algorithm.seed``, else from the uid."""
    validation = spec.trialTemplate.validation
    if validation is not None and validation.seed is not None:
        return validation.seed
    if spec.algorithm.seed is not None:
        return spec.algorithm.seed
    return int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % (2**31 - 1)


def fingerprint(spec: ExperimentSpec) -> str:
    """What the study depends on; a change (edited search space) means a new Search."""
    key = {
        "objective": [g.direction for g in spec.goals],
        "parameters": [p.model_dump(mode="json") for p in spec.parameters],
        "algorithm": spec.algorithm.model_dump(mode="json"),
        "pruner": spec.pruner.model_dump(mode="json"),
        "epochs": spec.trialTemplate.epochs,
        "validation": spec.trialTemplate.folds,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class Search:
    """One Experiment's study. Thread-safe; every public method takes the lock."""

    def __init__(self, spec: ExperimentSpec, study_name: str) -> None:
        self.spec = spec
        self.fingerprint = fingerprint(spec)
        self.distributions = distributions(spec)
        self._lock = threading.RLock()
        self._grid_seed = (
            spec.algorithm.seed if spec.algorithm.seed is not None else random.randrange(2**31)
        )
        self._running: dict[int, int] = {}  # our trial number -> Optuna trial number
        self.told: set[int] = set()  # our trial numbers told to Optuna (finished)
        # Several objectives: a multi-objective study (no intermediate values or pruning:
        # Optuna's report/should_prune take one value; the spec refuses a pruner).
        self.multi = spec.multi_objective
        with _quiet():
            self.study = optuna.create_study(
                study_name=study_name,
                storage=spec.algorithm.storage,
                load_if_exists=True,
                directions=[g.direction for g in spec.goals],
                sampler=make_sampler(spec, self._sampler_seed(0)),
                pruner=make_pruner(spec.pruner, spec.trialTemplate.report_steps),
            )
        self._adopt_stored_trials()

    def _adopt_stored_trials(self) -> None:
        """With an RDB storage, trials from an earlier process are already there."""
        for t in self.study.get_trials(deepcopy=False):
            number = t.user_attrs.get(NUMBER_ATTR)
            if number is None:
                continue
            if t.state.is_finished():
                self.told.add(int(number))
            elif t.state == TrialState.RUNNING:
                self._running[int(number)] = t.number

    def _sampler_seed(self, number: int) -> int | None:
        if self.spec.algorithm.name == "grid":
            return self._grid_seed
        return seed_for(self.spec, number)

    def _system_attrs(self, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the grid and NSGA-II samplers record on trials they propose, for trials
        added later (rebuilt from Trials)."""
        if self.spec.algorithm.name == "nsga2":
            nsga = make_sampler(self.spec, None)
            assert isinstance(nsga, _NSGAIISampler)
            return {nsga._get_generation_key(): nsga.generation_of(number)}
        if self.spec.algorithm.name != "grid":
            return {}
        sampler = make_sampler(self.spec, self._grid_seed)
        assert isinstance(sampler, optuna.samplers.GridSampler)
        key = tuple(params.get(n) for n in sampler._param_names)
        try:
            grid_id = sampler._all_grids.index(key)
        except ValueError:
            return {}
        return {"grid_id": grid_id, "search_space": sampler._search_space}

    def _values(self, rec: TrialRecord, state: TrialState) -> list[float] | None:
        """What Optuna records for a finished Trial: its objective value(s), if any."""
        if self.multi:
            complete = state == TrialState.COMPLETE and rec.values is not None
            return list(rec.values) if complete and rec.values is not None else None
        value = rec.objective
        intermediate = dict(rec.intermediate)
        if state == TrialState.PRUNED and value is None and intermediate:
            value = intermediate[max(intermediate)]
        if state != TrialState.COMPLETE and state != TrialState.PRUNED:
            value = None
        return None if value is None else [value]

    def _add(self, rec: TrialRecord, state: TrialState) -> None:
        intermediate = {} if self.multi else dict(rec.intermediate)
        frozen = create_trial(
            state=state,
            values=self._values(rec, state),
            params=dict(rec.parameters),
            distributions=self.distributions,
            user_attrs={NUMBER_ATTR: rec.number},
            system_attrs=self._system_attrs(rec.number, rec.parameters),
            intermediate_values=intermediate,
        )
        with _quiet():
            self.study.add_trial(frozen)
        if state == TrialState.RUNNING:
            self._running[rec.number] = len(self.study.get_trials(deepcopy=False)) - 1

    def _frozen(self, number: int) -> FrozenTrial:
        return self.study.get_trials(deepcopy=False)[self._running[number]]

    def _report(self, number: int, intermediate: Iterable[tuple[int, float]]) -> None:
        frozen = self._frozen(number)
        trial = optuna.trial.Trial(self.study, frozen._trial_id)
        for step, value in intermediate:
            if step not in frozen.intermediate_values:
                trial.report(value, step)

    def _tell(self, rec: TrialRecord, state: TrialState) -> None:
        frozen = self._frozen(rec.number)
        if dict(frozen.params) != dict(rec.parameters):
            # The Trial is not the one this process asked for (created by an earlier
            # process): drop the stale ask and record what really ran.
            self.study.tell(frozen.number, state=TrialState.FAIL)
            del self._running[rec.number]
            self._add(rec, state)
            return
        if not self.multi:
            self._report(rec.number, rec.intermediate)
        values = self._values(rec, state) if state == TrialState.COMPLETE else None
        with _quiet():
            self.study.tell(frozen.number, values, state=state)
        del self._running[rec.number]

    def observe(self, records: Iterable[TrialRecord]) -> list[int]:
        """Bring the study up to date with the Trials; returns the numbers told just now."""
        told_now: list[int] = []
        with self._lock:
            for rec in sorted(records, key=lambda r: r.number):
                if rec.number in self.told:
                    continue
                try:
                    if rec.finished:
                        state = rec.state
                        if rec.number in self._running:
                            self._tell(rec, state)
                        else:
                            self._add(rec, state)
                        self.told.add(rec.number)
                        told_now.append(rec.number)
                    elif rec.number not in self._running:
                        self._add(rec, TrialState.RUNNING)
                except ValueError as exc:
                    # Parameters outside the (edited) search space: nothing to learn from.
                    log.warning("trial %d not added to the study: %s", rec.number, exc)
                    self.told.add(rec.number)
        return told_now

    def suggest(self, number: int) -> dict[str, Any]:
        """Parameters for trial ``number``; asking twice for one number gives the same answer."""
        with self._lock:
            if number in self._running:
                return dict(self._frozen(number).params)
            with _quiet():
                sampler = make_sampler(self.spec, self._sampler_seed(number), number)
                _carry_search_space(self.study.sampler, sampler)
                if isinstance(sampler, _NSGAIISampler):
                    sampler.forget_parents(self.study)
                self.study.sampler = sampler
                trial = self.study.ask(self.distributions)
            trial.set_user_attr(NUMBER_ATTR, number)
            self._running[number] = trial.number
            return dict(trial.params)


class StudyCache:
    """Searches by Experiment uid."""

    def __init__(self) -> None:
        self._searches: dict[str, Search] = {}
        self._guard = threading.Lock()

    def get(self, uid: str, spec: ExperimentSpec, study_name: str) -> tuple[Search, bool]:
        """The Search for ``uid`` and whether it was built just now (from scratch)."""
        with self._guard:
            search = self._searches.get(uid)
            if search is not None and search.fingerprint == fingerprint(spec):
                search.spec = spec  # maxTrials/parallelTrials changes keep the study
                return search, False
        search = Search(spec, study_name)
        with self._guard:
            self._searches[uid] = search
        return search, True

    def peek(self, uid: str) -> Search | None:
        with self._guard:
            return self._searches.get(uid)

    def forget(self, uid: str) -> None:
        with self._guard:
            self._searches.pop(uid, None)


# The operator process's cache. Pruning verdicts come from thunderbolt.reports.pruning,
# which derives them from the Trials alone so that any replica gives the same answer.
STUDIES = StudyCache()
