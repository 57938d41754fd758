"""Data and model validation: what is wrong with a training run, where, and what to do.

Pure numpy (dataset checks, statistics, reports) plus an optional torch probe; no
Kubernetes. The built-in trainer runs it on every Trial, your own loop can too
(``thunderbolt.sdk.validation`` wraps it with the SDK's errors and results), and
``thunderbolt validate --dataset`` runs the dataset checks on a local file.

    report = check_dataset(x_train, y_train, x_val, y_val, feature_names=names)
    probe = TrainingProbe(net, optimizer)          # torch only: thunderbolt.validation.probe
    ... train ...
    report = report.merge(check_model(probe.evidence(x_val, y_val)))
    print(report.render())
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from thunderbolt.validation.dataset import (
    DatasetOptions,
    DatasetProfiler,
    DatasetThresholds,
    check_arrays,
)
from thunderbolt.validation.findings import Dimension, Finding, Recommendation, RowFlag
from thunderbolt.validation.model import ModelEvidence, ModelThresholds
from thunderbolt.validation.model import dimensions as model_dimensions
from thunderbolt.validation.model import findings as model_findings
from thunderbolt.validation.recommend import experiment_recommendations, search_range_findings
from thunderbolt.validation.report import ValidationReport

__all__ = [
    "DatasetOptions",
    "DatasetProfiler",
    "DatasetThresholds",
    "Dimension",
    "Finding",
    "ModelEvidence",
    "ModelThresholds",
    "Recommendation",
    "RowFlag",
    "ValidationReport",
    "check_dataset",
    "check_model",
    "dataset_report",
    "experiment_recommendations",
    "refine_label_noise",
    "search_range_findings",
]


def dataset_report(profiler: DatasetProfiler, *, seconds: float | None = None,
                   params: dict[str, Any] | None = None) -> ValidationReport:  # fmt: skip
    context: dict[str, Any] = profiler.context()
    if seconds is not None:
        context["datasetSeconds"] = round(seconds, 3)
    return ValidationReport.build(profiler.findings(), params=params, context=context)


def check_dataset(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, task: str = "classification",
                  feature_names: list[str] | None = None,
                  class_labels: list[str] | None = None,
                  options: DatasetOptions | None = None,
                  train_rows: np.ndarray | None = None,
                  val_rows: np.ndarray | None = None) -> ValidationReport:  # fmt: skip
    """Every dataset check on in-memory splits. Samples of any shape are flattened to
    rows (a [steps, channels] sequence is steps*channels columns)."""
    began = time.perf_counter()
    profiler = check_arrays(x_train, y_train, x_val, y_val, feature_names=feature_names,
                            task=task, options=options, class_labels=class_labels,
                            train_rows=train_rows, val_rows=val_rows)  # fmt: skip
    report = dataset_report(profiler, seconds=time.perf_counter() - began)
    report.profiler = profiler  # for refine_label_noise
    return report


def check_model(evidence: ModelEvidence, thresholds: ModelThresholds | None = None, *,
                params: dict[str, Any] | None = None) -> ValidationReport:  # fmt: skip
    dims = model_dimensions(evidence, thresholds)
    return ValidationReport.build(model_findings(dims), dims, params)


def refine_label_noise(report: ValidationReport, model_probability: np.ndarray | None,
                       loss_rank: np.ndarray | None = None) -> ValidationReport:  # fmt: skip
    """Re-rank the label-noise candidates of a dataset report with the trained model's
    probability of each training row's label (and its training-loss rank), when the
    report's sample held every training row in order."""
    profiler = report.profiler
    if not isinstance(profiler, DatasetProfiler) or not profiler.covers_training():
        return report
    if profiler.task != "classification" or not profiler.opt.label_noise:
        return report
    refined = profiler.label_noise(model_probability, loss_rank)
    others = [f for f in report.findings if f.kind != "label_noise"]
    out = ValidationReport.build(others + ([refined] if refined else []), report.dimensions,
                                 context=report.context)  # fmt: skip
    out.profiler = profiler
    return out
