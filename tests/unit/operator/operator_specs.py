"""Experiment specs for the operator's unit tests."""

from __future__ import annotations

import copy
from typing import Any

from thunderbolt.api.experiment import ExperimentSpec, parse_spec

BASE: dict[str, Any] = {
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
    "algorithm": {"name": "tpe", "seed": 7},
    "maxTrials": 6,
    "parallelTrials": 2,
    "maxFailedTrials": 2,
    "parameters": [
        {"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        {"name": "hidden_dim", "type": "int", "low": 16, "high": 128, "step": 16},
        {"name": "activation", "type": "categorical", "choices": ["relu", "gelu", "silu"]},
        {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
    ],
    "trialTemplate": {
        "image": "thunderbolt-trainer:0.1.0",
        "dataset": {"uri": "builtin://iris"},
        "epochs": 5,
        "resources": {"cpu": "500m", "memory": "256Mi"},
    },
}


def raw(**changes: Any) -> dict[str, Any]:
    """BASE with top-level (or dotted 'a.b') keys replaced."""
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def spec(**changes: Any) -> ExperimentSpec:
    return parse_spec(raw(**changes))
