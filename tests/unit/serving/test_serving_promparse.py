"""promparse turns /metrics text into the error rate and p99 canary analysis compares."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from thunderbolt.deploy.promparse import Snapshot, histogram_quantile, snapshot
from thunderbolt.serving.metrics import LATENCY_BUCKETS, ServingMetrics


def _metrics_text(latencies_ms: list[float], codes: dict[str, int], model: str = "iris") -> str:
    metrics = ServingMetrics()
    for ms in latencies_ms:
        metrics.duration.labels(model).observe(ms / 1000.0)
    for code, n in codes.items():
        metrics.requests.labels(model, code).inc(n)
    metrics.requests.labels("other", "500").inc(1000)  # another model's errors never count
    return generate_latest(metrics.registry).decode()


def test_error_rate_counts_5xx_and_optionally_4xx() -> None:
    snap = snapshot(_metrics_text([], {"200": 90, "400": 5, "500": 5}), "iris")
    assert snap.requests == 100
    assert snap.error_rate() == pytest.approx(0.05)
    assert snap.error_rate(include_client_errors=True) == pytest.approx(0.10)


def test_p99_estimate_is_within_the_bucket_that_holds_it() -> None:
    latencies = [1.0] * 980 + [45.0] * 20  # 2% slow: p99 falls among the 45 ms requests
    snap = snapshot(_metrics_text(latencies, {"200": 1000}), "iris")
    assert snap.p99_ms is not None and 40.0 <= snap.p99_ms <= 50.0
    fast = snapshot(_metrics_text([1.0] * 1000, {"200": 1000}), "iris")
    assert fast.p99_ms is not None and fast.p99_ms <= 2.0


def test_window_between_two_scrapes_and_sum_over_pods() -> None:
    before = snapshot(_metrics_text([1.0] * 100, {"200": 100}), "iris")
    after = snapshot(_metrics_text([1.0] * 100 + [90.0] * 50, {"200": 100, "500": 50}), "iris")
    window = after - before
    assert window.requests == 50 and window.error_rate() == 1.0
    assert window.p99_ms is not None and 75.0 <= window.p99_ms <= 100.0
    both = window + before
    assert both.requests == 150 and both.error_rate() == pytest.approx(50 / 150)


def test_a_restarted_pod_counts_from_zero() -> None:
    before = snapshot(_metrics_text([1.0] * 100, {"200": 100}), "iris")
    restarted = snapshot(_metrics_text([1.0] * 3, {"200": 2, "500": 1}), "iris")
    assert (restarted - before).requests == 3


def test_no_traffic_has_no_p99_and_no_errors() -> None:
    snap = snapshot(_metrics_text([], {}), "iris")
    assert snap.requests == 0 and snap.error_rate() == 0.0 and snap.p99_ms is None
    assert snapshot("", "iris") == Snapshot()


def test_histogram_quantile_matches_promql_interpolation() -> None:
    buckets = ((0.01, 50.0), (0.02, 100.0), (float("inf"), 100.0))
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.015)
    assert histogram_quantile(0.99, ((0.01, 10.0), (float("inf"), 20.0))) == 0.01
    with pytest.raises(ValueError):
        histogram_quantile(1.5, buckets)


def test_buckets_are_fine_enough_around_common_slos() -> None:
    assert 0.05 in LATENCY_BUCKETS and 0.1 in LATENCY_BUCKETS
    steps = list(zip(LATENCY_BUCKETS, LATENCY_BUCKETS[1:], strict=False))
    assert max(b - a for a, b in steps if b <= 0.02) <= 0.0025 + 1e-9
    assert max(b - a for a, b in steps if b <= 0.05) <= 0.005 + 1e-9
