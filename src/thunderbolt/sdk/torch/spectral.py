"""Spectral normalization as a switch on any model, and folding it away for export.

Spectral norm bounds each layer's largest singular value by 1 (a 1-Lipschitz layer),
which keeps the network's sensitivity to its input bounded. It applies to the layers
whose weight is a linear map of the input: Linear and Conv1d/2d/3d (torch reshapes a
conv kernel to [out, in*k...] for the power iteration, as Miyato et al. do).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _parametrize

FOLD_POWER_ITERATIONS = 100
CONSTRAINED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def spectral_norm(model: nn.Module, *, types: tuple[type[nn.Module], ...] = CONSTRAINED,
                  n_power_iterations: int = 1) -> nn.Module:  # fmt: skip
    """Constrain every Linear/Conv layer of ``model`` in place; returns ``model``.

    Layers that are already parametrized are left alone, so calling it twice is harmless.
    """
    for module in list(model.modules()):
        if isinstance(module, types) and not _has_spectral_norm(module):
            _parametrize(module, n_power_iterations=n_power_iterations)
    return model


def _has_spectral_norm(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight")


def constrained_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model`` that carry spectral norm."""
    return [m for m in model.modules() if isinstance(m, CONSTRAINED) and _has_spectral_norm(m)]


def plain_copy(net: nn.Module) -> nn.Module:
    """A CPU float32 eval copy with spectral norm folded into ordinary weights.

    Exporting the parametrized module would put the power-iteration math in the graph;
    folding leaves the normalized weight as a plain initializer, which is also what
    someone inspecting the model's singular values must read. Training runs one power
    iteration per step, so the estimate of σ lags weights that move fast; the copy's
    estimate is converged first, so every exported layer really has σ_max <= 1.
    """
    clone = copy.deepcopy(net).to("cpu", torch.float32).eval()
    for module in clone.modules():
        if parametrize.is_parametrized(module):
            # The parametrized class is shared with ``net``'s module, and removing a
            # parametrization deletes its property from the class: detach the copy's
            # class first, or ``net`` itself loses its ``weight``.
            cls = module.__class__
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            _converge(module)
            names = list(module.parametrizations.keys())  # type: ignore[union-attr,operator]
            for name in names:
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return clone


def _converge(module: nn.Module, iterations: int = FOLD_POWER_ITERATIONS) -> None:
    """Run spectral norm's power iteration to convergence on this (copied) module."""
    for chain in module.parametrizations.values():  # type: ignore[union-attr,operator]
        original = getattr(chain, "original", None)
        for step in chain:
            power = getattr(step, "_power_method", None)
            reshape = getattr(step, "_reshape_weight_to_matrix", None)
            if original is None or power is None or reshape is None or original.ndim < 2:
                continue  # another parametrization, or a torch without these internals
            with torch.no_grad():
                power(reshape(original), iterations)


def largest_singular_value(weight: torch.Tensor) -> float:
    """σ_max of a Linear weight, or of a conv kernel reshaped to [out, in*k...]."""
    matrix = weight.detach().reshape(weight.shape[0], -1).double()
    return float(torch.linalg.matrix_norm(matrix, ord=2))
