"""``thunderbolt.sdk.torch``: spectral norm on Linear and Conv layers, and the verified
ONNX export (parity, checksum, metadata, upload) SDK scripts and the trainer share."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from thunderbolt import sdk
from thunderbolt.sdk.errors import ExportMismatch
from thunderbolt.sdk.torch import (
    constrained_layers,
    export,
    export_onnx,
    largest_singular_value,
    plain_copy,
    spectral_norm,
)


class Mixed(nn.Module):
    """One of each constrained layer type on a [batch, 1, 8, 8] input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv1 = nn.Conv1d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv2(x))  # [b, 4, 8, 8]
        y = torch.relu(self.conv1(y.flatten(2)))  # [b, 4, 64]
        return self.head(y.flatten(1))


def push_weights_up(net: nn.Module, steps: int = 30) -> None:
    """Fast steps towards large targets: every weight wants to grow."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    x, y = torch.randn(16, 1, 8, 8), 20 * torch.randn(16, 3)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()


def test_spectral_norm_constrains_linear_conv1d_and_conv2d():
    torch.manual_seed(0)
    net = spectral_norm(Mixed())
    assert len(constrained_layers(net)) == 3
    push_weights_up(net)
    plain = plain_copy(net)
    sigmas = [largest_singular_value(m.weight) for m in (plain.conv2, plain.conv1, plain.head)]
    assert max(sigmas) <= 1.0 + 1e-3, sigmas
    net(torch.randn(2, 1, 8, 8))  # the trained model is untouched by the copy


def test_without_spectral_norm_the_same_steps_grow_a_weight_past_one():
    torch.manual_seed(0)
    net = Mixed()
    push_weights_up(net)
    sigmas = [largest_singular_value(m.weight) for m in (net.conv2, net.conv1, net.head)]
    assert max(sigmas) > 2.0, sigmas


def test_applying_spectral_norm_twice_is_harmless():
    net = spectral_norm(spectral_norm(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))))
    assert len(constrained_layers(net)) == 2
    assert len(net[0].parametrizations.weight) == 1


def test_export_folds_spectral_norm_and_matches_pytorch_on_multi_dim_inputs():
    torch.manual_seed(0)
    net = spectral_norm(Mixed())
    push_weights_up(net, steps=3)
    x = np.random.default_rng(0).normal(size=(50, 1, 8, 8)).astype(np.float32)
    exported = export_onnx(net, x[:2], validation=x, metadata={"team": "vision"})
    assert exported.max_abs_diff <= 1e-4
    assert exported.checksum == "sha256:" + hashlib.sha256(exported.data).hexdigest()
    proto = onnx.load_from_string(exported.data)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["thunderbolt.input_shape"]) == [-1, 1, 8, 8]
    assert json.loads(props["thunderbolt.output_shape"]) == [-1, 3]
    assert props["team"] == "vision"
    assert not any("parametrizations" in t.name for t in proto.graph.initializer)
    session = ort.InferenceSession(exported.data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x[:7]})  # a batch size it was not exported with
    assert got.shape == (7, 3)


def test_a_sequence_model_exports_with_a_dynamic_batch():
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(2, 8, batch_first=True)
            self.head = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            states, _ = self.gru(x)
            return self.head(states[:, -1])

    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(20, 12, 2)).astype(np.float32)
    exported = export_onnx(spectral_norm(Seq()), x[:2], validation=x)
    assert exported.max_abs_diff <= 1e-4


def test_a_disagreement_beyond_the_tolerance_fails_the_export():
    x = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(ExportMismatch, match="disagree"):
        export_onnx(nn.Linear(3, 2), x, tolerance=-1.0)


def test_export_rejects_an_example_without_a_batch_dimension():
    with pytest.raises(ValueError, match="batch"):
        export_onnx(nn.Linear(3, 2), np.ones(3, dtype=np.float32))


def test_export_with_a_trial_writes_uploads_and_reports_the_model(tmp_path):
    config = {
        "identity": {"namespace": "ns", "experiment": "e", "trial": "e-002", "uid": "u2"},
        "parameters": {"channels": 4},
        "objective": {"metric": "acc", "direction": "maximize"},
        "artifacts": {"uri": (tmp_path / "store").as_uri()},
    }
    trial = sdk.init(config, output=tmp_path / "out", emit=lambda _m: None)
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(10, 1, 8, 8)).astype(np.float32)
    exported = export(Mixed(), x[:2], trial, validation=x)
    stored = tmp_path / "store" / "ns" / "e" / "e-002" / "model.onnx"
    assert exported.uri == stored.as_uri()
    assert stored.read_bytes() == (tmp_path / "out" / "model.onnx").read_bytes() == exported.data
    props = {p.key: p.value for p in onnx.load(str(stored)).metadata_props}
    assert props["thunderbolt.trial_uid"] == "u2"
    assert json.loads(props["thunderbolt.parameters"]) == {"channels": 4}
    result = trial.finish(objective=0.5)
    assert result.modelUri == stored.as_uri() and result.modelChecksum == exported.checksum
    assert result.onnxMaxAbsDiff == exported.max_abs_diff
    uploaded = json.loads((stored.parent / "result.json").read_text())
    assert uploaded["modelChecksum"] == exported.checksum
