"""Per-Trial token buckets."""

from __future__ import annotations

import pytest

from thunderbolt.reports.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3.0, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("a")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0


def test_trials_have_separate_buckets():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1.0, clock=clock)
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0
    assert limiter.check("b") == 0.0


def test_bucket_refills_only_up_to_burst():
    clock = Clock()
    limiter = RateLimiter(rate=10.0, burst=2.0, clock=clock)
    limiter.check("a")
    clock.now += 3600
    assert [limiter.check("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_forgets_least_recent_keys_beyond_max():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1.0, max_keys=2, clock=clock)
    limiter.check("a")
    limiter.check("b")
    limiter.check("c")  # evicts "a"
    assert limiter.check("a") == 0.0


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        RateLimiter(rate=0)
