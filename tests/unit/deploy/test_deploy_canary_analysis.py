"""Canary pod split, step decisions, and analysis verdicts from real /metrics text."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from thunderbolt.api.modeldeployment import Analysis, CanaryStep
from thunderbolt.deploy.analysis import judge, parse
from thunderbolt.deploy.canary import split_replicas, step_decision
from thunderbolt.serving.metrics import ServingMetrics


@pytest.mark.parametrize(
    ("replicas", "weight", "stable", "canary"),
    [
        (9, 10, 9, 1),  # exact: 10 %
        (1, 10, 1, 1),  # one stable pod: the canary gets 50 %
        (2, 10, 2, 1),
        (4, 50, 4, 4),
        (4, 25, 4, 1),
        (2, 90, 1, 2),
        (3, 100, 1, 3),  # stable keeps one pod until promotion
    ],
)
def test_split_by_pod_counts(replicas, weight, stable, canary):
    split = split_replicas(replicas, weight)
    assert (split.stable, split.canary) == (stable, canary)


def test_effective_weight_is_the_ratio_of_pods():
    assert split_replicas(9, 10).effective_weight == pytest.approx(10.0)
    assert split_replicas(1, 10).effective_weight == pytest.approx(50.0)


def test_split_never_exceeds_twice_the_replicas_and_keeps_a_stable_pod():
    for replicas in range(1, 12):
        for weight in range(1, 101):
            split = split_replicas(replicas, weight)
            assert split.stable >= 1 and split.canary >= 1
            assert split.stable + split.canary <= 2 * replicas


STEPS = [CanaryStep(weight=10, pauseSeconds=30), CanaryStep(weight=50, pauseSeconds=0)]


def test_step_waits_for_readiness_then_pause_then_analysis():
    assert (
        step_decision(STEPS, 0, ready=False, seconds_in_step=None, analysis_ok=None).action
        == "wait"
    )
    assert (
        step_decision(STEPS, 0, ready=True, seconds_in_step=10, analysis_ok=True).action == "wait"
    )
    assert (
        step_decision(STEPS, 0, ready=True, seconds_in_step=31, analysis_ok=False).action == "wait"
    )
    advance = step_decision(STEPS, 0, ready=True, seconds_in_step=31, analysis_ok=True)
    assert (advance.action, advance.next_step) == ("advance", 1)
    assert (
        step_decision(STEPS, 0, ready=True, seconds_in_step=31, analysis_ok=None).action
        == "advance"
    )
    assert (
        step_decision(STEPS, 1, ready=True, seconds_in_step=0, analysis_ok=True).action == "promote"
    )


def metrics_text(ok: int, errors: int, seconds: float, model: str = "iris") -> str:
    m = ServingMetrics()
    for _ in range(ok):
        m.requests.labels(model, "200").inc()
        m.duration.labels(model).observe(seconds)
    for _ in range(errors):
        m.requests.labels(model, "500").inc()
        m.duration.labels(model).observe(seconds)
    m.requests.labels(model, "400").inc(0)
    return generate_latest(m.registry).decode()


LIMITS = Analysis(maxErrorRate=0.05, maxLatencyP99Ms=50, minRequests=20)


def test_not_enough_requests_is_no_verdict():
    verdict = judge(parse([metrics_text(5, 5, 0.001)], "iris"), LIMITS)
    assert verdict.passed is None and verdict.reason == "NotEnoughRequests"


def test_healthy_canary_passes():
    verdict = judge(parse([metrics_text(30, 0, 0.004), metrics_text(30, 1, 0.004)], "iris"), LIMITS)
    assert verdict.passed is True, verdict


def test_errors_over_the_limit_fail_summed_over_pods():
    verdict = judge(
        parse([metrics_text(20, 0, 0.004), metrics_text(10, 10, 0.004)], "iris"), LIMITS
    )
    assert verdict.passed is False and verdict.reason == "ErrorRateTooHigh"
    assert "25.0% over 40 requests" in verdict.message


def test_slow_canary_fails_on_p99():
    verdict = judge(parse([metrics_text(40, 0, 0.2)], "iris"), LIMITS)
    assert verdict.passed is False and verdict.reason == "LatencyTooHigh"


def test_other_models_series_are_ignored():
    verdict = judge(parse([metrics_text(40, 40, 0.2, model="other")], "iris"), LIMITS)
    assert verdict.passed is None


def test_min_requests_zero_judges_even_an_idle_canary():
    idle = parse([metrics_text(0, 0, 0.001)], "iris")
    assert judge(idle, Analysis(minRequests=0)).passed is True
    assert judge(idle, Analysis(minRequests=1)).passed is None
