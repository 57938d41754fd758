"""Canary analysis from the serving pods' own ``/metrics``: no Prometheus server needed.

The controller GETs ``/metrics`` from every ready canary pod, parses each with
``thunderbolt.deploy.promparse.snapshot``, adds the pods together and compares the error
rate and the p99 latency with ``spec.strategy.analysis``. Counters are cumulative since
the pod started, and canary pods start with the canary, so the numbers cover the canary's
whole life (a restarted pod starts counting again). An error is a 5xx answer; 4xx
answers are the client's fault and do not count against the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from thunderbolt.api.modeldeployment import Analysis
from thunderbolt.deploy.promparse import Snapshot, snapshot


def parse(texts: Iterable[str], model: str) -> Snapshot:
    """All canary pods' ``/metrics`` texts -> one Snapshot of ``model``."""
    total = Snapshot()
    for text in texts:
        total = total + snapshot(text, model)
    return total


@dataclasses.dataclass(frozen=True)
class Verdict:
    """``passed`` None: not enough requests yet to judge."""

    passed: bool | None
    reason: str
    message: str


def judge(sample: Snapshot, limits: Analysis) -> Verdict:
    seen = f"{sample.requests:.0f} requests"
    if sample.requests < limits.minRequests:  # minRequests 0: judge whatever came, even nothing
        return Verdict(None, "NotEnoughRequests", f"{seen}, need {limits.minRequests}")
    rate = sample.error_rate()
    if rate > limits.maxErrorRate:
        return Verdict(
            False,
            "ErrorRateTooHigh",
            f"error rate {rate:.1%} over {seen} exceeds {limits.maxErrorRate:.1%}",
        )
    p99 = sample.p99_ms
    if p99 is not None and p99 > limits.maxLatencyP99Ms:
        return Verdict(
            False,
            "LatencyTooHigh",
            f"p99 latency {p99:.1f} ms over {seen} exceeds {limits.maxLatencyP99Ms:g} ms",
        )
    p99_text = f", p99 {p99:.1f} ms" if p99 is not None else ""
    return Verdict(True, "AnalysisPassed", f"error rate {rate:.1%}{p99_text} over {seen}")
