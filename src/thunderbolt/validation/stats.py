"""Small statistics in numpy alone (the trainer image has no scipy): two-sample
Kolmogorov–Smirnov with its asymptotic p-value, 1-D Wasserstein distance,
Benjamini–Hochberg, entropy, mutual information and effective rank."""

from __future__ import annotations

import math

import numpy as np


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The KS statistic (largest gap between the two empirical CDFs) and its p-value.

    The p-value is the asymptotic Kolmogorov distribution with Stephens' small-sample
    correction, accurate to a few percent for n, m >= 20, which is what a screening
    test needs.
    """
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return 0.0, 1.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / n
    cdf_b = np.searchsorted(b, grid, side="right") / m
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = math.sqrt(n * m / (n + m))
    return d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution."""
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return float(min(1.0, max(0.0, total)))


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two samples: the area between their CDFs."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        return 0.0
    grid = np.sort(np.concatenate([a, b]))
    deltas = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def shift_columns(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ks_2samp``'s statistic and ``wasserstein_1d`` for every column of two finite
    samples [n, d] and [m, d] at once: one stable sort of the stacked columns gives
    both CDFs (ties are read at the last of equal values, as the per-column functions
    do), so wide tables cost one numpy call instead of two sorts per column."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return np.zeros(a.shape[1]), np.zeros(a.shape[1])
    both = np.concatenate([a, b])
    order = np.argsort(both, axis=0, kind="stable")
    grid = np.take_along_axis(both, order, axis=0)
    from_a = order < n
    gap = np.abs(np.cumsum(from_a, axis=0) / n - np.cumsum(~from_a, axis=0) / m)
    last_of_ties = np.ones_like(from_a)
    last_of_ties[:-1] = grid[1:] != grid[:-1]
    ks = np.where(last_of_ties, gap, 0.0).max(axis=0)
    wd = (gap[:-1] * np.diff(grid, axis=0)).sum(axis=0)
    return ks, wd


def ks_p_value(d: float, n: int, m: int) -> float:
    """``ks_2samp``'s p-value for a statistic ``d`` of samples of sizes n and m."""
    en = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def benjamini_hochberg(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses to reject at false-discovery rate ``alpha`` (a boolean mask)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p)
    passed = p[order] <= alpha * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if passed.any():
        last = int(np.max(np.flatnonzero(passed)))
        reject[order[: last + 1]] = True
    return reject


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a histogram."""
    p = np.asarray(counts, dtype=np.float64)
    total = p.sum()
    if total <= 0:
        return 0.0
    p = p[p > 0] / total
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    """I(a; b) in nats for two integer label vectors in [0, classes)."""
    joint = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(joint, (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)), 1.0)
    return entropy(joint.sum(axis=1)) + entropy(joint.sum(axis=0)) - entropy(joint.ravel())


def effective_rank(features: np.ndarray) -> float:
    """exp(entropy of the normalized singular values) of the centred representation
    (Roy & Vetterli 2007): 1 when every row lies on a line, the width when isotropic."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        return 0.0
    x = x - x.mean(axis=0)
    singular = np.linalg.svd(x, compute_uv=False)
    total = singular.sum()
    if not math.isfinite(total) or total <= 1e-12:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(math.exp(-(p * np.log(p)).sum()))
