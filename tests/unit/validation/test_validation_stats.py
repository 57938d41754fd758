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


def test_shift_columns_matches_the_per_column_statistics() -> None:
    rng = np.random.default_rng(3)
    a = np.round(rng.normal(size=(300, 4)) * 2)  # many ties, as pixel values have
    b = np.round(rng.normal(0.4, 1.0, size=(120, 4)) * 2)
    a[:, 3], b[:, 3] = rng.normal(size=300), rng.normal(1.0, 1.0, size=120)
    ks, wd = stats.shift_columns(a, b)
    for j in range(4):
        assert ks[j] == pytest.approx(stats.ks_2samp(a[:, j], b[:, j])[0])
        assert wd[j] == pytest.approx(stats.wasserstein_1d(a[:, j], b[:, j]))
    assert stats.ks_p_value(float(ks[3]), 300, 120) == pytest.approx(
        stats.ks_2samp(a[:, 3], b[:, 3])[1]
    )


def test_nearer_neighbours_break_ties_between_equal_votes() -> None:
    from thunderbolt.validation.noise import neighbour_votes

    # rows 0 and 1 each have 1 of 2 neighbours against them; row 0's nearest is against
    x = np.array([[0.0], [10.0], [0.1], [-0.5], [10.1], [9.5], [5.0], [20.0]])
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    votes = neighbour_votes(x, y, 2, k=2)
    assert votes.disagreement[0] == pytest.approx(votes.disagreement[1])
    assert votes.near_disagreement is not None
    assert votes.near_disagreement[0] > votes.near_disagreement[1]
