"""Prometheus metrics of the ModelDeployment controller (default registry, operator /metrics).

Counted from the events a tick posts, so the Grafana "rollout outcomes" panel and the
rollback alert see exactly what ``kubectl describe`` shows.
"""

from __future__ import annotations

from prometheus_client import Counter

# Event reasons that end a revision's rollout (see ``thunderbolt.deploy.rollout``).
OUTCOMES = ("Promoted", "RolledBack", "RolloutAbandoned", "Refused")

ROLLOUT_OUTCOMES = Counter(
    "thunderbolt_rollout_outcomes_total",
    "Rollouts that ended, by outcome (Promoted, RolledBack, RolloutAbandoned, Refused).",
    ["namespace", "modeldeployment", "outcome"],
)


def observe_event(namespace: str, name: str, reason: str) -> None:
    if reason in OUTCOMES:
        ROLLOUT_OUTCOMES.labels(namespace, name, reason).inc()
