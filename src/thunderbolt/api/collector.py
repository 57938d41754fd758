"""How a Trial's metrics reach the operator: ``trialTemplate.metricsCollector``.

``Push`` (default): the trainer sends reports to the authenticated endpoint (the SDK, the
built-in trainer, or any HTTP client with the mounted token). ``StdOut``: the operator
follows the training container's log through the API server and parses metric lines.
``File``: the container writes metric lines to ``path``; the kubelet hands the file's last
4 KiB to the operator as the termination message. None needs a sidecar, a webhook or a
change to the user's image.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from thunderbolt.api.common import ApiModel

CollectorKind = Literal["Push", "StdOut", "File"]
# Katib's default metrics format: `name=value` pairs (the value a decimal number).
DEFAULT_LINE_REGEX = r"(?P<name>[A-Za-z_][A-Za-z0-9_.:/-]*)\s*=\s*(?P<value>\S+)"
# A quantified group that itself contains a quantifier, e.g. (a+)+ or (\w*)*: the shape
# of catastrophic backtracking. The operator runs these regexes, so they are refused.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")
_METRIC_NAME = r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$"


class MetricsCollector(ApiModel):
    """Where the operator takes a Trial's reports from (see docs/byo-containers.md)."""

    kind: CollectorKind = "Push"
    path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^/[^\x00]*$",
        description="File only: absolute path of the metrics file inside the training container.",
    )
    format: Literal["KeyValue", "JsonLines"] = Field(
        default="KeyValue",
        description="KeyValue: `name=value` pairs on a line; JsonLines: one JSON object a line.",
    )
    regex: str | None = Field(
        default=None,
        max_length=512,
        description="KeyValue only: a regex with named groups `name` and `value`, "
        "applied to every line in place of the `name=value` default.",
    )
    stepKey: str = Field(
        default="epoch",
        max_length=128,
        pattern=_METRIC_NAME,
        description="The name whose (whole, non-negative) value numbers a report; lines "
        "without it are numbered 1, 2, 3... in the order they appear.",
    )
    metrics: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Names kept besides the objective; empty keeps every well-formed name.",
        json_schema_extra={"items": {"type": "string", "maxLength": 128}},
    )

    @model_validator(mode="after")
    def _check(self) -> MetricsCollector:
        if self.kind == "File" and not self.path:
            raise ValueError("metricsCollector: kind File needs a 'path'")
        if self.kind != "File" and self.path:
            raise ValueError(f"metricsCollector: 'path' is for kind File, not {self.kind}")
        if self.kind == "Push" and (self.regex or self.format != "KeyValue" or self.metrics):
            raise ValueError("metricsCollector: regex/format/metrics apply to StdOut and File")
        if self.regex is not None:
            if self.format != "KeyValue":
                raise ValueError("metricsCollector: 'regex' needs format KeyValue")
            check_line_regex(self.regex)
        for name in self.metrics:
            if not re.match(_METRIC_NAME, name):
                raise ValueError(f"metricsCollector.metrics: {name!r} is not a metric name")
        return self


def check_line_regex(pattern: str) -> re.Pattern[str]:
    """Compile a user's line regex; ValueError says what is wrong with it."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"metricsCollector.regex does not compile: {exc}") from None
    missing = {"name", "value"} - set(compiled.groupindex)
    if missing:
        raise ValueError(f"metricsCollector.regex needs the named groups {sorted(missing)}")
    if _NESTED_QUANTIFIER.search(pattern):
        raise ValueError(
            "metricsCollector.regex has a quantified group containing a quantifier "
            "(catastrophic backtracking); simplify it"
        )
    return compiled
