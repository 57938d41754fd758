"""Trials as Optuna sees them: one translation, used by the search and by pruning.

The operator's search (``operator.search``) and the report endpoint's pruning
(``reports.pruning``) both rebuild Optuna state from Trial resources; they must agree
on what a Trial's status means (a success without a finite objective ranks nothing, so
it counts as failed) and build the same pruner from the Experiment's spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from thunderbolt import objectives
from thunderbolt.api.experiment import Objective, Pruner
from thunderbolt.api.trial import FINISHED_PHASES

_FINISHED_STATES = {
    "Succeeded": TrialState.COMPLETE,
    "Failed": TrialState.FAIL,
    "Pruned": TrialState.PRUNED,
}


def optuna_state(phase: str, objective: float | None) -> TrialState:
    """The one rule: finished phases map to their Optuna state, anything else runs; a
    success without a finite objective is a failure."""
    state = _FINISHED_STATES.get(phase, TrialState.RUNNING)
    if state == TrialState.COMPLETE and (objective is None or not math.isfinite(objective)):
        return TrialState.FAIL
    return state


@dataclass(frozen=True)
class TrialRecord:
    """What Optuna needs to know about one Trial resource."""

    number: int
    parameters: Mapping[str, Any]
    phase: str = "Pending"
    objective: float | None = None
    intermediate: tuple[tuple[int, float], ...] = ()
    # several objectives: every objective's value (None unless all are known and finite)
    values: tuple[float, ...] | None = None

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def state(self) -> TrialState:
        return optuna_state(self.phase, self.objective)

    @classmethod
    def from_trial(
        cls, obj: Mapping[str, Any], goals: Sequence[Objective] | None = None
    ) -> TrialRecord:
        """A Trial object (as the API returns it) -> TrialRecord.

        With several ``goals`` the record carries every objective's value; a success
        missing one of them (or with one not finite) has no objective, so it counts as
        failed, by the same rule as a success without its single objective.
        """
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        objective = status.get("objective")
        intermediate = tuple(
            (int(iv["step"]), float(iv["value"]))
            for iv in status.get("intermediate") or ()
            if iv.get("value") is not None
        )
        values: tuple[float, ...] | None = None
        if goals is not None and len(goals) > 1:
            found = objectives.values(obj, goals)
            values = tuple(found) if found is not None else None
            objective = values[0] if values is not None else None
        return cls(
            number=int(spec.get("number", 0)),
            parameters=dict(spec.get("parameters") or {}),
            phase=status.get("phase") or "Pending",
            objective=float(objective) if objective is not None else None,
            intermediate=intermediate,
            values=values,
        )


def make_pruner(config: Pruner, max_resource: int) -> optuna.pruners.BasePruner:
    """The Experiment's pruner; ``max_resource`` (the epochs) never below ``minResource``."""
    if config.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=config.startupTrials, n_warmup_steps=config.warmupSteps
        )
    if config.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.minResource,
            max_resource=max(max_resource, config.minResource),
            reduction_factor=config.reductionFactor,
        )
    return optuna.pruners.NopPruner()
