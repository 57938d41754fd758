"""Shared pieces for trainer unit tests: config factories and ONNX inspection."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from thunderbolt.api.trainer_config import TrainerConfig

ConfigFactory = Callable[..., TrainerConfig]

BASE: dict[str, Any] = {
    "identity": {"namespace": "ns", "experiment": "exp", "trial": "exp-001", "uid": "u-1"},
    "task": "classification",
    "dataset": {"uri": "builtin://iris"},
    "epochs": 8,
    "seed": 0,
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
}
REGRESSION: dict[str, Any] = {
    "task": "regression",
    "dataset": {"uri": "builtin://diabetes"},
    "objective": {"metric": "val_r2", "direction": "maximize"},
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_config() -> ConfigFactory:
    """``make_config(regression=False, **fields)`` -> a small, fast TrainerConfig."""

    def make(regression: bool = False, **fields: Any) -> TrainerConfig:
        base = _merge(BASE, REGRESSION) if regression else BASE
        return TrainerConfig.model_validate(_merge(base, fields))

    return make


def linear_weight_singular_values(onnx_path: str) -> list[float]:
    """Largest singular value of every 2-D initializer (the Linear weights)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(onnx_path)
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if len(t.dims) == 2]
    return [float(np.linalg.svd(w, compute_uv=False)[0]) for w in weights]


@pytest.fixture
def singular_values() -> Callable[[str], list[float]]:
    return linear_weight_singular_values


@pytest.fixture(autouse=True)
def one_cpu_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny models train fastest on one thread, and CI machines are shared."""
    monkeypatch.setenv("THUNDERBOLT_CPU_THREADS", "1")
