"""Where a training script's TrainerConfig comes from, in a pod or on a laptop.

In a Trial's pod the operator mounts the config and names it in ``THUNDERBOLT_CONFIG``
(``/etc/thunderbolt/trial/config.json``). Elsewhere the script passes a file or plain
keyword arguments. Keyword arguments are defaults: what the operator mounted wins, so
one script runs unchanged in both places.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.meta import describe_errors
from thunderbolt.api.trainer_config import CONFIG_PATH, OUTPUT_DIR, TrainerConfig
from thunderbolt.sdk.errors import InvalidConfig

CONFIG_ENV = "THUNDERBOLT_CONFIG"
OUTPUT_ENV = "THUNDERBOLT_OUTPUT_DIR"
LOCAL_OUTPUT_DIR = "thunderbolt-output"
# the objective of a local run that names none: whatever the script reports as "objective"
LOCAL_OBJECTIVE = {"metric": "objective", "direction": "maximize"}

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | TrainerConfig | None


def load_config(path: str | os.PathLike[str]) -> TrainerConfig:
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        raise InvalidConfig(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        return TrainerConfig.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidConfig(f"invalid config {path}: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    return describe_errors(exc)


def mounted_config_path() -> str | None:
    """The config the operator mounted, when this runs in a Trial's pod."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return named
    return CONFIG_PATH if pathlib.Path(CONFIG_PATH).is_file() else None


def resolve(source: ConfigSource = None, **defaults: Any) -> tuple[TrainerConfig, bool]:
    """The config and whether it came from the operator's mount.

    ``defaults`` are TrainerConfig fields (``parameters``, ``objective``, ``seed``…);
    ``parameters`` merge under the config's own, every other field fills only what the
    config leaves unset.
    """
    mounted = False
    if isinstance(source, TrainerConfig):
        base: dict[str, Any] = source.model_dump(exclude_unset=True)
    elif isinstance(source, Mapping):
        base = dict(source)
    elif source is not None:
        base = load_config(source).model_dump(exclude_unset=True)
    else:
        path = mounted_config_path()
        mounted = path is not None
        base = load_config(path).model_dump(exclude_unset=True) if path else {}
    merged = {k: v for k, v in defaults.items() if v is not None} | base
    merged["parameters"] = {**(defaults.get("parameters") or {}), **base.get("parameters", {})}
    merged.setdefault("objective", LOCAL_OBJECTIVE)
    try:
        return TrainerConfig.model_validate(merged), mounted
    except ValidationError as exc:
        raise InvalidConfig(f"invalid trial config: {_problems(exc)}") from exc


def output_dir(config: TrainerConfig, mounted: bool, explicit: str | None = None) -> pathlib.Path:
    """Explicit, then ``THUNDERBOLT_OUTPUT_DIR``, then the pod's or a local directory."""
    chosen = explicit or os.environ.get(OUTPUT_ENV)
    if chosen:
        return pathlib.Path(chosen)
    if mounted:
        return pathlib.Path(OUTPUT_DIR)
    return pathlib.Path(LOCAL_OUTPUT_DIR) / (config.identity.trial or "local")
