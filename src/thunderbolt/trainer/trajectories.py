"""A small synthetic trajectory dataset, generated in code: ``builtin://trajectories``.

Each sample is a 2-D track of ``steps`` noisy positions of one of four motions, the
kind of data a sequence model (``model: sequence``) is for:

0 straight       constant velocity
1 accelerating   constant acceleration from a slow start
2 turning        constant speed on a circle
3 zigzag         constant speed, heading flipping every few steps

Classification predicts the motion; regression predicts the mean speed. Everything
comes from ``numpy.random.default_rng(seed)``: the same seed gives the same data on
every machine, nothing is downloaded, and Trials of one Experiment share one dataset
(the data seed is fixed, not the Trial's seed).
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("straight", "accelerating", "turning", "zigzag")
CHANNELS = ("x", "y")
DEFAULT_SAMPLES = 1200
DEFAULT_STEPS = 24
DATA_SEED = 20261201


@dataclasses.dataclass
class Trajectories:
    positions: np.ndarray  # [samples, steps, 2] float32
    kind: np.ndarray  # [samples] int64, index into KINDS
    speed: np.ndarray  # [samples] float32, mean distance per step


def generate(samples: int = DEFAULT_SAMPLES, steps: int = DEFAULT_STEPS,
             seed: int = DATA_SEED, noise: float = 0.15) -> Trajectories:  # fmt: skip
    """Balanced classes, shuffled; ``noise`` is the position jitter in distance units."""
    if samples < len(KINDS) or steps < 4:
        raise ValueError(f"need >= {len(KINDS)} samples and >= 4 steps")
    rng = np.random.default_rng(seed)
    kind = rng.permutation(np.arange(samples) % len(KINDS))
    t = np.arange(steps, dtype=np.float64)
    heading = rng.uniform(0, 2 * np.pi, samples)
    speed = rng.uniform(0.5, 1.5, samples)
    start = rng.normal(0.0, 3.0, (samples, 2))
    positions = np.empty((samples, steps, 2))
    for i in range(samples):
        positions[i] = start[i] + _track(int(kind[i]), t, heading[i], speed[i], rng)
    positions += rng.normal(0.0, noise, positions.shape)
    step_lengths = np.linalg.norm(np.diff(positions, axis=1), axis=2)
    return Trajectories(
        positions=positions.astype(np.float32),
        kind=kind.astype(np.int64),
        speed=step_lengths.mean(axis=1).astype(np.float32),
    )


def _track(kind: int, t: np.ndarray, heading: float, speed: float,
           rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    direction = np.array([np.cos(heading), np.sin(heading)])
    if kind == 0:  # straight
        return np.outer(t * speed, direction)
    if kind == 1:  # accelerating: from a fifth of the speed to about twice it
        distance = 0.2 * speed * t + 0.9 * speed * t**2 / t[-1]
        return np.outer(distance, direction)
    if kind == 2:  # turning, either way round, a quarter to a full circle over the track
        rate = rng.uniform(0.5, 2.0) * np.pi / t[-1] * rng.choice([-1.0, 1.0])
        angle = heading + rate * t
        radius = speed / abs(rate)
        center = -radius * np.array([np.cos(heading), np.sin(heading)])
        return center + radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    # zigzag: +-50 degrees around the heading, switching every few steps
    period = int(rng.integers(2, 5))
    sign = np.where((t // period) % 2 == 0, 1.0, -1.0)[:-1]
    angles = heading + sign * np.deg2rad(50)
    moves = speed * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(moves, axis=0)])
