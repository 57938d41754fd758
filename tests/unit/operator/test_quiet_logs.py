"""Kopf's per-object logger: routine timer and event-handler successes are dropped,
everything else kept."""

from __future__ import annotations

import logging

import kopf
import pytest

from thunderbolt.main import quiet_routine_logs


@pytest.fixture
def kopf_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    quiet_routine_logs()
    quiet_routine_logs()  # idempotent: one filter, not two
    caplog.set_level(logging.INFO)
    body = {"metadata": {"name": "md", "namespace": "ns", "uid": "u"}}
    logger = kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings())
    logger.info("Timer 'rollout' succeeded.")
    logger.info("Handler 'create_fn' succeeded.")
    logger.info("Handler 'pod_event' succeeded.")
    logger.info("Handler 'trial_event' succeeded.")
    logger.error("Handler 'pod_event' failed with an exception. Will retry.")
    logger.error("Timer 'rollout' failed with an exception. Will retry.")
    return [r for r in caplog.records if r.name == "kopf.objects"]


def test_timer_successes_are_dropped_and_the_rest_kept(
    kopf_records: list[logging.LogRecord],
) -> None:
    messages = [r.getMessage() for r in kopf_records]
    assert messages == [
        "Handler 'create_fn' succeeded.",
        "Handler 'pod_event' failed with an exception. Will retry.",
        "Timer 'rollout' failed with an exception. Will retry.",
    ]
    filters = logging.getLogger("kopf.objects").filters
    assert sum(type(f).__name__ == "QuietRoutineSuccesses" for f in filters) == 1


def test_the_routine_names_are_the_operators_watch_event_handlers() -> None:
    import thunderbolt.operator.handlers as handlers
    from thunderbolt.main import ROUTINE_EVENT_HANDLERS

    registry = kopf.get_default_registry()
    watching = {h.fn.__name__ for h in registry._watching.get_all_handlers()}
    for name in ROUTINE_EVENT_HANDLERS:
        assert callable(getattr(handlers, name)) and name in watching
