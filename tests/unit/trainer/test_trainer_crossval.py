"""The split identity, k-fold splits, and cross-validated training runs."""

from __future__ import annotations

import numpy as np
import pytest

from thunderbolt.api.trainer_config import DatasetConfig, TrainResult
from thunderbolt.sdk.errors import DatasetError
from thunderbolt.trainer import crossval
from thunderbolt.trainer.data import fold_indices, load, load_folds, validation_hash
from thunderbolt.trainer.loop import Outcome
from thunderbolt.trainer.run import train

IRIS = DatasetConfig(uri="builtin://iris")


def test_split_identity_follows_the_split_seed_only():
    a, b = load(IRIS, "classification", 5), load(IRIS, "classification", 5)
    c = load(IRIS, "classification", 6)
    assert a.split == b.split and a.split is not None and a.split.seed == 5
    assert a.split.validation_hash != (c.split and c.split.validation_hash)
    assert a.split.as_dict() == {"seed": 5, "validationHash": a.split.validation_hash}


def test_validation_hash_covers_rows_folds_and_size():
    rows = [np.array([1, 4, 7])]
    assert validation_hash(rows, 10) == validation_hash([np.array([1, 4, 7])], 10)
    assert validation_hash(rows, 10) != validation_hash([np.array([1, 4, 8])], 10)
    assert validation_hash(rows, 10) != validation_hash(rows, 11)
    assert validation_hash(rows, 10) != validation_hash([np.array([1]), np.array([4, 7])], 10)


def test_folds_partition_the_rows_and_are_seeded():
    parts = fold_indices(103, 5, seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert {len(p) for p in parts} <= {20, 21}
    again = fold_indices(103, 5, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(parts, again, strict=True))
    assert not np.array_equal(parts[0], fold_indices(103, 5, seed=4)[0])
    with pytest.raises(DatasetError, match="too few"):
        fold_indices(7, 5, seed=0)


def test_classification_folds_are_stratified():
    # 90 rows of class 0, 12 of class 1, 3 of class 2: unstratified folds of 21 rows
    # would often miss class 2 or hold 0-5 rows of class 1.
    labels = np.array([0] * 90 + [1] * 12 + [2] * 3)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    for seed in range(5):
        parts = fold_indices(len(labels), 5, seed, labels)
        assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
        assert {len(p) for p in parts} == {21}
        for part in parts:
            counts = np.bincount(labels[part], minlength=3)
            assert 17 <= counts[0] <= 19 and 2 <= counts[1] <= 3 and counts[2] <= 1
    again = fold_indices(len(labels), 5, 3, labels)
    assert all(
        np.array_equal(x, y)
        for x, y in zip(again, fold_indices(len(labels), 5, 3, labels), strict=True)
    )
    assert not np.array_equal(again[0], fold_indices(len(labels), 5, 4, labels)[0])


def test_built_in_classification_folds_hold_every_class_in_its_share():
    wine = load_folds(DatasetConfig(uri="builtin://wine"), "classification", 1, 5)
    share = np.bincount(np.concatenate([f.y_val for f in wine])) / 5
    for fold in wine:
        assert np.all(np.abs(np.bincount(fold.y_val, minlength=3) - share) <= 1)


def test_each_fold_validates_on_its_own_rows_and_shares_one_identity():
    folds = load_folds(IRIS, "classification", 2, 3)
    assert [len(f.x_val) for f in folds] == [50, 50, 50]
    assert all(len(f.x_train) == 100 for f in folds)
    assert len({f.split for f in folds}) == 1 and folds[0].split.folds == 3
    # the folds partition the rows (iris has duplicate rows, so count, not compare, them)
    # and, stratified, each holds 16 or 17 of each class's 50
    assert sum(len(f.y_val) for f in folds) == 150
    for fold in folds:
        assert set(np.bincount(fold.y_val, minlength=3).tolist()) <= {16, 17}


def _outcome(objective, pruned=False, **metrics):
    return Outcome(net=None, metrics={"m": objective, **metrics}, objective=objective,  # type: ignore[arg-type]
                   best_epoch=1, epochs_run=1, pruned=pruned)  # fmt: skip


def test_summary_is_the_mean_and_std_and_exports_the_best_fold():
    cv = crossval.summarize([_outcome(0.8), _outcome(0.9), _outcome(0.7)], maximize=True)
    assert cv.mean == pytest.approx(0.8) and cv.std == pytest.approx(np.std([0.8, 0.9, 0.7]))
    assert cv.best_fold == 1 and cv.metrics["m"] == pytest.approx(0.8)
    assert crossval.summarize([_outcome(0.8), _outcome(0.2)], maximize=False).best_fold == 1


def test_a_pruned_fold_stops_the_remaining_folds():
    calls = []

    def fit(k, data, offset):
        calls.append((k, offset))
        return _outcome(0.5, pruned=k == 1)

    cv = crossval.run_folds([None, None, None], 10, True, fit, lambda _m: None)  # type: ignore[list-item]
    assert calls == [(0, 0), (1, 10)] and cv.pruned and len(cv.objectives) == 2


class Steps:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def start(self) -> None:
        pass

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        self.seen.append(step)
        return False

    def stop(self, result: TrainResult) -> None:
        self.result = result


def test_cross_validated_run_reports_mean_std_split_and_fold_steps(make_config, tmp_path):
    reporter = Steps()
    config = make_config(epochs=3, folds=3, splitSeed=11, seed=4)
    result, code = train(config, str(tmp_path / "out"), emit=lambda _m: None, reporter=reporter)
    assert code == 0 and result.status == "Succeeded", result.message
    folds = result.extra["foldObjectives"]
    assert len(folds) == 3
    assert result.objective == pytest.approx(np.mean(folds))
    assert result.objectiveStd == pytest.approx(np.std(folds))
    assert result.split is not None and result.split.seed == 11 and result.split.folds == 3
    assert reporter.seen == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # fold k's epoch e is step 3k + e
    assert folds[result.extra["exportedFold"]] == max(folds)
    assert (tmp_path / "out" / "model.onnx").exists()


def test_holdout_runs_with_different_model_seeds_share_the_split(make_config, tmp_path):
    results = [
        train(
            make_config(epochs=2, seed=s, splitSeed=9),
            str(tmp_path / f"o{s}"),
            emit=lambda _m: None,
        )[0]  # fmt: skip
        for s in (1, 2)
    ]
    assert results[0].split == results[1].split and results[0].split is not None
    assert results[0].objectiveStd is None
    legacy = train(make_config(epochs=2, seed=9), str(tmp_path / "legacy"), emit=lambda _m: None)[0]
    assert legacy.split == results[0].split  # no splitSeed: the model seed splits, as before
