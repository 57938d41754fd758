"""Live reports to the operator: start, per-epoch metrics, stop.

``Trial`` (and so the built-in trainer) only knows this Protocol; tests and embedders
pass their own. The HTTP client that talks to the operator is
``thunderbolt.sdk.reporter``; without ``config.report`` reports go nowhere and training
is unaffected.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from thunderbolt.api.trainer_config import TrainerConfig, TrainResult
from thunderbolt.sdk.reporter import HttpReporter

log = logging.getLogger(__name__)


@runtime_checkable
class TrainingReporter(Protocol):
    def start(self) -> None: ...

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        """Report one epoch; True means the operator wants the run pruned now."""
        ...

    def stop(self, result: TrainResult) -> None: ...


class NoopReporter:
    """Reports nothing and never prunes."""

    def start(self) -> None:
        return None

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        return False

    def stop(self, result: TrainResult) -> None:
        return None


def make_reporter(config: TrainerConfig) -> TrainingReporter:
    """The HTTP reporter when ``config.report`` is set, else no-op."""
    if config.report is None:
        return NoopReporter()
    return HttpReporter(config)


class GuardedReporter:
    """A reporter whose failures are logged, never fatal: reports are advisory."""

    def __init__(self, inner: TrainingReporter) -> None:
        self.inner = inner

    def start(self) -> None:
        try:
            self.inner.start()
        except Exception as exc:  # the operator being unreachable must not stop training
            log.warning("live report (start) failed: %s", exc)

    def epoch(self, step: int, metrics: dict[str, float]) -> bool:
        try:
            return bool(self.inner.epoch(step, metrics))
        except Exception as exc:
            log.warning("live report (epoch %d) failed: %s", step, exc)
            return False

    def stop(self, result: TrainResult) -> None:
        try:
            self.inner.stop(result)
        except Exception as exc:
            log.warning("live report (stop) failed: %s", exc)
