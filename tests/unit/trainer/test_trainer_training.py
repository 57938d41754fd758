"""Real training runs, small enough to be quick: quality, health, export, determinism."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from thunderbolt.api.trainer_config import TrainResult
from thunderbolt.trainer import serving_cost
from thunderbolt.trainer.data import load
from thunderbolt.trainer.run import termination_message, train

SERVING = set(serving_cost.METRICS)


def quiet(_message: str) -> None:
    pass


def run(config, tmp_path, name="out", **kwargs):
    out = tmp_path / name
    result, code = train(config, str(out), emit=quiet, **kwargs)
    return result, code, out


def test_iris_reaches_90_percent_validation_accuracy(make_config, tmp_path):
    config = make_config(epochs=15, parameters={"learning_rate": 0.02, "hidden_dim": 32})
    result, code, out = run(config, tmp_path)
    assert code == 0 and result.status == "Succeeded"
    assert result.metrics["val_accuracy"] >= 0.9
    assert result.objective == result.metrics["val_accuracy"]
    assert set(result.metrics) == {"val_loss", "val_accuracy", "val_f1"} | SERVING
    on_disk = TrainResult.model_validate_json((out / "result.json").read_text())
    assert on_disk.modelChecksum == result.modelChecksum
    assert on_disk.modelUri == (out / "model.onnx").resolve().as_uri()


def test_diabetes_regression_beats_predicting_the_mean(make_config, tmp_path):
    config = make_config(regression=True, epochs=10, parameters={"learning_rate": 0.01})
    result, code, _ = run(config, tmp_path)
    assert code == 0
    assert set(result.metrics) == {"val_loss", "val_mse", "val_mae", "val_r2"} | SERVING
    assert result.metrics["val_r2"] > 0.0


def test_friedman1_trains_exports_and_its_hyperparameters_matter(make_config, tmp_path):
    # the generated regression set exists so that a search has something to find: a
    # sensible learning rate gets close to the noise floor, a tiny one stays far below
    good = make_config(
        regression=True, dataset={"uri": "builtin://friedman1"}, epochs=5,
        parameters={"learning_rate": 0.01, "hidden_dim": 48, "num_layers": 2},
    )  # fmt: skip
    result, code, out = run(good, tmp_path, name="good")
    assert code == 0 and (out / "model.onnx").exists()
    assert 0.8 < result.metrics["val_r2"] < 0.97  # 0.97: above the noise floor's R²
    slow = make_config(
        regression=True, dataset={"uri": "builtin://friedman1"}, epochs=5,
        parameters={"learning_rate": 0.0002, "hidden_dim": 48, "num_layers": 2},
    )  # fmt: skip
    crawled, code, _ = run(slow, tmp_path, name="slow")
    assert code == 0
    assert crawled.metrics["val_r2"] < result.metrics["val_r2"] - 0.3


def test_spectral_norm_bounds_every_exported_linear_weight(make_config, tmp_path, singular_values):
    config = make_config(epochs=6, parameters={"learning_rate": 0.1, "spectral_norm": "true"})
    result, code, out = run(config, tmp_path)
    assert code == 0
    sigmas = singular_values(str(out / "model.onnx"))
    assert len(sigmas) == 3  # two hidden layers and the output layer
    assert max(sigmas) <= 1.05
    assert result.switches == {"spectral_norm": True}


def test_without_spectral_norm_a_large_learning_rate_grows_a_weight_past_one(
    make_config, tmp_path, singular_values
):
    config = make_config(epochs=6, parameters={"learning_rate": 0.1, "spectral_norm": "false"})
    result, code, out = run(config, tmp_path)
    assert code == 0
    assert max(singular_values(str(out / "model.onnx"))) > 1.05


def test_onnx_matches_pytorch_on_validation_rows_and_records_metadata(make_config, tmp_path):
    config = make_config(epochs=3, parameters={"dropout": 0.2, "activation": "silu"})
    result, code, out = run(config, tmp_path)
    assert result.switches == {"spectral_norm": False}  # recorded although not searched
    assert code == 0 and result.onnxMaxAbsDiff is not None and result.onnxMaxAbsDiff <= 1e-4
    model = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["thunderbolt.feature_names"])[0] == "sepal length (cm)"
    assert json.loads(meta["thunderbolt.class_labels"]) == ["setosa", "versicolor", "virginica"]
    assert meta["thunderbolt.task"] == "classification" and meta["thunderbolt.trial"] == "exp-001"
    assert len(json.loads(meta["thunderbolt.standardization"])["mean"]) == 4
    # raw features in (standardization is inside the graph), any batch size, probabilities out
    session = ort.InferenceSession(str(out / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    data = load(config.dataset, "classification", config.seed)
    for rows in (1, 7):
        (probs,) = session.run(None, {"input": data.x_val[:rows]})
        assert probs.shape == (rows, 3) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_same_seed_gives_the_same_metrics_and_checksum(make_config, tmp_path):
    config = make_config(epochs=4, parameters={"dropout": 0.3})
    first, _, _ = run(config, tmp_path, "a")
    second, _, _ = run(config, tmp_path, "b")
    other, _, _ = run(make_config(epochs=4, seed=1, parameters={"dropout": 0.3}), tmp_path, "c")
    timed = {"latency_p50_ms", "latency_p50_ms_batch32"}  # measured, not computed
    same = {k: v for k, v in first.metrics.items() if k not in timed}
    assert same == {k: v for k, v in second.metrics.items() if k not in timed}
    assert first.modelChecksum == second.modelChecksum
    assert other.metrics != first.metrics


def test_serving_cost_is_measured_on_the_exported_model(make_config, tmp_path):
    small = make_config(epochs=2, parameters={"hidden_dim": 8, "num_layers": 1})
    big = make_config(epochs=2, parameters={"hidden_dim": 256, "num_layers": 3})
    (a, _, out), (b, _, _) = run(small, tmp_path, "a"), run(big, tmp_path, "b")
    # served numbers: 4->8->3 weights and biases, plus 4 means and 4 stds for the input
    assert a.metrics["parameter_count"] == 4 * 8 + 8 + 8 * 3 + 3 + 2 * 4
    assert a.metrics["model_size_bytes"] == (out / "model.onnx").stat().st_size
    assert b.metrics["parameter_count"] > 100 * a.metrics["parameter_count"]
    assert b.metrics["model_size_bytes"] > 100 * a.metrics["model_size_bytes"]
    for r in (a, b):
        assert 0 < r.metrics["latency_p50_ms"] < 1000 and 0 < r.metrics["latency_p50_ms_batch32"]
    # a 32-row batch of the big model costs more than one row of the small one
    assert b.metrics["latency_p50_ms_batch32"] > a.metrics["latency_p50_ms"]


def test_learning_rate_10_diverges_with_a_nonzero_exit(make_config, tmp_path):
    result, code, out = run(make_config(parameters={"learning_rate": 10}), tmp_path)
    assert result.status == "Failed" and result.reason == "Diverged" and code != 0
    assert "loss" in (result.message or "")
    assert json.loads((out / "result.json").read_text())["reason"] == "Diverged"
    assert not (out / "model.onnx").exists()


@pytest.mark.parametrize("regression", [False, True])
def test_features_that_carry_no_signal_collapse_the_predictions(make_config, tmp_path, regression):
    rng = np.random.default_rng(0)
    n = 120
    target = rng.normal(size=n) if regression else rng.integers(0, 2, n)
    path = tmp_path / "constant.csv"
    pd.DataFrame({"a": np.zeros(n), "b": np.full(n, 3.0), "y": target}).to_csv(path, index=False)
    # the dataset checks would stop this table first (constant columns, every row a
    # duplicate): switched off, the health monitor's collapse check is what is tested
    config = make_config(
        regression=regression, dataset={"uri": path.as_uri(), "target": "y"}, checks="off"
    )
    result, code, _ = run(config, tmp_path)
    assert result.reason == "Collapsed" and code != 0
    assert "collapsed" in (result.message or "")


def test_early_stopping_ends_the_run_before_the_last_epoch(make_config, tmp_path):
    config = make_config(
        epochs=40,
        earlyStoppingPatience=2,
        objective={"metric": "val_loss", "direction": "minimize"},
        parameters={"learning_rate": 0.2},
    )
    result, code, _ = run(config, tmp_path)
    assert code == 0 and result.epochs is not None and result.epochs < 40
    assert result.extra["stoppedEarly"] is True
    assert result.extra["bestEpoch"] == result.epochs - 2


class PruneAfter:
    """A live-report receiver that asks for pruning at a given epoch, as the operator would."""

    def __init__(self, epoch: int) -> None:
        self.at = epoch
        self.seen: list[int] = []
        self.stopped: TrainResult | None = None

    def start(self) -> None:
        pass

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        self.seen.append(step)
        return step >= self.at

    def stop(self, result: TrainResult) -> None:
        self.stopped = result


def test_pruned_run_stops_exports_and_exits_zero(make_config, tmp_path):
    reporter = PruneAfter(2)
    result, code, out = run(make_config(epochs=10), tmp_path, reporter=reporter)
    assert code == 0 and result.status == "Pruned" and result.epochs == 2
    assert reporter.seen == [1, 2]
    assert (out / "model.onnx").exists() and result.modelChecksum
    assert reporter.stopped is not None and reporter.stopped.status == "Pruned"


def test_unknown_objective_metric_fails_before_training(make_config, tmp_path):
    config = make_config(objective={"metric": "val_r2", "direction": "maximize"})
    result, code, _ = run(config, tmp_path)
    assert result.reason == "InvalidConfig" and code != 0 and "val_r2" in (result.message or "")


def test_result_goes_to_the_termination_message_path(make_config, tmp_path, monkeypatch):
    termination = tmp_path / "termination-log"
    termination.write_text("")
    monkeypatch.setenv("THUNDERBOLT_TERMINATION_MESSAGE_PATH", str(termination))
    result, _, _ = run(make_config(epochs=2), tmp_path)
    written = json.loads(termination.read_text())
    assert written["status"] == "Succeeded"
    assert written["modelChecksum"] == result.modelChecksum


def test_termination_message_sheds_detail_to_fit_4096_bytes():
    result = TrainResult(
        status="Failed",
        reason="DatasetError",
        message="x" * 5000,
        metrics={f"m{i}": 0.5 for i in range(50)},
        extra={"blob": "y" * 3000},
    )
    text = termination_message(result)
    assert len(text.encode()) <= 4096
    doc = json.loads(text)
    assert doc["reason"] == "DatasetError" and doc["message"].startswith("xxx")


def test_pruned_run_is_pruned_even_when_its_predictions_look_collapsed(make_config, tmp_path):
    n = 60
    path = tmp_path / "constant.csv"
    pd.DataFrame({"a": np.zeros(n), "y": np.arange(n) % 2}).to_csv(path, index=False)
    config = make_config(  # checks off: they would reject the constant table first
        dataset={"uri": path.as_uri(), "target": "y"}, epochs=10, checks="off"
    )
    result, code, _ = run(config, tmp_path, reporter=PruneAfter(1))
    assert code == 0 and result.status == "Pruned" and result.epochs == 1
