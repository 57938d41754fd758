from __future__ import annotations

import http.server
import threading

import numpy as np
import pandas as pd
import pytest

from thunderbolt.api.trainer_config import DatasetConfig
from thunderbolt.sdk.errors import DatasetError
from thunderbolt.trainer import friedman
from thunderbolt.trainer.data import load


def _csv(tmp_path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path.as_uri()


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"f1": rng.normal(size=n), "f2": rng.normal(5, 2, size=n), "label": rng.integers(0, 2, n)}
    )


def test_builtin_iris_has_features_labels_and_a_seeded_split():
    ds = load(DatasetConfig(uri="builtin://iris"), "classification", seed=3)
    assert ds.num_features == 4 and ds.class_labels == ["setosa", "versicolor", "virginica"]
    assert len(ds.x_train) == 120 and len(ds.x_val) == 30
    again = load(DatasetConfig(uri="builtin://iris"), "classification", seed=3)
    other = load(DatasetConfig(uri="builtin://iris"), "classification", seed=4)
    np.testing.assert_array_equal(ds.x_val, again.x_val)
    assert not np.array_equal(ds.x_val, other.x_val)


def test_standardization_comes_from_the_training_split():
    ds = load(DatasetConfig(uri="builtin://wine"), "classification", seed=0)
    np.testing.assert_allclose(ds.mean, ds.x_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.std, ds.x_train.std(axis=0), rtol=1e-4)


def test_csv_parquet_and_json_lines_load_the_same_table(tmp_path):
    frame = _frame()
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    loaded = [
        load(DatasetConfig(uri=uri, target="label"), "classification", seed=0)
        for uri in (
            _csv(tmp_path, frame),
            (tmp_path / "d.parquet").as_uri(),
            str(tmp_path / "d.jsonl"),
        )
    ]
    for ds in loaded[1:]:
        np.testing.assert_allclose(ds.x_train, loaded[0].x_train, rtol=1e-6)
        assert ds.feature_names == ["f1", "f2"]


def test_json_array_of_records_is_read_too(tmp_path):
    frame = _frame()
    frame.to_json(tmp_path / "d.json", orient="records")
    ds = load(DatasetConfig(uri=str(tmp_path / "d.json"), target="label"), "classification", 0)
    assert ds.num_features == 2 and len(ds.x_train) == 32


def test_explicit_format_overrides_a_missing_extension(tmp_path):
    path = tmp_path / "table.data"
    _frame().to_csv(path, index=False)
    with pytest.raises(DatasetError, match="format"):
        load(DatasetConfig(uri=path.as_uri(), target="label"), "classification", seed=0)
    ds = load(DatasetConfig(uri=path.as_uri(), target="label", format="csv"), "classification", 0)
    assert ds.num_features == 2


def test_missing_target_column_is_named(tmp_path):
    uri = _csv(tmp_path, _frame())
    with pytest.raises(DatasetError, match="'species'.*columns: f1, f2, label"):
        load(DatasetConfig(uri=uri, target="species"), "classification", seed=0)


def test_non_numeric_feature_names_column_and_row(tmp_path):
    frame = _frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[7, "f2"] = "seven"
    with pytest.raises(DatasetError, match=r"column 'f2' is not numeric \(row 7: 'seven'\)"):
        load(DatasetConfig(uri=_csv(tmp_path, frame), target="label"), "classification", 0)


def test_nan_names_column_and_row(tmp_path):
    frame = _frame()
    frame.loc[12, "f1"] = np.nan
    with pytest.raises(DatasetError, match=r"column 'f1' has a missing value \(NaN\) in row 12"):
        load(DatasetConfig(uri=_csv(tmp_path, frame), target="label"), "classification", 0)


def test_empty_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load(DatasetConfig(uri=path.as_uri(), target="label"), "classification", 0)


def test_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("f1,f2,label\n")
    with pytest.raises(DatasetError, match="no rows"):
        load(DatasetConfig(uri=path.as_uri(), target="label"), "classification", 0)


def test_single_class_target_cannot_train_a_classifier(tmp_path):
    frame = _frame()
    frame["label"] = 1
    with pytest.raises(DatasetError, match="'label' has 1 class"):
        load(DatasetConfig(uri=_csv(tmp_path, frame), target="label"), "classification", 0)


def test_missing_file_names_the_uri(tmp_path):
    uri = (tmp_path / "nope.csv").as_uri()
    with pytest.raises(DatasetError, match="nope.csv"):
        load(DatasetConfig(uri=uri, target="label"), "classification", 0)


def test_builtin_friedman1_is_generated_with_irrelevant_columns_and_known_noise():
    ds = load(DatasetConfig(uri="builtin://friedman1"), "regression", seed=3)
    assert ds.feature_names == [f"x{i}" for i in range(1, 11)] and ds.class_labels is None
    assert len(ds.x_train) == 800 and len(ds.x_val) == 200
    again = load(DatasetConfig(uri="builtin://friedman1"), "regression", seed=3)
    np.testing.assert_array_equal(ds.x_val, again.x_val)  # a fixed data seed
    np.testing.assert_array_equal(ds.y_val, again.y_val)
    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    assert x.min() >= 0.0 and x.max() <= 1.0
    # the target is Friedman #1 plus unit noise: the residual is the noise
    residual = y - friedman.clean_target(x)
    assert abs(residual.mean()) < 0.1 and 0.9 < residual.std() < 1.1
    assert y.std() > 4.0  # so the best R² (1 - 1/var) is about 0.96, not 1
    corr = [abs(np.corrcoef(x[:, j], y)[0, 1]) for j in range(10)]
    assert corr[3] > 0.4  # 10 x4: the strongest single term
    assert max(corr[5:]) < 0.1  # x6..x10 do not enter the formula


def test_friedman1_generator_refuses_fewer_than_five_features():
    with pytest.raises(ValueError, match="5 features"):
        friedman.generate(features=4)


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(DatasetError, match="iris, wine"):
        load(DatasetConfig(uri="builtin://mnist"), "classification", 0)


def test_string_class_labels_are_kept_for_the_model(tmp_path):
    frame = _frame()
    frame["label"] = np.where(frame["label"] == 1, "spam", "ham")
    ds = load(DatasetConfig(uri=_csv(tmp_path, frame), target="label"), "classification", 0)
    assert ds.class_labels == ["ham", "spam"]
    assert set(np.unique(ds.y_train)) <= {0, 1}


def test_http_datasets_are_downloaded(tmp_path):
    _csv(tmp_path, _frame(), "served.csv")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/served.csv"
        ds = load(DatasetConfig(uri=uri, target="label"), "classification", 0)
        assert ds.num_features == 2 and len(ds.x_train) == 32
    finally:
        server.shutdown()
