"""Synthetic regression cases: each raises its own finding, with regression thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from thunderbolt.validation import (
    ModelEvidence,
    ModelThresholds,
    check_dataset,
    check_model,
    synthetic,
)


def _report(case: synthetic.Case):  # type: ignore[no-untyped-def]
    if case.needs_training:
        return synthetic.train_case(case)[0]
    return check_dataset(case.x_train, case.y_train, case.x_val, case.y_val,
                         task="regression", feature_names=case.feature_names)  # fmt: skip


@pytest.mark.parametrize("kind", synthetic.REGRESSION_KINDS)
def test_each_regression_kind_raises_its_finding(kind: str) -> None:
    case = synthetic.make_regression_case(kind, "diabetes", seed=0)
    assert case.task == "regression" and case.y_train.dtype.kind == "f"
    report = _report(case)
    if case.expected is None:
        assert report.finding("collapse") is None, report.render()
    else:
        assert report.primary == case.expected, report.render()


def test_target_noise_names_the_corrupted_rows() -> None:
    case = synthetic.make_regression_case("reg_target_noise", "friedman", seed=1)
    report = _report(case)
    finding = report.finding("label_noise")
    assert finding is not None
    k = len(case.noisy_rows)
    precision = len(set(finding.row_indices[:k]) & set(case.noisy_rows.tolist())) / k
    assert precision >= 0.9
    assert "typical gaps" in finding.rows[0].explanation
    # the model overfits the noise: worse than the mean is a warning, not a collapse
    assert report.finding("collapse") is None


def test_target_leakage_names_the_column_and_fails() -> None:
    case = synthetic.make_regression_case("reg_target_leakage", "friedman", seed=0)
    finding = _report(case).finding("target_leakage")
    assert finding is not None and finding.severity == "fail"
    assert finding.columns == [case.shifted]
    healthy = _report(synthetic.make_regression_case("reg_healthy", "friedman", seed=0))
    assert healthy.finding("target_leakage") is None


def test_shifted_feature_names_the_column() -> None:
    case = synthetic.make_regression_case("reg_shifted_feature", "friedman", seed=2)
    finding = _report(case).finding("feature_shift")
    assert finding is not None and finding.columns[0] == case.shifted


def test_regression_uses_its_own_thresholds() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    # a weak but real model: MSE 0.8 of the mean's (classification's 0.7 would warn)
    weak = 0.3 * y + rng.normal(0, 0.6, 400)
    report = check_model(ModelEvidence(outputs=weak, y_true=y, task="regression"))
    dims = {d.name: d for d in report.dimensions}
    assert 0.7 < dims["baseline_agreement"].score < 1.0
    assert dims["baseline_agreement"].status == "pass"
    assert (dims["baseline_agreement"].warn, dims["baseline_agreement"].fail) == (
        ModelThresholds().regression_mse_ratio
    )
    assert report.finding("collapse") is None, report.render()
