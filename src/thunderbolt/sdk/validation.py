"""Data and model validation for your own training loop, with the SDK's errors and
results (``thunderbolt.validation`` does the work; this adds ``DatasetError`` and
the Trial's artifact and ``status.validation``).

    from thunderbolt.sdk import validation

    report = validation.check_dataset(x_train, y_train, x_val, y_val)  # DatasetError if severe
    probe = validation.TrainingProbe(net, optimizer)                  # needs torch
    for epoch ...:
        ...                                                           # sampled on step()
        probe.end_epoch(train_loss)
    report = validation.check_training(probe, x_val, y_val, dataset=report)
    trial.record_validation(report)        # validation.json (+ MLflow), status.validation
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from thunderbolt.sdk.errors import DatasetError
from thunderbolt.validation import (
    DatasetOptions,
    ModelThresholds,
    ValidationReport,
    check_model,
    refine_label_noise,
)
from thunderbolt.validation import check_dataset as _check_dataset

if TYPE_CHECKING:
    from thunderbolt.validation.probe import TrainingProbe

__all__ = [
    "DatasetOptions",
    "ModelThresholds",
    "TrainingProbe",
    "ValidationReport",
    "check_dataset",
    "check_training",
    "raise_for_failures",
]


def __getattr__(name: str) -> Any:
    if name == "TrainingProbe":  # torch is imported only when the probe is asked for
        from thunderbolt.validation.probe import TrainingProbe

        return TrainingProbe
    raise AttributeError(name)


def raise_for_failures(report: ValidationReport) -> None:
    """``DatasetError`` naming the failing findings (with them in ``.findings``)."""
    failures = [f for f in report.failures if f.kind not in _MODEL_KINDS]
    if failures:
        text = "; ".join(f"{f.kind}: {f.message}" for f in failures)
        raise DatasetError(f"dataset checks failed: {text}", findings=failures)


_MODEL_KINDS = frozenset(
    {"collapse", "dead_units", "vanishing_gradients", "exploding_gradients", "diverging_loss"}
)


def check_dataset(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, raise_on_fail: bool = True,
                  **kwargs: Any) -> ValidationReport:  # fmt: skip
    """``thunderbolt.validation.check_dataset``; severe findings raise ``DatasetError``
    unless ``raise_on_fail`` is False."""
    report = _check_dataset(x_train, y_train, x_val, y_val, **kwargs)
    if raise_on_fail:
        raise_for_failures(report)
    return report


def check_training(probe: Any, x_val: Any, y_val: np.ndarray, *,
                   task: str = "classification", num_classes: int | None = None,
                   dataset: ValidationReport | None = None, x_train: Any = None,
                   y_train: np.ndarray | None = None,
                   thresholds: ModelThresholds | None = None,
                   params: dict[str, Any] | None = None) -> ValidationReport:  # fmt: skip
    """The model dimensions from a ``TrainingProbe`` after training, merged with the
    dataset report; with ``x_train``/``y_train`` the label-noise candidates are re-ranked
    with the model's confidence and the per-row training losses."""
    majority = None
    if task == "classification" and y_train is not None and len(y_train):
        majority = int(np.bincount(np.asarray(y_train, dtype=np.int64)).argmax())
    evidence = probe.evidence(x_val, y_val, task=task, num_classes=num_classes,
                              majority_class=majority)  # fmt: skip
    model = check_model(evidence, thresholds, params=params)
    if dataset is None:
        return model
    if task == "classification" and x_train is not None and y_train is not None:
        outputs, _rep, _dead = probe.evaluate(x_train)
        z = np.nan_to_num(outputs.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        z -= z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        own = prob[np.arange(len(y_train)), np.asarray(y_train, dtype=np.int64)]
        dataset = refine_label_noise(dataset, own, probe.loss_rank())
    return dataset.merge(model, params)
