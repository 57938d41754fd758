"""Rollout outcomes are counted from the events a tick posts, and only the final ones."""

from __future__ import annotations

from prometheus_client import REGISTRY

from thunderbolt.deploy.metrics import observe_event


def _count(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "thunderbolt_rollout_outcomes_total",
        {"namespace": "ns-metrics", "modeldeployment": "md", "outcome": outcome},
    )
    return value or 0.0


def test_outcome_events_are_counted_and_progress_events_are_not():
    before = _count("RolledBack")
    observe_event("ns-metrics", "md", "RolledBack")
    observe_event("ns-metrics", "md", "CanaryStep")
    observe_event("ns-metrics", "md", "NewRevision")
    assert _count("RolledBack") == before + 1
    assert _count("CanaryStep") == 0.0
