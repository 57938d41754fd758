"""Tabular datasets by URI, validated, split and standardized.

Schemes pick the source as MLflow picks its stores: ``builtin://`` (scikit-learn's
bundled sets; ``builtin://friedman1`` and ``builtin://trajectories``, generated in code;
no download), ``file://`` or a bare path, ``http(s)://``, ``s3://``. Tables give rows of features; trajectories
give sequences ([steps, channels] per sample); ``as_images`` reshapes square tables
(digits' 64 pixels) into [1, 8, 8] images for the CNN.
Every problem a user can fix in their data raises ``DatasetError`` naming the column
or the row, because "training failed" sends them reading tracebacks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pathlib
import urllib.request
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from thunderbolt.api.trainer_config import DatasetConfig
from thunderbolt.artifacts import ArtifactError, store_for
from thunderbolt.sdk.errors import DatasetError

BUILTIN = ("iris", "wine", "breast_cancer", "digits", "diabetes", "friedman1", "trajectories")
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
HTTP_TIMEOUT_S = 60


@dataclasses.dataclass(frozen=True)
class SplitIdentity:
    """Which rows validate: two Trials are comparable when these are equal.

    ``validation_hash`` covers every fold's validation rows (one fold for a holdout
    split), so a changed dataset size, fraction, fold count or seed all show.
    """

    seed: int
    validation_hash: str
    folds: int = 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed, "validationHash": self.validation_hash}
        if self.folds > 1:
            out["folds"] = self.folds
        return out


@dataclasses.dataclass
class Dataset:
    """Train/validation arrays (raw features) plus what the exported model must record."""

    task: str
    feature_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray  # per-feature, from the training split
    std: np.ndarray
    class_labels: list[str] | None = None  # classification: index -> label
    target_mean: float = 0.0  # regression: the model predicts standardized targets
    target_std: float = 1.0
    split: SplitIdentity | None = None  # which rows validate (the same for every Trial)
    # one sample's shape when it is not a row of features: [steps, channels], [1, h, w]
    input_shape: tuple[int, ...] | None = None
    # each split's row numbers in the source table (validation findings name them)
    train_rows: np.ndarray | None = None
    val_rows: np.ndarray | None = None

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.input_shape or (self.num_features,)

    @property
    def num_outputs(self) -> int:
        return len(self.class_labels) if self.class_labels is not None else 1


def load(
    config: DatasetConfig, task: str, seed: int, *, s3_endpoint_url: str | None = None
) -> Dataset:
    """The holdout split drawn by ``seed`` (the Experiment's split seed)."""
    if config.uri == "builtin://trajectories":
        return trajectories(config, task, seed)
    frame, labels = read_frame(config, s3_endpoint_url=s3_endpoint_url)
    return prepare(frame, config, task, seed, builtin_labels=labels)


def load_folds(
    config: DatasetConfig,
    task: str,
    seed: int,
    folds: int,
    *,
    s3_endpoint_url: str | None = None,
) -> list[Dataset]:
    """One Dataset per fold of a seeded ``folds``-fold split (read once)."""
    if config.uri == "builtin://trajectories":
        return [trajectories(config, task, seed, folds=folds, fold=k) for k in range(folds)]
    frame, labels = read_frame(config, s3_endpoint_url=s3_endpoint_url)
    return [
        prepare(frame, config, task, seed, builtin_labels=labels, folds=folds, fold=k)
        for k in range(folds)
    ]


def read_frame(
    config: DatasetConfig, *, s3_endpoint_url: str | None = None
) -> tuple[pd.DataFrame, list[str] | None]:
    """The raw table, plus class names when a built-in dataset has them."""
    uri = config.uri
    parsed = urlparse(uri)
    if parsed.scheme == "builtin":
        return _builtin(parsed.netloc or parsed.path.strip("/"), config.target)
    data = _fetch(uri, s3_endpoint_url)
    if not data.strip():
        raise DatasetError(f"dataset {uri} is empty")
    fmt = config.format or _EXTENSIONS.get(pathlib.PurePosixPath(parsed.path).suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"cannot tell the format of {uri} from its extension; set dataset.format "
            "to csv, parquet or json"
        )
    try:
        if fmt == "csv":
            frame = pd.read_csv(io.BytesIO(data))
        elif fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            # JSON lines, or one JSON array of records
            frame = pd.read_json(io.BytesIO(data), lines=not data.lstrip().startswith(b"["))
    except Exception as exc:  # pandas/pyarrow raise many types for malformed input
        raise DatasetError(f"cannot parse {uri} as {fmt}: {exc}") from exc
    return frame, None


def _builtin(name: str, target: str) -> tuple[pd.DataFrame, list[str] | None]:
    if name not in BUILTIN or name == "trajectories":
        raise DatasetError(f"unknown builtin dataset {name!r}; choose from {', '.join(BUILTIN)}")
    if name == "friedman1":  # generated in code (regression with headroom)
        from thunderbolt.trainer import friedman

        return friedman.frame(target), None
    from sklearn import datasets

    bunch: Any = getattr(datasets, f"load_{name}")(as_frame=True)
    frame: pd.DataFrame = bunch.frame.rename(columns={"target": target})
    names = getattr(bunch, "target_names", None)
    labels = [str(n) for n in names] if names is not None and name != "diabetes" else None
    return frame, labels


def _fetch(uri: str, s3_endpoint_url: str | None) -> bytes:
    scheme = urlparse(uri).scheme
    try:
        if scheme in ("http", "https"):
            with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_S) as response:
                body: bytes = response.read()
                return body
        return store_for(uri, s3_endpoint_url=s3_endpoint_url).get_bytes(uri)
    except (OSError, ArtifactError) as exc:
        raise DatasetError(f"cannot read dataset {uri}: {exc}") from exc


def prepare(
    frame: pd.DataFrame,
    config: DatasetConfig,
    task: str,
    seed: int,
    *,
    builtin_labels: list[str] | None = None,
    folds: int = 1,
    fold: int = 0,
) -> Dataset:
    """Validate, encode the target, split deterministically and fit standardization.

    ``folds`` > 1: fold ``fold`` of a k-fold split validates, the others train.
    """
    target = config.target
    if frame.shape[0] == 0:
        raise DatasetError(f"dataset {config.uri} has no rows")
    if target not in frame.columns:
        raise DatasetError(
            f"target column {target!r} not found in {config.uri}; columns: "
            + ", ".join(map(str, frame.columns))
        )
    features = [c for c in frame.columns if c != target]
    if not features:
        raise DatasetError(f"dataset {config.uri} has no feature columns besides {target!r}")
    for column in features:
        _check_numeric(frame, column)
    _check_missing(frame, [*features, target])
    x = frame[features].to_numpy(dtype=np.float64)
    labels: list[str] | None = None
    if task == "classification":
        y, labels = _encode_classes(frame[target], builtin_labels)
    else:
        _check_numeric(frame, target)
        y = frame[target].to_numpy(dtype=np.float64)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise DatasetError(f"column {features[col]!r} has an infinite value in row {row}")
    strata = y if task == "classification" else None
    train_idx, val_idx, identity = _split_rows(len(frame), config, seed, folds, fold, strata)
    x_train, x_val = x[train_idx], x[val_idx]
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant column stays constant instead of dividing by 0
    ds = Dataset(
        task=task,
        feature_names=[str(c) for c in features],
        x_train=x_train.astype(np.float32),
        y_train=y[train_idx],
        x_val=x_val.astype(np.float32),
        y_val=y[val_idx],
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        class_labels=labels,
        split=identity,
        train_rows=train_idx,
        val_rows=val_idx,
    )
    if task == "regression":
        ds.target_mean = float(ds.y_train.mean())
        ds.target_std = float(ds.y_train.std()) or 1.0
        ds.y_train = ds.y_train.astype(np.float32)
        ds.y_val = ds.y_val.astype(np.float32)
    return ds


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation: the same seed gives the same split on every machine."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"validationFraction must be in (0, 1), got {fraction}")
    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise DatasetError(
            f"{n} rows cannot be split into train and validation with fraction {fraction}"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fold_indices(
    n: int, folds: int, seed: int, labels: np.ndarray | None = None
) -> list[np.ndarray]:
    """``folds`` disjoint validation index sets covering all rows (sizes differ by <= 1).

    With ``labels`` (classification) the folds are stratified: each class's rows, in a
    seeded order, are dealt round-robin over the folds (continuing from where the last
    class stopped), so every fold holds each class within one row of its share and a
    rare class is never missing from a fold's validation rows by chance.
    """
    if folds < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {folds}")
    if n < 2 * folds:
        raise DatasetError(f"{n} rows are too few for {folds}-fold cross-validation")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if labels is not None:
        # classes in a fixed order, each class's rows in the seeded order
        order = np.concatenate([order[labels[order] == c] for c in np.unique(labels)])
        return [np.sort(order[k::folds]) for k in range(folds)]
    return [np.sort(part) for part in np.array_split(order, folds)]


def validation_hash(validation: list[np.ndarray], n: int) -> str:
    """A short digest of the validation rows of every fold (and the table's size)."""
    digest = hashlib.sha256(f"rows={n};folds={len(validation)}".encode())
    for part in validation:
        digest.update(b"|")
        digest.update(np.asarray(part, dtype="<i8").tobytes())
    return digest.hexdigest()[:16]


def _check_numeric(frame: pd.DataFrame, column: str) -> None:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna() & series.notna()
    row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
    raise DatasetError(
        f"column {column!r} is not numeric (row {row}: {series.iloc[row]!r}); "
        "encode it as numbers before training"
    )


def _check_missing(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = frame[columns].isna().to_numpy()
    if missing.any():
        row, col = np.argwhere(missing)[0]
        total = int(missing.sum())
        raise DatasetError(
            f"column {columns[col]!r} has a missing value (NaN) in row {row} "
            f"({total} missing in all); fill or drop them"
        )


def _encode_classes(
    series: pd.Series, builtin_labels: list[str] | None
) -> tuple[np.ndarray, list[str]]:
    values = series.to_numpy()
    uniques = np.unique(values)
    if len(uniques) < 2:
        raise DatasetError(
            f"target column {series.name!r} has {len(uniques)} class; classification needs >= 2"
        )
    codes = np.searchsorted(uniques, values).astype(np.int64)
    if builtin_labels is not None and len(builtin_labels) == len(uniques):
        labels = builtin_labels
    else:
        labels = [_label(v) for v in uniques]
    return codes, labels


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def trajectories(config: DatasetConfig, task: str, seed: int, *, folds: int = 1,
                 fold: int = 0) -> Dataset:  # fmt: skip
    """``builtin://trajectories``: motion kind (classification) or mean speed (regression),
    split as tables are (holdout or fold ``fold`` of ``folds``)."""
    from thunderbolt.trainer import trajectories as synthetic

    data = synthetic.generate()
    x = data.positions
    strata = data.kind if task == "classification" else None
    train_idx, val_idx, identity = _split_rows(len(x), config, seed, folds, fold, strata)
    flat = x[train_idx].reshape(-1, x.shape[-1]).astype(np.float64)
    std = flat.std(axis=0)
    std[std < 1e-12] = 1.0
    ds = Dataset(
        task=task,
        feature_names=list(synthetic.CHANNELS),
        x_train=x[train_idx],
        y_train=data.kind[train_idx] if task == "classification" else data.speed[train_idx],
        x_val=x[val_idx],
        y_val=data.kind[val_idx] if task == "classification" else data.speed[val_idx],
        mean=flat.mean(axis=0).astype(np.float32),  # per channel, over samples and steps
        std=std.astype(np.float32),
        class_labels=list(synthetic.KINDS) if task == "classification" else None,
        split=identity,
        input_shape=tuple(x.shape[1:]),
        train_rows=train_idx,
        val_rows=val_idx,
    )
    if task == "regression":
        ds.target_mean = float(ds.y_train.mean())
        ds.target_std = float(ds.y_train.std()) or 1.0
    return ds


def as_images(data: Dataset) -> Dataset:
    """A table of h*h pixel columns as [1, h, h] images (per-pixel standardization kept)."""
    if data.input_shape is not None and len(data.input_shape) == 3:
        return data
    if data.input_shape is not None:
        raise DatasetError(
            f"samples of shape {list(data.input_shape)} are not images; the cnn model takes "
            "tables whose columns are the pixels of a square image"
        )
    side = int(round(data.num_features**0.5))
    if side * side != data.num_features or side < 2:
        raise DatasetError(
            f"{data.num_features} feature columns are not the pixels of a square image; "
            "the cnn model needs h*h columns (digits: 64 = 8x8)"
        )
    shape = (1, side, side)
    return dataclasses.replace(
        data,
        x_train=data.x_train.reshape(-1, *shape),
        x_val=data.x_val.reshape(-1, *shape),
        mean=data.mean.reshape(shape),
        std=data.std.reshape(shape),
        input_shape=shape,
    )


def _split_rows(
    n: int,
    config: DatasetConfig,
    seed: int,
    folds: int,
    fold: int,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, SplitIdentity]:
    """Training and validation rows and the split's identity: fold ``fold`` of ``folds``
    (stratified by ``labels`` for classification), or a holdout of
    ``validationFraction``; the same for every dataset kind."""
    if folds > 1:
        assignment = fold_indices(n, folds, seed, labels)
        val_idx = assignment[fold]
        train_idx = np.sort(np.concatenate([a for k, a in enumerate(assignment) if k != fold]))
        return train_idx, val_idx, SplitIdentity(seed, validation_hash(assignment, n), folds)
    train_idx, val_idx = split_indices(n, config.validationFraction, seed)
    return train_idx, val_idx, SplitIdentity(seed, validation_hash([val_idx], n))
