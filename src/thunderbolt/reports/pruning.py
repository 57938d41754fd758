"""Pruning decisions from Trial statuses, with Optuna's own pruners.

Pure: the caller passes what the Trials say (state, objective, intermediate values) and
gets a yes/no. An in-memory Optuna study is rebuilt from those records on every call, so
the decision needs no state of its own and is the same after an operator restart or on
another replica.

Hyperband's successive-halving rungs normally live in Optuna trial system attributes,
written as a trial passes each rung. They are derived here from the intermediate values
(the value at the first reported step at or past each rung's promotion step), which is
what a live study would have recorded for a trial that kept reporting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from thunderbolt.api.experiment import Pruner
from thunderbolt.optuna_bridge import TrialRecord, make_pruner

RecordState = Literal["running", "complete", "pruned", "failed"]
_OPTUNA_STATES: dict[RecordState, TrialState] = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}
_RECORD_STATES: dict[TrialState, RecordState] = {v: k for k, v in _OPTUNA_STATES.items()}

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class PruneRecord:
    """What pruning needs from one Trial (its Optuna state, in ``optuna_bridge``'s terms)."""

    number: int
    state: RecordState
    objective: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)


def record_from_trial(obj: Mapping[str, Any]) -> PruneRecord:
    """A Trial object (as the API returns it) -> PruneRecord, by ``optuna_bridge``'s rule."""
    record = TrialRecord.from_trial(obj)
    return PruneRecord(
        number=record.number,
        state=_RECORD_STATES[record.state],
        objective=record.objective,
        intermediate=dict(record.intermediate),
    )


def should_prune(
    config: Pruner,
    *,
    direction: Literal["maximize", "minimize"],
    study_name: str,
    max_resource: int,
    trials: Iterable[PruneRecord],
    trial: PruneRecord,
) -> bool:
    """Whether ``trial`` (running, with its latest intermediate value) should stop now.

    ``trials`` are the Experiment's Trials (``trial`` itself may be among them: the
    given ``trial`` wins); ``study_name`` and the Trial numbers seed Hyperband's bracket
    choice, so they must be the same on every call for one Experiment.
    """
    snapshot = PruneSnapshot(
        config, direction=direction, study_name=study_name, max_resource=max_resource, trials=trials
    )
    return snapshot.decide(trial)


class PruneSnapshot:
    """An Experiment's Trials as an Optuna study: built once, asked for many decisions.

    The median pruner only reads the study, so one study serves every report until the
    caller refreshes the snapshot; Hyperband writes rung attributes into the deciding
    trial, so it gets a fresh study per decision.
    """

    def __init__(
        self,
        config: Pruner,
        *,
        direction: Literal["maximize", "minimize"],
        study_name: str,
        max_resource: int,
        trials: Iterable[PruneRecord],
    ) -> None:
        self.config, self.direction, self.study_name = config, direction, study_name
        self.max_resource = max_resource
        self.records = {r.number: r for r in trials}
        self._shared: tuple[optuna.Study, optuna.pruners.BasePruner] | None = None
        if config.name == "median":
            self._shared = self._build(self.records, target=None)

    def decide(self, trial: PruneRecord) -> bool:
        if self.config.name == "none" or not trial.intermediate:
            return False
        target = PruneRecord(trial.number, "running", None, dict(trial.intermediate))
        if self._shared is not None:
            study, pruner = self._shared
            return bool(pruner.prune(study, _frozen(target)))
        records = dict(self.records)
        records[trial.number] = target
        study, pruner = self._build(records, target=trial.number)
        return bool(pruner.prune(study, study.get_trials(deepcopy=False)[trial.number]))

    def _build(
        self, records: Mapping[int, PruneRecord], target: int | None
    ) -> tuple[optuna.Study, optuna.pruners.BasePruner]:
        pruner = make_pruner(self.config, self.max_resource)
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            study_name=self.study_name,
            direction=self.direction,
            pruner=pruner,
        )
        for number in range(max(records, default=-1) + 1):
            # Optuna numbers trials by insertion order; placeholders keep ours (Hyperband
            # brackets are chosen by number).
            record = records.get(number, PruneRecord(number, "failed"))
            frozen = _frozen(record)
            if isinstance(pruner, optuna.pruners.HyperbandPruner):
                frozen.number = number
                frozen.system_attrs = _rungs(study, pruner, frozen, record, number == target)
            study.add_trial(frozen)
        return study, pruner


def _frozen(record: PruneRecord) -> FrozenTrial:
    state = _OPTUNA_STATES[record.state]
    value = record.objective if state == TrialState.COMPLETE else None
    values = {s: v for s, v in record.intermediate.items() if math.isfinite(v)}
    return create_trial(
        state=state, value=value, params={}, distributions={}, intermediate_values=values
    )


def _rungs(
    study: optuna.Study,
    pruner: optuna.pruners.HyperbandPruner,
    frozen: FrozenTrial,
    record: PruneRecord,
    exclude_last: bool,
) -> dict[str, Any]:
    """The successive-halving rungs this Trial passed, as a live study would have recorded.

    Relies on Optuna internals (``_get_bracket_id``, the per-bracket pruners and the
    ``completed_rung_<i>`` system attributes); tests/unit/reports/test_pruning.py pins
    the result against a live study so an Optuna upgrade that changes them fails there.
    """
    steps = sorted(record.intermediate)
    if exclude_last:
        steps = steps[:-1]
    if not steps:
        return {}
    if not pruner._pruners:
        pruner._try_initialization(study)  # not idempotent: once per pruner
    sha = pruner._pruners[pruner._get_bracket_id(study, frozen)]
    min_resource = int(sha._min_resource or 1)
    rate, offset = sha._reduction_factor, sha._min_early_stopping_rate
    attrs: dict[str, Any] = {}
    rung = 0
    for step in steps:
        while step >= min_resource * rate ** (offset + rung):
            attrs[f"completed_rung_{rung}"] = record.intermediate[step]
            rung += 1
    return attrs
