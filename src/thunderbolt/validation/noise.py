"""Label-noise candidates: rows whose label disagrees with their nearest neighbours
(and, when a trained model is at hand, with the model's confident prediction and
with a training loss that stayed high).

The neighbours vote with weights 1/sqrt(class frequency), so a rare class's rows are
not outvoted by the common class just for being rare, while one rare neighbour does
not outvote nine common ones either; rows of classes smaller than k+1 cannot be
judged this way and are never flagged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

K_NEIGHBOURS = 10
# share of the nearness-weighted vote in the score (calibrated on the synthetic label-
# noise cases: 0.3 lifts the worst precision@k at 10% noise from 0.79 to 0.83)
NEAR_WEIGHT = 0.3
BLOCK = 256


@dataclasses.dataclass
class NeighbourVotes:
    disagreement: np.ndarray  # [n] weighted share of neighbours voting another class
    majority: np.ndarray  # [n] the neighbours' weighted majority class
    against: np.ndarray  # [n] how many of the k neighbours carry another label
    k: int
    judged: np.ndarray  # [n] bool: the row's class is big enough to judge
    # [n] the same vote with the nearer neighbours weighing more (1/rank): breaks the
    # many ties of ``disagreement`` (it takes only k+1 values)
    near_disagreement: np.ndarray | None = None


def standardize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    return (x - mean) / std


def nearest(z: np.ndarray, k: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, the k nearest rows of rows start..stop, nearest first), in blocks
    so memory stays at BLOCK x n distances (Euclidean on standardized ``z``)."""
    n = len(z)
    sq = (z**2).sum(axis=1)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        d = z[start:stop] @ z.T  # float32, BLOCK x n: the memory bound of the check
        d *= -2.0
        d += sq[start:stop, None]
        d += sq[None, :]
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not your own neighbour
        nbrs = np.argpartition(d, k - 1, axis=1)[:, :k]
        nearest_first = np.argsort(np.take_along_axis(d, nbrs, axis=1), axis=1)
        yield start, stop, np.take_along_axis(nbrs, nearest_first, axis=1)


def neighbour_votes(x: np.ndarray, y: np.ndarray, classes: int,
                    k: int = K_NEIGHBOURS) -> NeighbourVotes:  # fmt: skip
    """The class votes of every row's k nearest neighbours."""
    z = standardize(x)
    y = np.asarray(y, dtype=np.int64)
    n = len(z)
    k = max(1, min(k, n - 1))
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    weight = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
    disagreement = np.zeros(n)
    majority = np.zeros(n, dtype=np.int64)
    against = np.zeros(n, dtype=np.int64)
    near = np.zeros(n)
    rank_weight = 1.0 / np.arange(1, k + 1)
    for start, stop, nbrs in nearest(z, k):
        labels = y[nbrs]  # [b, k]
        cells = (np.arange(stop - start)[:, None] * classes + labels).ravel()
        votes: np.ndarray = np.bincount(cells, weights=weight[labels.ravel()],
                            minlength=(stop - start) * classes).reshape(-1, classes)  # fmt: skip
        votes = votes / votes.sum(axis=1, keepdims=True)
        own = votes[np.arange(stop - start), y[start:stop]]
        disagreement[start:stop] = 1.0 - own
        majority[start:stop] = votes.argmax(axis=1)
        against[start:stop] = (labels != y[start:stop, None]).sum(axis=1)
        w = weight[labels] * rank_weight[None, :]
        near[start:stop] = 1.0 - (w * (labels == y[start:stop, None])).sum(axis=1) / w.sum(axis=1)
    judged = counts[y] >= k + 1
    return NeighbourVotes(disagreement, majority, against, k, judged, near)


@dataclasses.dataclass
class NeighbourResiduals:
    """Regression: how far each row's target is from its neighbours' (robust z-score)."""

    z: np.ndarray  # [n] |y - median of the neighbours' y| / robust scale of those gaps
    expected: np.ndarray  # [n] the neighbours' median target
    k: int


def neighbour_residuals(x: np.ndarray, y: np.ndarray,
                        k: int = K_NEIGHBOURS) -> NeighbourResiduals:  # fmt: skip
    """Targets far from their k nearest neighbours' median, in units of the typical gap
    (1.4826 x the median absolute gap: the standard deviation for Gaussian gaps)."""
    z = standardize(x)
    y = np.asarray(y, dtype=np.float64)
    n = len(z)
    k = max(1, min(k, n - 1))
    expected = np.zeros(n)
    for start, stop, nbrs in nearest(z, k):
        expected[start:stop] = np.median(y[nbrs], axis=1)
    gap = y - expected
    scale = 1.4826 * float(np.median(np.abs(gap - np.median(gap)))) or 1e-12
    return NeighbourResiduals(np.abs(gap) / scale, expected, k)


def noise_scores(votes: NeighbourVotes, *, model_probability: np.ndarray | None = None,
                 loss_rank: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """One suspicion score per row in [0, 1]: the mean of the evidence available.

    ``model_probability``: the trained model's probability of each row's own label;
    ``loss_rank``: each row's mean training-loss percentile (0 lowest, 1 highest).
    """
    parts = [votes.disagreement]
    if votes.near_disagreement is not None:
        parts[0] = (1.0 - NEAR_WEIGHT) * votes.disagreement + NEAR_WEIGHT * votes.near_disagreement
    if model_probability is not None:
        parts.append(1.0 - np.clip(model_probability, 0.0, 1.0))
    if loss_rank is not None:
        parts.append(np.clip(loss_rank, 0.0, 1.0))
    score = np.mean(parts, axis=0)
    return np.where(votes.judged, score, 0.0)
