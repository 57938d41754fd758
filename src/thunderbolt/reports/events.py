"""Kubernetes Events on the Trial for training start, (sampled) epochs and stop.

Events are written off the request path by a bounded background queue: a slow API server
delays events, never reports, and a full queue drops events (counted), never reports.
Names are deterministic per (Trial uid, reason, step), so a repeated report or a second
replica creating the same Event gets "already exists" instead of a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from datetime import datetime
from typing import Any

from thunderbolt.api.meta import GROUP, event_body
from thunderbolt.reports import metrics
from thunderbolt.reports.store import TrialStore

log = logging.getLogger(__name__)
COMPONENT = "thunderbolt-reports"


def event_name(trial: dict[str, Any], reason: str, step: int) -> str:
    meta = trial["metadata"]
    uid = str(meta.get("uid", ""))[:8]
    suffix = f".{uid}.{reason.lower()}.{step}"
    name = meta["name"]
    if len(name) + len(suffix) > 253:
        name = hashlib.sha256(name.encode()).hexdigest()[:16]
    return name + suffix


def build_event(
    trial: dict[str, Any],
    reason: str,
    message: str,
    *,
    step: int,
    now: datetime | None = None,
    event_type: str = "Normal",
) -> dict[str, Any]:
    """A core/v1 Event about ``trial``."""
    return event_body(
        {**trial, "kind": "Trial"}, reason, message, name=event_name(trial, reason, step),
        warning=event_type == "Warning", now=now, component=COMPONENT,
        reporting_component=f"{GROUP}/reports", instance=socket.gethostname(),
    )  # fmt: skip


def sample_epoch(step: int, every: int) -> bool:
    """Which epochs get an EpochReported Event: the first and every ``every``-th."""
    return every > 0 and (step <= 1 or step % every == 0)


class EventSink:
    """A bounded queue drained by one task into ``store.create_event``."""

    def __init__(self, store: TrialStore, *, maxsize: int = 1000) -> None:
        self._store = store
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def emit(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            metrics.EVENTS_DROPPED.inc()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued events are written (tests, shutdown)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("report events: %d left unwritten", self._queue.qsize())

    async def stop(self) -> None:
        await self.flush(timeout=2.0)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _drain(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._store.create_event(event["metadata"]["namespace"], event)
            except Exception as exc:  # noqa: BLE001 — events are best effort by design
                metrics.EVENTS_DROPPED.inc()
                log.warning("report event %s not written: %s", event["metadata"]["name"], exc)
            finally:
                self._queue.task_done()
