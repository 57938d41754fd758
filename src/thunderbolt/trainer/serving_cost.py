"""What a trained model will cost to serve, measured on the exported ONNX file.

Reported as metrics with the result, so a search can trade accuracy against them
directly (``spec.objectives``: "accurate and fast") and spectral normalization's effect
on both shows: the file's size, its parameter count (the ONNX initializers, i.e. what is
served, after spectral norm is folded), and onnxruntime's median latency for one row
and for a batch of 32 on CPU with one intra-op thread (one thread so Trials on busy or
differently sized nodes stay comparable; a serving pod with more threads is faster on
large batches, not on these small models).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

RUNS = 300  # timed runs per batch size
WARMUP = 20
BATCH = 32
METRICS = ("model_size_bytes", "parameter_count", "latency_p50_ms", "latency_p50_ms_batch32")


def parameter_count(model: bytes) -> int:
    """Numbers the served graph holds: the sizes of its initializers."""
    graph = onnx.load_from_string(model).graph
    return int(sum(numpy_helper.to_array(t).size for t in graph.initializer))


def _p50_ms(session: ort.InferenceSession, name: str, rows: np.ndarray, runs: int) -> float:
    feed = {name: rows}
    for _ in range(WARMUP):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        began = time.perf_counter_ns()
        session.run(None, feed)
        times.append(time.perf_counter_ns() - began)
    return statistics.median(times) / 1e6


def measure(model: bytes, samples: np.ndarray, runs: int = RUNS) -> dict[str, float]:
    """Size, parameter count and p50 latency (1 row, 32 rows) of ``model`` on ``samples``
    (validation rows, repeated when fewer than 32)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = np.ascontiguousarray(samples, dtype=np.float32)
    batch = np.ascontiguousarray(np.resize(rows, (BATCH, *rows.shape[1:])), dtype=np.float32)
    return {
        "model_size_bytes": float(len(model)),
        "parameter_count": float(parameter_count(model)),
        "latency_p50_ms": _p50_ms(session, name, rows[:1], runs),
        "latency_p50_ms_batch32": _p50_ms(session, name, batch, runs),
    }


def summary(cost: dict[str, float]) -> str:
    return (
        f"serving cost: {cost['model_size_bytes'] / 1024:.1f} KiB, "
        f"{cost['parameter_count']:.0f} parameters, p50 latency "
        f"{cost['latency_p50_ms']:.3f} ms (1 row), {cost['latency_p50_ms_batch32']:.3f} ms "
        f"(32 rows) on CPU, 1 thread"
    )
