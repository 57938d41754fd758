"""How a Trial's parameters reach a container that knows nothing of Thunderbolt.

Three ways, all derived from the one parameters dict: the mounted config file, an env
var ``THUNDERBOLT_PARAM_<NAME>`` per parameter, and Katib's ``${trialParameters.<name>}``
substitution in ``command``/``args``. Pure functions, shared by validation and builders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

ENV_PREFIX = "THUNDERBOLT_PARAM_"
# Katib's syntax; the name part is anything up to the closing brace so that a typo such
# as ${trialParameters.learning-rate} is reported rather than left in the command.
REFERENCE = re.compile(r"\$\{trialParameters\.([^}]*)\}")


def env_name(parameter: str) -> str:
    """``learning_rate`` -> ``THUNDERBOLT_PARAM_LEARNING_RATE`` (non-alphanumerics -> _)."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", parameter.upper())


def format_value(value: Any) -> str:
    """A parameter as command-line text: booleans as true/false, numbers as Python prints them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def references(texts: Iterable[str]) -> list[str]:
    """Every parameter name referenced in ``texts``, in order of appearance."""
    return [m.group(1) for text in texts for m in REFERENCE.finditer(text)]


def unknown_references(texts: Iterable[str], known: Iterable[str]) -> list[str]:
    names = set(known)
    return sorted({ref for ref in references(texts) if ref not in names})


def substitute(text: str, parameters: Mapping[str, Any]) -> str:
    """Replace every ``${trialParameters.<name>}``; KeyError names an unknown parameter."""
    return REFERENCE.sub(lambda m: format_value(parameters[m.group(1)]), text)


def parameter_env(parameters: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"name": env_name(name), "value": format_value(value)}
        for name, value in sorted(parameters.items())
    ]
