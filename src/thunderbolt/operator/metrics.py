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
RECONCILE_QUEUE = Gauge(
    "thunderbolt_reconcile_queue_depth",
    "Experiments waiting for a reconcile (each at most once; operator/workqueue.py).",
)
RECONCILE_QUEUE_WAIT = Histogram(
    "thunderbolt_reconcile_queue_wait_seconds",
    "Time an Experiment waited in the queue before its reconcile started.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
STATUS_SYNC_QUEUE = Gauge(
    "thunderbolt_status_sync_queue_depth",
    "Trials waiting for a status sync from their Job and pods (each at most once).",
)
STATUS_SYNC_QUEUE_WAIT = Histogram(
    "thunderbolt_status_sync_queue_wait_seconds",
    "Time a Trial waited in the queue before its status sync started.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
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
