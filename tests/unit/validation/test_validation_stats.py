"""The numpy statistics against scipy's (a real reference, not our own numbers)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from thunderbolt.validation import stats


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_ks_matches_scipy(shift: float) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 300), rng.normal(shift, 1, 120)
    d, p = stats.ks_2samp(a, b)
    ref = sp.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=0.15, abs=1e-3)


def test_wasserstein_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.exponential(1.0, 500), rng.normal(2, 0.5, 200)
    assert stats.wasserstein_1d(a, b) == pytest.approx(sp.wasserstein_distance(a, b), rel=1e-9)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    adjusted = sp.false_discovery_control(p, method="bh")
    assert stats.benjamini_hochberg(p, 0.05).tolist() == (adjusted <= 0.05).tolist()
    assert stats.benjamini_hochberg(p, 0.05).sum() == 2


def test_mutual_information_and_effective_rank() -> None:
    y = np.arange(300) % 3
    assert stats.mutual_information(y, y, 3) == pytest.approx(np.log(3))
    assert stats.mutual_information(np.zeros(300, dtype=int), y, 3) == pytest.approx(0.0)
    rng = np.random.default_rng(3)
    line = np.outer(rng.normal(size=200), rng.normal(size=16))
    assert stats.effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    assert stats.effective_rank(rng.normal(size=(2000, 8))) > 7.5
