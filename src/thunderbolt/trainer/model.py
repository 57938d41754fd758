"""The built-in model families a Trial's template chooses (``model:``), built from its
parameters, with standardization inside the model and spectral norm as a switch.

mlp       rows of features (or any sample, flattened)
cnn       [1, h, w] images (square tables such as digits, reshaped)
sequence  [steps, channels] sequences: a GRU over a projected input

Standardization is a layer (buffers, not weights), so the exported ONNX graph takes raw
inputs and serving never has to know the training set's mean and std. The parameters
keep their meaning across families: ``hidden_dim`` is the width (units, channels or
GRU state), ``num_layers`` the depth (hidden layers, conv blocks, GRU layers).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from thunderbolt.sdk.errors import InvalidConfig
from thunderbolt.sdk.torch.spectral import plain_copy, spectral_norm
from thunderbolt.trainer.params import HyperParams

__all__ = ["FAMILIES", "InferenceModel", "build", "plain_copy"]

FAMILIES = ("mlp", "cnn", "sequence")
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class Standardize(nn.Module):
    """(x - mean) / std with buffers shaped to broadcast over one sample."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        return (x - mean) / std


class TabularNet(nn.Module):
    """Raw features in; logits (classification) or standardized targets (regression) out."""

    def __init__(self, sample_shape: tuple[int, ...], num_outputs: int, hp: HyperParams,
                 mean: np.ndarray, std: np.ndarray) -> None:  # fmt: skip
        super().__init__()
        self.standardize = Standardize(mean, std)
        self.flatten = nn.Flatten()
        layers: list[nn.Module] = []
        width = math.prod(sample_shape)
        for _ in range(hp.num_layers):
            layers += [nn.Linear(width, hp.hidden_dim), _ACTIVATIONS[hp.activation]()]
            if hp.dropout > 0:
                layers.append(nn.Dropout(hp.dropout))
            width = hp.hidden_dim
        layers.append(nn.Linear(width, num_outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(self.flatten(self.standardize(x)))
        return out


class ImageCNN(nn.Module):
    """Conv blocks (3x3 conv, activation, 2x2 max-pool while the image is >= 4 wide),
    then a linear head. Sized for small images such as digits' 8x8."""

    def __init__(self, sample_shape: tuple[int, ...], num_outputs: int, hp: HyperParams,
                 mean: np.ndarray, std: np.ndarray) -> None:  # fmt: skip
        super().__init__()
        channels, height, width = sample_shape
        self.standardize = Standardize(mean, std)
        layers: list[nn.Module] = []
        for _ in range(max(1, hp.num_layers)):
            layers += [
                nn.Conv2d(channels, hp.hidden_dim, 3, padding=1),
                _ACTIVATIONS[hp.activation](),
            ]
            if min(height, width) >= 4:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = hp.hidden_dim
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        if hp.dropout > 0:
            head.append(nn.Dropout(hp.dropout))
        head.append(nn.Linear(channels * height * width, num_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(self.standardize(x)))
        return out


class SequenceGRU(nn.Module):
    """Linear input projection, a GRU, and a linear head on the last step's state."""

    def __init__(self, sample_shape: tuple[int, ...], num_outputs: int, hp: HyperParams,
                 mean: np.ndarray, std: np.ndarray) -> None:  # fmt: skip
        super().__init__()
        _steps, channels = sample_shape
        self.standardize = Standardize(mean, std)
        self.project = nn.Sequential(
            nn.Linear(channels, hp.hidden_dim), _ACTIVATIONS[hp.activation]()
        )
        layers = max(1, hp.num_layers)
        self.gru = nn.GRU(
            hp.hidden_dim,
            hp.hidden_dim,
            num_layers=layers,
            batch_first=True,
            dropout=hp.dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hp.hidden_dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.project(self.standardize(x)))
        out: torch.Tensor = self.head(states[:, -1])
        return out


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


_FAMILY_CLASSES: dict[str, type[nn.Module]] = {
    "mlp": TabularNet,
    "cnn": ImageCNN,
    "sequence": SequenceGRU,
}
_SAMPLE_RANK = {"cnn": 3, "sequence": 2}


def build(family: str, sample_shape: tuple[int, ...], num_outputs: int, hp: HyperParams,
          mean: np.ndarray, std: np.ndarray) -> nn.Module:  # fmt: skip
    """The family's network, spectral-normalized (every Linear and Conv) when asked."""
    if family not in _FAMILY_CLASSES:
        raise InvalidConfig(f"model must be one of {', '.join(FAMILIES)}, got {family!r}")
    rank = _SAMPLE_RANK.get(family)
    if rank is not None and len(sample_shape) != rank:
        raise InvalidConfig(
            f"model {family} needs samples of rank {rank}, the dataset gives {list(sample_shape)}"
        )
    net = _FAMILY_CLASSES[family](sample_shape, num_outputs, hp, mean, std)
    return spectral_norm(net) if hp.spectral_norm else net
