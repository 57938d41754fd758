"""k-fold cross-validation: one training per fold, judged by the mean over the folds.

Every fold trains a fresh model (same seed, same hyperparameters) on the other folds'
rows. The objective is the mean of the folds' best-epoch objectives, reported with its
standard deviation; the exported model is the fold model with the best objective (its
standardization comes from that fold's training rows). Retraining on all rows would
leave nothing to validate the exported model on, and no early-stopping signal.

Pruning sees the folds one after another as one run of ``folds x epochs`` steps: fold
``k``'s epoch ``e`` is reported as step ``k * epochs + e``. Every Trial of an Experiment
uses the same folds, so a step compares the same fold at the same epoch across Trials,
and a Trial weak on its first fold stops before training the others.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from thunderbolt.trainer.data import Dataset
from thunderbolt.trainer.loop import Outcome


def step_of(fold: int, epoch: int, epochs: int) -> int:
    """The report step of ``epoch`` (1-based) in ``fold`` (0-based)."""
    return fold * epochs + epoch


@dataclasses.dataclass
class CrossValidation:
    best: Outcome  # the fold model that is exported
    best_fold: int
    objectives: list[float]  # per fold, in fold order (the folds that ran)
    mean: float
    std: float
    metrics: dict[str, float]  # per metric, the mean over folds
    pruned: bool


def summarize(outcomes: list[Outcome], maximize: bool) -> CrossValidation:
    """Mean and (population) standard deviation of the folds' objectives; best fold."""
    objectives = [o.objective for o in outcomes]
    mean = sum(objectives) / len(objectives)
    std = math.sqrt(sum((v - mean) ** 2 for v in objectives) / len(objectives))
    pick = max if maximize else min
    best_fold = objectives.index(pick(objectives))
    names = set.intersection(*(set(o.metrics) for o in outcomes))
    metrics = {n: sum(o.metrics[n] for o in outcomes) / len(outcomes) for n in sorted(names)}
    return CrossValidation(
        best=outcomes[best_fold],
        best_fold=best_fold,
        objectives=objectives,
        mean=mean,
        std=std,
        metrics=metrics,
        pruned=any(o.pruned for o in outcomes),
    )


def run_folds(
    folds: list[Dataset],
    epochs: int,
    maximize: bool,
    fit: Callable[[int, Dataset, int], Outcome],
    say: Callable[[str], None],
) -> CrossValidation:
    """``fit(fold, data, step_offset)`` per fold, in order; stops at a pruned fold."""
    outcomes: list[Outcome] = []
    for k, data in enumerate(folds):
        say(f"fold {k + 1}/{len(folds)}")
        outcome = fit(k, data, step_of(k, 0, epochs))
        outcomes.append(outcome)
        say(f"fold {k + 1}/{len(folds)}: objective {outcome.objective:.4f}")
        if outcome.pruned:
            break
    return summarize(outcomes, maximize)
