"""Dataset checks on synthetic cases with known ground truth: the right finding, the
right rows and columns, and nothing on healthy controls."""

from __future__ import annotations

import numpy as np
import pytest

from thunderbolt.validation import check_dataset, synthetic
from thunderbolt.validation.dataset import DatasetOptions, DatasetProfiler, check_arrays

DATA_KINDS = [k for k in synthetic.KINDS if k not in synthetic.MODEL_KINDS]


def _report(case: synthetic.Case):  # noqa: ANN202
    return check_dataset(case.x_train, case.y_train, case.x_val, case.y_val,
                         feature_names=case.feature_names)  # fmt: skip


@pytest.mark.parametrize("base", ["iris", "blobs", "trajectories"])
@pytest.mark.parametrize("kind", DATA_KINDS + ["healthy"])
def test_each_kind_raises_its_finding(kind: str, base: str) -> None:
    case = synthetic.make_case(kind, base, seed=0)
    report = _report(case)
    if case.expected is None:
        assert report.findings == [], report.render()
        assert report.verdict == "pass"
    else:
        assert report.primary == case.expected, report.render()


def test_label_noise_localizes_the_flipped_rows() -> None:
    case = synthetic.make_case("label_noise_10", "blobs", seed=1)
    finding = _report(case).finding("label_noise")
    assert finding is not None
    k = len(case.noisy_rows)
    precision = len(set(finding.row_indices[:k]) & set(case.noisy_rows.tolist())) / k
    assert precision >= 0.8
    assert "nearest neighbours" in finding.rows[0].explanation
    assert 0.05 <= finding.score <= 0.15  # the estimated noise rate


def test_leakage_names_the_copied_rows_and_fails_when_large() -> None:
    case = synthetic.make_case("split_leakage", "iris", seed=0)
    finding = _report(case).finding("split_leakage")
    assert finding is not None
    assert set(finding.row_indices) == set(case.noisy_rows.tolist())
    expected = "fail" if finding.score >= 0.2 else "warn"
    assert finding.severity == expected


def test_conflicting_duplicates_point_at_the_original() -> None:
    case = synthetic.make_case("conflicting_duplicates", "blobs", seed=0)
    finding = _report(case).finding("duplicate_rows")
    assert finding is not None
    assert set(finding.row_indices) == set(case.noisy_rows.tolist())
    assert "different label" in finding.rows[0].explanation
    assert finding.details["conflicting"] == len(case.noisy_rows)


def test_shift_and_constant_name_the_column() -> None:
    shifted = synthetic.make_case("shifted_feature", "blobs", seed=0)
    finding = _report(shifted).finding("feature_shift")
    assert finding is not None and finding.columns[0] == shifted.shifted
    assert next(iter(finding.importance)) == shifted.shifted
    constant = synthetic.make_case("constant_feature", "iris", seed=0)
    finding = _report(constant).finding("constant_feature")
    assert finding is not None and finding.columns == [constant.shifted]


def test_missing_values_and_near_duplicate_columns() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    x[:, 4] = 2 * x[:, 1] + 1e-6 * rng.normal(size=400)
    x[7, 2] = np.nan
    y = (x[:, 0] > 0).astype(int)
    report = check_dataset(x[:300], y[:300], x[300:], y[300:],
                           feature_names=["a", "b", "c", "d", "e"])  # fmt: skip
    missing = report.finding("missing_values")
    assert missing is not None and missing.severity == "fail" and missing.columns == ["c"]
    pair = report.finding("near_duplicate_columns")
    assert pair is not None and pair.details["pairs"][0][:2] == ["b", "e"]


def test_streaming_in_chunks_equals_one_pass() -> None:
    case = synthetic.make_case("conflicting_duplicates", "digits", seed=0)
    one = check_arrays(case.x_train, case.y_train, case.x_val, case.y_val, chunk_rows=10**6)
    many = check_arrays(case.x_train, case.y_train, case.x_val, case.y_val, chunk_rows=97)
    assert [f.as_dict() for f in one.findings()] == [f.as_dict() for f in many.findings()]


def test_sample_bounds_memory_and_still_finds_noise() -> None:
    case = synthetic.make_case("label_noise_20", "blobs", seed=0)
    prof = check_arrays(case.x_train, case.y_train, case.x_val, case.y_val,
                        options=DatasetOptions(sample_rows=200))  # fmt: skip
    assert len(prof.samples["train"].rows) == 200
    assert not prof.covers_training()
    assert "label_noise" in {f.kind for f in prof.findings()}


def test_regression_targets_skip_label_checks() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    prof = DatasetProfiler(["a", "b", "c"], "regression")
    prof.add(x[:240], y[:240], "train")
    prof.add(x[240:], y[240:], "val")
    assert prof.findings() == []


def test_a_table_without_any_varying_column_fails() -> None:
    y = np.arange(120) % 2
    x = np.column_stack([np.zeros(120), np.full(120, 3.0)])
    report = check_dataset(x[:96], y[:96], x[96:], y[96:], feature_names=["a", "b"])
    constant = report.finding("constant_feature")
    assert constant is not None and constant.severity == "fail"
    assert report.verdict == "fail"
