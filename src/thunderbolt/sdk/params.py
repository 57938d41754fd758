"""A Trial's parameters with typed accessors.

Values reach the pod as JSON from Optuna, so a float stays a float and an int an int;
categorical values can still arrive as strings ("true", "64", "1e-3") when a user's
search space says so. The accessors coerce once and fail as ``InvalidConfig`` naming
the parameter, instead of training the wrong model.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from thunderbolt.api.trainer_config import ParameterValue
from thunderbolt.sdk.errors import InvalidConfig

T = TypeVar("T")
_MISSING: Any = object()


def to_bool(value: ParameterValue) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def to_int(value: ParameterValue) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def to_float(value: ParameterValue) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def coerce(name: str, value: ParameterValue, kind: type) -> Any:
    """``value`` as ``kind`` (bool, int, float or str); ``InvalidConfig`` when it is not one."""
    try:
        if kind is bool:
            return to_bool(value)
        if kind is int:
            return to_int(value)
        if kind is float:
            return to_float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(f"parameter {name}: {exc}") from exc
    raise TypeError(f"unsupported parameter type {kind!r}")


class Parameters(Mapping[str, ParameterValue]):
    """Read-only mapping of the Trial's parameters; ``float()``, ``int()``… coerce."""

    def __init__(self, values: Mapping[builtins.str, ParameterValue]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: builtins.str) -> ParameterValue:
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise KeyError(f"no parameter {name!r} in this Trial (parameters: {known})") from None

    def __iter__(self) -> Iterator[builtins.str]:
        return iter(self._values)

    def __len__(self) -> builtins.int:
        return len(self._values)

    def __repr__(self) -> builtins.str:
        return f"Parameters({self._values!r})"

    def _typed(self, name: builtins.str, kind: type[T], default: Any) -> T:
        if name not in self._values:
            if default is _MISSING:
                self[name]  # raises the KeyError that lists what there is
            return default  # type: ignore[no-any-return]
        value: T = coerce(name, self._values[name], kind)
        return value

    def float(self, name: builtins.str, default: Any = _MISSING) -> builtins.float:
        return self._typed(name, builtins.float, default)

    def int(self, name: builtins.str, default: Any = _MISSING) -> builtins.int:
        return self._typed(name, builtins.int, default)

    def bool(self, name: builtins.str, default: Any = _MISSING) -> builtins.bool:
        return self._typed(name, builtins.bool, default)

    def str(self, name: builtins.str, default: Any = _MISSING) -> builtins.str:
        return self._typed(name, builtins.str, default)

    def as_dict(self) -> dict[builtins.str, ParameterValue]:
        return dict(self._values)
