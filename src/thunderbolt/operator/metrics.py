"""Prometheus metrics of the Experiment/Trial controllers (default registry, /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PHASES = ("pending", "running", "succeeded", "failed", "pruned")

TRIALS = Gauge(
    "thunderbolt_trials",
    "Trials of an Experiment by phase.",
    ["namespace", "experiment", "phase"],
)
TRIALS_CREATED = Counter(
    "thunderbolt_trials_created_total",
    "Trials created by the operator.",
    ["namespace", "experiment"],
)
RECONCILE_SECONDS = Histogram(
    "thunderbolt_reconcile_duration_seconds",
    "Time to reconcile one object (Experiment: list, tell, suggest, create, status).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SUGGEST_SECONDS = Histogram(
    "thunderbolt_suggestion_duration_seconds",
    "Time for the sampler to propose one Trial's parameters.",
    ["sampler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
QUEUE_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _queue_metrics(name: str, items: str, work: str) -> tuple[Gauge, Histogram]:
    """Depth gauge and wait histogram of one key queue (operator/workqueue.py)."""
    depth = Gauge(
        f"thunderbolt_{name}_queue_depth", f"{items} waiting for a {work} (each at most once)."
    )
    wait = Histogram(
        f"thunderbolt_{name}_queue_wait_seconds",
        f"Time one of the {items} waited in the queue before its {work} started.",
        buckets=QUEUE_WAIT_BUCKETS,
    )
    return depth, wait


RECONCILE_QUEUE, RECONCILE_QUEUE_WAIT = _queue_metrics("reconcile", "Experiments", "reconcile")
STATUS_SYNC_QUEUE, STATUS_SYNC_QUEUE_WAIT = _queue_metrics(
    "status_sync", "Trials", "status sync from their Job and pods"
)
ERRORS = Counter(
    "thunderbolt_reconcile_errors_total",
    "Reconciles that failed (retried later).",
    ["kind"],
)


def set_trial_counts(namespace: str, experiment: str, counts: dict[str, int]) -> None:
    for phase in PHASES:
        TRIALS.labels(namespace, experiment, phase).set(counts.get(phase, 0))


def forget_experiment(namespace: str, experiment: str) -> None:
    for phase in PHASES:
        try:
            TRIALS.remove(namespace, experiment, phase)
        except KeyError:
            pass
