"""Prometheus metrics of the report endpoint, in the default registry the operator exposes.

Per-Trial series are removed when the Trial stops reporting, so label cardinality stays
bounded by the number of running Trials.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REPORTS = Counter(
    "thunderbolt_reports_total",
    "Trainer reports received, by kind and result (accepted, duplicate, or the error code).",
    ["kind", "result"],
)
INGEST_SECONDS = Histogram(
    "thunderbolt_report_ingest_seconds",
    "Time from request received to reply, per report kind.",
    ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PHASE_SECONDS = Histogram(
    "thunderbolt_report_phase_seconds",
    "Where ingest time goes: admit (auth, limits, parsing), persist (status write), prune.",
    ["phase"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
STATUS_CONFLICTS = Counter(
    "thunderbolt_report_status_conflicts_total",
    "Status writes retried because the Trial changed underneath (another replica, the operator).",
)
WRITE_BEHIND_DROPPED = Counter(
    "thunderbolt_report_points_dropped_total",
    "Acknowledged points that could not be written because their Trial was deleted.",
)
PRUNE_DECISIONS = Counter(
    "thunderbolt_prune_decisions_total",
    "Pruning decisions answered to epoch reports.",
    ["pruner", "decision"],
)
EVENTS_DROPPED = Counter(
    "thunderbolt_report_events_dropped_total",
    "Kubernetes Events not written (queue full or API error); reports are unaffected.",
)
LAST_VALUE = Gauge(
    "thunderbolt_trial_last_reported_value",
    "The latest intermediate objective value a running Trial reported.",
    ["namespace", "experiment", "trial"],
)
LAST_STEP = Gauge(
    "thunderbolt_trial_last_reported_step",
    "The latest step (epoch) a running Trial reported.",
    ["namespace", "experiment", "trial"],
)


def observe_value(namespace: str, experiment: str, trial: str, step: int, value: float) -> None:
    LAST_VALUE.labels(namespace, experiment, trial).set(value)
    LAST_STEP.labels(namespace, experiment, trial).set(step)


def forget_trial(namespace: str, experiment: str, trial: str) -> None:
    for gauge in (LAST_VALUE, LAST_STEP):
        try:
            gauge.remove(namespace, experiment, trial)
        except KeyError:
            pass
