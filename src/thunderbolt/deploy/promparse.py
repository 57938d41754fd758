"""Read an inference pod's /metrics text into what canary analysis needs.

Pure functions, no I/O: the ModelDeployment controller fetches the text of each pod,
calls ``snapshot`` on it, subtracts the snapshot taken when the step began (counters
are cumulative since the pod started), adds the pods of one revision together, and
compares ``error_rate`` and ``p99_ms`` with the analysis limits::

    before = snapshot(text_at_step_start, "iris")
    now = snapshot(text_now, "iris")
    window = now - before
    if window.requests >= min_requests and (window.error_rate > 0.01 or window.p99_ms > 50): ...

The p99 is estimated from histogram buckets the way PromQL's ``histogram_quantile`` does.
"""

from __future__ import annotations

import dataclasses
import math

from prometheus_client.parser import text_string_to_metric_families

from thunderbolt.api.serving import METRIC_DURATION as DURATION
from thunderbolt.api.serving import METRIC_REQUESTS as REQUESTS


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Cumulative request counts by status code and latency buckets of one model."""

    by_code: dict[str, float] = dataclasses.field(default_factory=dict)
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound s, cumulative count), sorted

    @property
    def requests(self) -> float:
        return sum(self.by_code.values())

    @property
    def server_errors(self) -> float:
        """5xx answers: the model or the server failed."""
        return sum(v for code, v in self.by_code.items() if code.startswith("5"))

    @property
    def client_errors(self) -> float:
        """4xx answers: malformed requests (or a model whose inputs changed)."""
        return sum(v for code, v in self.by_code.items() if code.startswith("4"))

    def error_rate(self, *, include_client_errors: bool = False) -> float:
        """Failed / all requests; 0.0 when there were none."""
        total = self.requests
        if not total:
            return 0.0
        errors = self.server_errors + (self.client_errors if include_client_errors else 0.0)
        return errors / total

    def quantile(self, q: float) -> float | None:
        """Latency quantile in seconds, or None without observations."""
        return histogram_quantile(q, self.buckets)

    @property
    def p99_ms(self) -> float | None:
        p99 = self.quantile(0.99)
        return None if p99 is None else p99 * 1000.0

    def __add__(self, other: Snapshot) -> Snapshot:
        """Two pods together."""
        codes = {
            c: self.by_code.get(c, 0.0) + other.by_code.get(c, 0.0)
            for c in {*self.by_code, *other.by_code}
        }
        return Snapshot(codes, _merge(self.buckets, other.buckets, +1.0))

    def __sub__(self, earlier: Snapshot) -> Snapshot:
        """What happened since ``earlier``; a counter reset (pod restart) yields ``self``."""
        codes = {c: v - earlier.by_code.get(c, 0.0) for c, v in self.by_code.items()}
        buckets = _merge(self.buckets, earlier.buckets, -1.0)
        if any(v < 0 for v in codes.values()) or any(v < 0 for _, v in buckets):
            return self
        if set(earlier.by_code) - set(self.by_code):
            return self
        return Snapshot(codes, buckets)


def _merge(
    a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...], sign: float
) -> tuple[tuple[float, float], ...]:
    if not b:
        return a
    if not a:
        return tuple((le, sign * v) for le, v in b)
    bounds = dict(a)
    other = dict(b)
    if set(bounds) != set(other):
        raise ValueError("histograms with different bucket bounds cannot be combined")
    return tuple((le, bounds[le] + sign * other[le]) for le in sorted(bounds))


def histogram_quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float | None:
    """PromQL's estimate: linear interpolation inside the bucket holding rank ``q * total``."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank and count > lower_count:
            if math.isinf(upper_bound):
                return lower_bound  # the highest finite bound is the best we know
            fraction = (rank - lower_count) / (count - lower_count)
            return lower_bound + (upper_bound - lower_bound) * fraction
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def snapshot(text: str, model: str) -> Snapshot:
    """Parse Prometheus text exposition; raises ValueError on text that is not one."""
    by_code: dict[str, float] = {}
    buckets: dict[float, float] = {}
    requests_family = REQUESTS.removesuffix("_total")
    for family in text_string_to_metric_families(text):
        if family.name not in (requests_family, DURATION):
            continue
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name == REQUESTS:
                code = sample.labels.get("code", "")
                by_code[code] = by_code.get(code, 0.0) + sample.value
            elif sample.name == DURATION + "_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Snapshot(by_code, tuple(sorted(buckets.items())))
