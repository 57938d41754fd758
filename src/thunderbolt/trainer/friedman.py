"""Friedman's first regression problem, generated in code: ``builtin://friedman1``.

Friedman (1991, "Multivariate adaptive regression splines"), the problem behind
scikit-learn's ``make_friedman1``::

    y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise,   x ~ U[0, 1]^d

Only x1..x5 matter; the other ``features - 5`` columns are irrelevant, and the noise is
Gaussian (std ``noise``). It is a regression set with headroom where scikit-learn's
bundled diabetes has none: an interaction, a curvature, distractor columns and a known
noise floor (the best possible R² is ``1 - noise² / var(y)``, about 0.96 with the
defaults), so hyperparameters move the result and a search has something to find.

Everything comes from ``numpy.random.default_rng(seed)`` with a fixed seed, so every
Trial and machine sees the same table and nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_SAMPLES = 1000
DEFAULT_FEATURES = 10  # x1..x5 relevant, x6..x10 irrelevant
DEFAULT_NOISE = 1.0
DATA_SEED = 20261201
RELEVANT = 5


def generate(samples: int = DEFAULT_SAMPLES, features: int = DEFAULT_FEATURES,
             noise: float = DEFAULT_NOISE, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Features ``[samples, features]`` uniform on [0, 1] and the noisy target ``[samples]``."""
    if features < RELEVANT or samples < 2 or noise < 0:
        raise ValueError(f"need >= {RELEVANT} features, >= 2 samples and noise >= 0")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (samples, features))
    y = clean_target(x) + rng.normal(0.0, noise, samples)
    return x, y


def clean_target(x: np.ndarray) -> np.ndarray:
    """Friedman #1 without noise (what a perfect model predicts)."""
    return (
        10.0 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20.0 * (x[:, 2] - 0.5) ** 2
        + 10.0 * x[:, 3]
        + 5.0 * x[:, 4]
    )


def frame(target: str = "target") -> pd.DataFrame:
    """The table the trainer reads (the defaults): columns ``x1``..``x10`` and ``target``."""
    x, y = generate()
    table = pd.DataFrame(x, columns=[f"x{i + 1}" for i in range(x.shape[1])])
    table[target] = y
    return table
