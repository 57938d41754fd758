"""Metric lines -> numbered samples: pure, bounded, and never raises on input.

One ``LineParser`` per container stream. A line is a report when it carries the
objective metric; its step is the ``stepKey`` value when the line has one, else one more
than the previous report's. Everything else is counted, never fatal: malformed pairs,
non-finite values, names outside ``metricsCollector.metrics``, over-long lines, steps
that go backwards. Lines without any metric syntax (ordinary program output) are read and
ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from thunderbolt.api.collector import DEFAULT_LINE_REGEX, MetricsCollector, check_line_regex

MAX_LINE_CHARS = 4096
MAX_METRICS = 64  # the report schema's bound
MAX_STEP = 10_000_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")
_DEFAULT = re.compile(DEFAULT_LINE_REGEX)

# Skip causes (keys of CollectorStatus.skipped) that mean "look at your output".
MALFORMED, NON_FINITE, UNKNOWN, TOO_LONG, BACKWARDS, TOO_MANY = (
    "malformed",
    "nonFinite",
    "unknownMetric",
    "tooLong",
    "stepBackwards",
    "tooManyMetrics",
)


@dataclass(frozen=True)
class Sample:
    """One report: its step, the objective's value and every kept metric."""

    step: int
    value: float
    metrics: dict[str, float]


@dataclass
class LineParser:
    objective: str
    collector: MetricsCollector = field(default_factory=MetricsCollector)
    lines: int = 0
    reports: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    last_step: int = 0
    last: Sample | None = None

    def __post_init__(self) -> None:
        c = self.collector
        self._regex = check_line_regex(c.regex) if c.regex else _DEFAULT
        self._json = c.format == "JsonLines"
        self._keep = set(c.metrics) | {self.objective, c.stepKey} if c.metrics else None

    def feed(self, line: str) -> Sample | None:
        """The sample ``line`` makes, or None. Problems are counted on lines that name the
        objective (a report gone wrong), not on ordinary output such as ``device=cpu``."""
        self.lines += 1
        if len(line) > MAX_LINE_CHARS:
            self.skipped[TOO_LONG] += 1
            return None
        pairs = self._json_pairs(line) if self._json else self._kv_pairs(line)
        if not any(name == self.objective for name, _ in pairs):
            return None  # ordinary output, or metrics of another kind (train_loss...)
        metrics: dict[str, float] = {}
        for name, raw in pairs:
            number = self._number(name, raw)
            if number is not None:
                metrics[name] = number
        if self.objective not in metrics:
            return None
        step = self._step(metrics.pop(self.collector.stepKey, None))
        if step is None:
            return None
        if len(metrics) > MAX_METRICS:
            self.skipped[TOO_MANY] += 1
            kept = sorted(metrics)[: MAX_METRICS - 1]
            metrics = {k: metrics[k] for k in kept} | {self.objective: metrics[self.objective]}
        sample = Sample(step, metrics[self.objective], metrics)
        self.last_step, self.last = step, sample
        self.reports += 1
        return sample

    def feed_text(self, text: str) -> list[Sample]:
        """Every sample in ``text`` (a whole file or termination message)."""
        out = []
        for line in text.splitlines():
            sample = self.feed(line)
            if sample is not None:
                out.append(sample)
        return out

    # --- helpers -----------------------------------------------------------------------
    def _kv_pairs(self, line: str) -> list[tuple[str, object]]:
        return [(m.group("name"), m.group("value")) for m in self._regex.finditer(line)]

    def _json_pairs(self, line: str) -> list[tuple[str, object]]:
        text = line.strip()
        if not text.startswith("{"):
            return []
        try:
            data = json.loads(text)
        except ValueError:
            self.skipped[MALFORMED] += 1
            return []
        if not isinstance(data, dict):
            self.skipped[MALFORMED] += 1
            return []
        return list(data.items())

    def _number(self, name: str, raw: object) -> float | None:
        if not _NAME.match(name):
            self.skipped[MALFORMED] += 1
            return None
        if self._keep is not None and name not in self._keep:
            self.skipped[UNKNOWN] += 1
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            self.skipped[MALFORMED] += 1
            return None
        try:
            number = float(raw.strip().rstrip(",;") if isinstance(raw, str) else raw)
        except ValueError:
            self.skipped[MALFORMED] += 1
            return None
        if not math.isfinite(number):
            self.skipped[NON_FINITE] += 1
            return None
        return number

    def _step(self, given: float | None) -> int | None:
        if given is None:
            step = self.last_step + 1
        elif given != int(given) or not 0 <= given <= MAX_STEP:
            self.skipped[MALFORMED] += 1
            return None
        else:
            step = int(given)
        if step <= self.last_step and self.last is not None or step > MAX_STEP:
            self.skipped[BACKWARDS] += 1
            return None
        return step

    def problems(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.skipped.items()) if v}

    def summary(self) -> str:
        """``3 malformed, 1 nonFinite`` (empty when nothing was skipped)."""
        return ", ".join(f"{n} {k}" for k, n in self.problems().items())
