"""The built-in trainer's data and model validation (``thunderbolt.validation``):
dataset checks before training (severe findings fail the Trial as DatasetError), the
model's health dimensions after it, or after it failed (Diverged, Collapsed), so the
result says what went wrong, where, and what to change.

``checks`` in the trainer config (``trialTemplate.validation.checks``): ``cheap``
(default) samples gradients every 20 steps and runs nearest neighbours on up to 5,000
training rows; ``full`` samples every step, keeps every row's training loss (more
label-noise evidence) and runs neighbours on up to 50,000 rows; ``off`` skips all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from thunderbolt.api.trainer_config import TrainerConfig
from thunderbolt.sdk import validation
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer.data import Dataset
from thunderbolt.trainer.loop import Trainer
from thunderbolt.validation import DatasetOptions, ValidationReport


@dataclasses.dataclass(frozen=True)
class Level:
    sample_rows: int  # nearest neighbours and shift tests on at most this many rows
    probe_every: int  # gradient sampling period, in optimizer steps
    row_losses: bool  # per-row training losses (label-noise evidence), every batch


LEVELS = {"cheap": Level(sample_rows=5_000, probe_every=20, row_losses=False),
          "full": Level(sample_rows=50_000, probe_every=1, row_losses=True)}  # fmt: skip


def probe_settings(config: TrainerConfig) -> tuple[int, bool] | None:
    """(gradient sampling period, per-row losses) for the loop's probe; None: no probe."""
    level = LEVELS.get(config.checks)
    return (level.probe_every, level.row_losses) if level else None


def feature_names(data: Dataset) -> list[str]:
    """One name per flattened input column (sequences: ``x[3]`` is channel x at step 3)."""
    shape = data.sample_shape
    if len(shape) == 2 and len(data.feature_names) == shape[1]:
        return [f"{c}[{t}]" for t in range(shape[0]) for c in data.feature_names]
    if len(shape) == 3:
        return [f"pixel{i}" for i in range(int(np.prod(shape)))]
    return list(data.feature_names)


def check_data(config: TrainerConfig, data: Dataset, trial: Trial) -> ValidationReport | None:
    """Dataset checks on the (first) split; raises DatasetError on a severe finding."""
    level = LEVELS.get(config.checks)
    if level is None:
        return None
    report = validation.check_dataset(
        data.x_train, data.y_train, data.x_val, data.y_val,
        task=data.task, feature_names=feature_names(data), class_labels=data.class_labels,
        options=DatasetOptions(
            sample_rows=level.sample_rows, seed=config.seed,
            near_duplicates=data.input_shape is None,
            # raw positions of sequences are no neighbourhood for their labels (a track's
            # kind does not depend on where it starts or heads): no neighbour votes there
            label_noise=not (data.input_shape is not None and len(data.input_shape) == 2),
        ),
        train_rows=data.train_rows, val_rows=data.val_rows, raise_on_fail=False,
    )  # fmt: skip
    _say(trial, "dataset checks", report)
    if report.failures:
        trial.record_validation(report)
        validation.raise_for_failures(report)
    return report


def check_model(config: TrainerConfig, data: Dataset, trainer: Trainer,
                dataset: ValidationReport | None, trial: Trial, params: dict[str, Any], *,
                same_split: bool = True) -> ValidationReport | None:  # fmt: skip
    """The model's health on the validation set, merged with the dataset report, and
    recorded on the Trial (result, artifact). Never raises: it is advice.
    ``same_split``: the dataset report is of this split (label-noise candidates are then
    re-ranked with the model's confidence)."""
    probe = trainer.probe
    if probe is None:
        return None
    classes = data.task == "classification"
    refine = classes and same_split
    y_val = data.y_val if classes else _standardized(data.y_val, data)
    report = validation.check_training(
        probe, trainer.x_val, y_val, task=data.task,
        num_classes=data.num_outputs if classes else None, dataset=dataset,
        x_train=trainer.x_train if refine else None,
        y_train=data.y_train if classes else None, params=params,
    )  # fmt: skip
    probe.close()
    _say(trial, "validation", report)
    trial.record_validation(report)
    return report


def _standardized(y: np.ndarray, data: Dataset) -> np.ndarray:
    return ((np.asarray(y, dtype=np.float64) - data.target_mean) / data.target_std).astype(
        np.float32
    )


def _say(trial: Trial, what: str, report: ValidationReport) -> None:
    kinds = [f"{f.kind} ({f.severity})" for f in report.findings if f.severity != "info"]
    trial.emit(f"{what}: {report.verdict}" + (f": {', '.join(kinds)}" if kinds else ""))
    for rec in report.recommendations[:3]:
        trial.emit(f"  recommendation: {rec.text}")
