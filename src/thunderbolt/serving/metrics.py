"""Prometheus metrics of the inference server, in a registry of its own.

The ModelDeployment controller reads ``REQUESTS`` and ``DURATION`` from each pod's
``/metrics`` to judge a canary (see ``thunderbolt.deploy.promparse``), so these names
are part of the serving contract in ``thunderbolt.api.serving``.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from thunderbolt.api.serving import METRIC_DURATION as DURATION
from thunderbolt.api.serving import METRIC_REQUESTS as REQUESTS

# Set (by ``thunderbolt.serving.workers``) when several worker processes share the port:
# each writes its metrics to files there, and /metrics in any worker adds all of them up,
# so a scrape of the pod sees the pod's totals whichever worker answers.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

BATCH_SIZE = "thunderbolt_inference_batch_size"
LOAD_SECONDS = "thunderbolt_model_load_seconds"
CHECKSUM_FAILURES = "thunderbolt_model_checksum_failures_total"
MODEL_READY = "thunderbolt_model_ready"

# Fine enough around typical SLOs (5-100 ms) to estimate a p99 within a few ms.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025,
    0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # What /metrics exposes: this process's registry, or every worker's files.
        self.exposition = self.registry
        if os.environ.get(MULTIPROC_DIR_ENV):
            from prometheus_client.multiprocess import MultiProcessCollector

            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition)
        # prometheus_client appends _total itself; give it the bare name.
        self.requests = Counter(
            REQUESTS.removesuffix("_total"),
            "Inference requests by model and HTTP status code.",
            ["model", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            DURATION,
            "Inference request latency, body read to response written.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            BATCH_SIZE,
            "Rows per onnxruntime call (several requests when dynamic batching merges them).",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            LOAD_SECONDS,
            "Seconds spent fetching, verifying and loading the model.",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.checksum_failures = Counter(
            CHECKSUM_FAILURES.removesuffix("_total"),
            "Model artifacts whose sha256 did not match the expected checksum.",
            ["model"],
            registry=self.registry,
        )
        self.ready = Gauge(
            MODEL_READY,
            "1 while the model is loaded, verified and serving.",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemin",  # ready only when every worker is
        )
