"""The MLP a Trial's parameters describe, with standardization inside the model.

Standardization is a layer (buffers, not weights), so the exported ONNX graph takes raw
features and serving never has to know the training set's mean and std.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from thunderbolt.trainer.params import HyperParams

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class Standardize(nn.Module):
    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        return (x - mean) / std


class TabularNet(nn.Module):
    """Raw features in; logits (classification) or standardized targets (regression) out."""

    def __init__(self, num_features: int, num_outputs: int, hp: HyperParams,
                 mean: np.ndarray, std: np.ndarray) -> None:  # fmt: skip
        super().__init__()
        self.standardize = Standardize(mean, std)
        layers: list[nn.Module] = []
        width = num_features
        for _ in range(hp.num_layers):
            layers += [_linear(width, hp.hidden_dim, hp), _ACTIVATIONS[hp.activation]()]
            if hp.dropout > 0:
                layers.append(nn.Dropout(hp.dropout))
            width = hp.hidden_dim
        layers.append(_linear(width, num_outputs, hp))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(self.standardize(x))
        return out


def _linear(fan_in: int, fan_out: int, hp: HyperParams) -> nn.Module:
    layer = nn.Linear(fan_in, fan_out)
    return spectral_norm(layer) if hp.spectral_norm else layer


class InferenceModel(nn.Module):
    """What serving runs: class probabilities, or regression targets in original units."""

    def __init__(self, net: nn.Module, task: str, target_mean: float, target_std: float):
        super().__init__()
        self.net = net
        self.task = task
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (ONNX input name)
        out = self.net(input)
        if self.task == "classification":
            return torch.softmax(out, dim=-1)
        return out * self.target_std + self.target_mean


def build(num_features: int, num_outputs: int, hp: HyperParams, mean: np.ndarray,
          std: np.ndarray) -> TabularNet:  # fmt: skip
    return TabularNet(num_features, num_outputs, hp, mean, std)


def plain_copy(net: nn.Module) -> nn.Module:
    """A CPU float32 copy with spectral norm folded into ordinary weights.

    Exporting the parametrized module would put the power-iteration math in the graph;
    folding leaves the normalized weight as a plain initializer, which is also what
    someone inspecting the model's singular values must read.
    """
    clone = copy.deepcopy(net).to("cpu", torch.float32).eval()
    for module in clone.modules():
        if parametrize.is_parametrized(module):
            names = list(module.parametrizations.keys())  # type: ignore[union-attr,operator]
            for name in names:
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return clone
