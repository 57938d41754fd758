"""Hyperparameters resolved from a Trial's parameters over the config's defaults.

Parameters come from Optuna through JSON and Kubernetes labels, so categorical values
can arrive as strings ("true", "64", "1e-3"); they are coerced here, once, and a value
that cannot be coerced fails the run as ``InvalidConfig`` instead of training the
wrong model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from thunderbolt.api.trainer_config import ParameterValue, TrainerConfig
from thunderbolt.sdk.errors import InvalidConfig
from thunderbolt.sdk.params import coerce

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class HyperParams:
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    activation: str = "relu"
    spectral_norm: bool = False
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    batch_size: int = 32
    epochs: int = 20

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: ParameterValue, kind: type) -> Any:
    coerced = coerce(name, value, kind)
    return coerced.strip().lower() if kind is str else coerced


def resolve(config: TrainerConfig) -> HyperParams:
    """Defaults, then the config's epochs/batchSize, then the Trial's parameters."""
    fields = {f.name: f for f in dataclasses.fields(HyperParams)}
    kinds: dict[str, type] = {
        "hidden_dim": int,
        "num_layers": int,
        "batch_size": int,
        "epochs": int,
    }
    kinds |= {"dropout": float, "learning_rate": float, "weight_decay": float}
    kinds |= {"spectral_norm": bool, "activation": str, "optimizer": str}
    values: dict[str, Any] = {"batch_size": config.batchSize, "epochs": config.epochs}
    for name, raw in config.parameters.items():
        if name in fields:
            values[name] = _coerce(name, raw, kinds[name])
    hp = HyperParams(**values)
    _validate(hp)
    return hp


def _validate(hp: HyperParams) -> None:
    problems = []
    if hp.activation not in ACTIVATIONS:
        problems.append(f"activation must be one of {', '.join(ACTIVATIONS)}, got {hp.activation}")
    if hp.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {hp.optimizer}")
    if hp.hidden_dim < 1:
        problems.append(f"hidden_dim must be >= 1, got {hp.hidden_dim}")
    if hp.num_layers < 0:
        problems.append(f"num_layers must be >= 0, got {hp.num_layers}")
    if not 0.0 <= hp.dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {hp.dropout}")
    if hp.learning_rate <= 0:
        problems.append(f"learning_rate must be > 0, got {hp.learning_rate}")
    if hp.weight_decay < 0:
        problems.append(f"weight_decay must be >= 0, got {hp.weight_decay}")
    if hp.batch_size < 1:
        problems.append(f"batch_size must be >= 1, got {hp.batch_size}")
    if hp.epochs < 1:
        problems.append(f"epochs must be >= 1, got {hp.epochs}")
    if problems:
        raise InvalidConfig("; ".join(problems))
