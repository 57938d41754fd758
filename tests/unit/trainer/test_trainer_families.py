"""The built-in model families beyond the MLP: a CNN on digits' 8x8 images and a GRU on
the generated trajectories, each trained, exported, checked and run as the inference
server runs it (V2 request decoding against the model's own tensor specs)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from thunderbolt.api.trainer_config import DatasetConfig
from thunderbolt.sdk.errors import EXIT_CODES
from thunderbolt.serving.model import OnnxModel
from thunderbolt.serving.protocol import InferError, parse_infer_request
from thunderbolt.trainer import trajectories
from thunderbolt.trainer.data import load
from thunderbolt.trainer.run import train

DIGITS = {"model": "cnn", "dataset": {"uri": "builtin://digits"}}
TRACKS = {"model": "sequence", "dataset": {"uri": "builtin://trajectories"}}


def quiet(_message: str) -> None:
    pass


def serve(model_path, inputs: np.ndarray) -> np.ndarray:
    """One V2 JSON request through the server's decoding and onnxruntime session."""
    model = OnnxModel(model_path.read_bytes())
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(inputs.shape),
                    "data": inputs.ravel().tolist(),
                }
            ]
        }  # fmt: skip
    ).encode()
    request = parse_infer_request(body, None, model.inputs, model.outputs)
    return model.run(request.inputs)["output"]


def test_the_cnn_learns_digits_and_serves_8x8_images(make_config, tmp_path):
    config = make_config(**DIGITS, epochs=4, parameters={"hidden_dim": 16, "learning_rate": 0.01})
    result, code = train(config, str(tmp_path), emit=quiet)
    assert code == 0 and result.status == "Succeeded", result.message
    assert result.metrics["val_accuracy"] >= 0.9
    assert result.extra["model"] == "cnn"
    model_file = tmp_path / "model.onnx"
    props = {p.key: p.value for p in onnx.load(str(model_file)).metadata_props}
    assert json.loads(props["thunderbolt.input_shape"]) == [-1, 1, 8, 8]
    assert props["thunderbolt.model_family"] == "cnn"
    data = load(DatasetConfig(uri="builtin://digits"), "classification", config.seed)
    images = data.x_val[:5].reshape(5, 1, 8, 8)
    probabilities = serve(model_file, images)
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    model = OnnxModel(model_file.read_bytes())
    flat = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64],
                                   "data": [0.0] * 64}]}).encode()  # fmt: skip
    with pytest.raises(InferError) as refused:  # a flat row is a client error, not a 5xx
        parse_infer_request(flat, None, model.inputs, model.outputs)
    assert refused.value.status == 400


def test_spectral_norm_bounds_every_conv_and_linear_weight_of_the_cnn(make_config, tmp_path):
    params = {"hidden_dim": 8, "learning_rate": 0.05, "spectral_norm": True}
    config = make_config(**DIGITS, epochs=3, parameters=params)
    result, code = train(config, str(tmp_path), emit=quiet)
    assert code == 0, result.message
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if len(t.dims) in (2, 4)]
    assert sorted(len(w.shape) for w in weights) == [2, 4, 4]  # two conv blocks and the head
    sigmas = [np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0] for w in weights]
    assert max(sigmas) <= 1.0 + 1e-3, sigmas


def test_the_gru_classifies_trajectories_and_serves_sequences(make_config, tmp_path):
    params = {"hidden_dim": 32, "learning_rate": 0.01, "num_layers": 1}
    config = make_config(**TRACKS, epochs=6, parameters=params)
    result, code = train(config, str(tmp_path), emit=quiet)
    assert code == 0 and result.status == "Succeeded", result.message
    assert result.metrics["val_accuracy"] >= 0.5  # four balanced classes: chance is 0.25
    model_file = tmp_path / "model.onnx"
    props = {p.key: p.value for p in onnx.load(str(model_file)).metadata_props}
    assert json.loads(props["thunderbolt.input_shape"]) == [-1, trajectories.DEFAULT_STEPS, 2]
    assert json.loads(props["thunderbolt.class_labels"]) == list(trajectories.KINDS)
    tracks = trajectories.generate(samples=8, seed=5).positions
    assert serve(model_file, tracks).shape == (8, 4)


def test_the_gru_regresses_mean_speed_better_than_the_mean(make_config, tmp_path):
    config = make_config(
        regression=True, **TRACKS, epochs=5, parameters={"hidden_dim": 16, "learning_rate": 0.01}
    )
    result, code = train(config, str(tmp_path), emit=quiet)
    assert code == 0, result.message
    assert result.metrics["val_r2"] > 0.3


def test_a_table_that_is_not_a_square_image_is_a_dataset_error_for_the_cnn(make_config, tmp_path):
    result, code = train(make_config(model="cnn"), str(tmp_path), emit=quiet)  # iris: 4 = 2x2
    assert code == 0, result.message
    config = make_config(model="cnn", dataset={"uri": "builtin://wine"})  # 13 columns
    result, code = train(config, str(tmp_path / "wine"), emit=quiet)
    assert (result.reason, code) == ("DatasetError", EXIT_CODES["DatasetError"])
    assert "square image" in (result.message or "")


def test_the_sequence_model_refuses_rows_of_a_table(make_config, tmp_path):
    result, code = train(make_config(model="sequence"), str(tmp_path), emit=quiet)
    assert (result.reason, code) == ("InvalidConfig", EXIT_CODES["InvalidConfig"])
    assert "rank 2" in (result.message or "")


def test_trajectories_are_the_same_for_a_seed_and_balanced():
    first, again = trajectories.generate(seed=3), trajectories.generate(seed=3)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert not np.array_equal(first.positions, trajectories.generate(seed=4).positions)
    counts = np.bincount(first.kind, minlength=len(trajectories.KINDS))
    assert counts.min() == counts.max() == trajectories.DEFAULT_SAMPLES // 4
    assert first.positions.shape == (trajectories.DEFAULT_SAMPLES, trajectories.DEFAULT_STEPS, 2)
    assert np.isfinite(first.positions).all() and (first.speed > 0).all()


def test_the_built_in_trainer_needs_a_dataset(tmp_path):
    from thunderbolt.api.trainer_config import TrainerConfig

    config = TrainerConfig.model_validate(
        {"objective": {"metric": "val_accuracy", "direction": "maximize"}}
    )
    result, code = train(config, str(tmp_path), emit=quiet)
    assert (result.reason, code) == ("InvalidConfig", EXIT_CODES["InvalidConfig"])
    assert "needs a dataset" in (result.message or "")


def test_the_gru_cross_validates_on_trajectory_folds(make_config, tmp_path):
    params = {"hidden_dim": 16, "learning_rate": 0.01, "num_layers": 1}
    config = make_config(**TRACKS, epochs=2, folds=2, splitSeed=3, parameters=params)
    result, code = train(config, str(tmp_path), emit=quiet)
    assert code == 0 and result.status == "Succeeded", result.message
    assert len(result.extra["foldObjectives"]) == 2 and result.objectiveStd is not None
    assert result.split is not None and result.split.folds == 2 and result.split.seed == 3
