"""Validation metrics, named as Experiments refer to them (``val_accuracy``, ``val_r2``…)."""

from __future__ import annotations

import numpy as np

CLASSIFICATION_METRICS = ("val_loss", "val_accuracy", "val_f1")
REGRESSION_METRICS = ("val_loss", "val_mse", "val_mae", "val_r2")


def classification(y_true: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (every class counts the same, even rare ones)."""
    accuracy = float((y_true == predicted).mean())
    f1s = []
    for c in range(num_classes):
        tp = float(((predicted == c) & (y_true == c)).sum())
        fp = float(((predicted == c) & (y_true != c)).sum())
        fn = float(((predicted != c) & (y_true == c)).sum())
        if tp + fp + fn == 0:
            continue  # class absent from this split and never predicted
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"val_accuracy": accuracy, "val_f1": float(np.mean(f1s)) if f1s else 0.0}


def regression(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MSE, MAE and R² in the target's own units."""
    y_true = y_true.astype(np.float64)
    predicted = predicted.astype(np.float64)
    err = predicted - y_true
    mse = float((err**2).mean())
    variance = float(((y_true - y_true.mean()) ** 2).mean())
    r2 = 1.0 - mse / variance if variance > 0 else 0.0
    return {"val_mse": mse, "val_mae": float(np.abs(err).mean()), "val_r2": r2}


def names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
