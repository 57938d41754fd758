"""PyTorch helpers for SDK scripts: spectral norm as a switch, verified ONNX export.

    from thunderbolt.sdk.torch import export, spectral_norm

    net = spectral_norm(MyCNN()) if trial.params.bool("spectral_norm") else MyCNN()
    ...
    export(net, x_val[:2], trial, validation=x_val)   # parity, sha256, upload, MLflow

The built-in trainer exports through the same functions.
"""

from thunderbolt.sdk.torch.export import Exported, export, export_onnx, parity
from thunderbolt.sdk.torch.spectral import (
    constrained_layers,
    largest_singular_value,
    plain_copy,
    spectral_norm,
)

__all__ = [
    "Exported",
    "constrained_layers",
    "export",
    "export_onnx",
    "largest_singular_value",
    "parity",
    "plain_copy",
    "spectral_norm",
]
