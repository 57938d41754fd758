"""Writing report results onto Trials: now (write-through) or shortly after (write-behind).

Every write is a JSON merge patch of the status subresource that carries the
resourceVersion it was computed from, re-computed from a fresh read on 409, and computed
as a union by step (``history.status_patch``), so concurrent writers (replicas, the
operator) never lose or duplicate a point.

Write-behind (``delay > 0``) acknowledges a validated report before it is on the Trial
and writes a Trial's pending points together after at most ``delay`` seconds (longer only
while the previous write of that Trial is still in flight: then everything that arrived
meanwhile goes in one patch). That bounds API writes per Trial by the API server's own
latency instead of the report rate. The price: a replica that dies loses what it had
acknowledged but not written; replies carry ``storedStep`` so the trainer re-sends those
points (``backlog``) with its next report, to any replica — nothing is lost unless the
trainer dies too, and then only what was in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from thunderbolt.reports import metrics
from thunderbolt.reports.history import intermediate_points, overlay, status_patch
from thunderbolt.reports.store import Conflict, Gone, StoreError, TrialStore

log = logging.getLogger(__name__)
Key = tuple[str, str]


class WriteFailed(Exception):
    """The Trial could not be written (gone, API errors, or changing too fast)."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


@dataclass
class _Pending:
    add: dict[int, float] = field(default_factory=dict)
    start: bool = False
    task: asyncio.Task[None] | None = None


class TrialWriter:
    """Owns this replica's view of Trials: the last object read or written, plus pending."""

    def __init__(
        self,
        store: TrialStore,
        *,
        delay: float = 0.0,
        attempts: int = 10,
        now: Callable[[], str],
    ) -> None:
        self.store, self.delay, self.attempts, self._now = store, delay, attempts, now
        self._known: dict[Key, dict[str, Any]] = {}
        self._pending: dict[Key, _Pending] = {}

    # --- what this replica knows -----------------------------------------------------
    def known(self, key: Key) -> dict[str, Any] | None:
        """The Trial as last read or written here (may be stale; never trusted to reject)."""
        return self._known.get(key)

    def remember(self, key: Key, obj: dict[str, Any]) -> None:
        if len(self._known) > 10_000 and key not in self._known:
            self._known = {k: v for k, v in self._known.items() if k in self._pending}
        self._known[key] = obj

    def forget(self, key: Key) -> None:
        self._known.pop(key, None)

    def done(self, key: Key) -> None:
        """The trainer's last word is in: drop this replica's copy of the Trial (a whole
        Trial object each; kept, 10 000 of them held ~0.3 GB) unless points are pending.
        A late retry costs one fresh read."""
        if key not in self._pending:
            self._known.pop(key, None)

    def known_count(self) -> int:
        return len(self._known)

    def view(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` with this replica's acknowledged-but-unwritten points on top."""
        pending = self._pending.get(key)
        return overlay(obj, pending.add, pending.start) if pending else obj

    def stored_step(self, key: Key) -> int | None:
        obj = self._known.get(key)
        points = intermediate_points(obj) if obj else []
        return points[-1][0] if points else None

    # --- writing ----------------------------------------------------------------------
    async def write_once(
        self, key: Key, obj: dict[str, Any], add: dict[int, float], start: bool
    ) -> dict[str, Any]:
        """One optimistic write computed from ``obj``; raises ``Conflict`` when the Trial
        changed since (the caller re-reads and decides again)."""
        patch = status_patch(obj, add, start, now=self._now())
        if patch is None:
            return obj
        try:
            rv = obj["metadata"]["resourceVersion"]
            obj = await self.store.patch_trial_status(*key, patch, rv)
        except Conflict:
            metrics.STATUS_CONFLICTS.inc()
            raise
        except Gone:
            self.forget(key)
            raise WriteFailed("trial is gone", gone=True) from None
        except StoreError as exc:
            self.forget(key)
            raise WriteFailed(str(exc)) from None
        self.remember(key, obj)
        return obj

    async def write(
        self, key: Key, obj: dict[str, Any], add: dict[int, float], start: bool
    ) -> dict[str, Any]:
        """Write now, re-reading on 409 (a union by step, so retrying is always safe)."""
        for _ in range(self.attempts):
            try:
                return await self.write_once(key, obj, add, start)
            except Conflict:
                obj = await self.read(key)
        raise WriteFailed("the trial is changing too fast")

    async def read(self, key: Key) -> dict[str, Any]:
        try:
            obj = await self.store.get_trial(*key)
        except StoreError as exc:
            raise WriteFailed(str(exc)) from None
        if obj is None:
            self.forget(key)
            raise WriteFailed("trial is gone", gone=True)
        self.remember(key, obj)
        return obj

    def enqueue(self, key: Key, add: dict[int, float], start: bool) -> None:
        """Write-behind: remember the points and make sure a flush is coming."""
        pending = self._pending.setdefault(key, _Pending())
        for step, value in add.items():
            pending.add.setdefault(step, value)
        pending.start = pending.start or start
        if pending.task is None or pending.task.done():
            pending.task = asyncio.get_running_loop().create_task(self._flush_later(key))

    async def _flush_later(self, key: Key) -> None:
        await asyncio.sleep(self.delay)
        while True:
            try:
                if not await self._flush_once(key):
                    return
            except WriteFailed:
                await asyncio.sleep(max(self.delay, 1.0))  # API trouble: keep the points

    async def _flush_once(self, key: Key) -> bool:
        """Write what is pending for ``key``; True when more arrived meanwhile.

        On failure the points stay pending (WriteFailed is raised), except when the
        Trial is gone: then there is nothing left to write them to.
        """
        pending = self._pending.get(key)
        if pending is None or (not pending.add and not pending.start):
            self._pending.pop(key, None)
            return False
        add, start = dict(pending.add), pending.start
        try:
            obj = self._known.get(key) or await self.read(key)
            await self.write(key, obj, add, start)
        except WriteFailed as exc:
            log.warning("report write-behind for %s/%s failed: %s", *key, exc)
            if not exc.gone:
                raise
            metrics.WRITE_BEHIND_DROPPED.inc(len(add) or 1)
            self._pending.pop(key, None)
            return False
        for step, value in add.items():
            if pending.add.get(step) == value:
                del pending.add[step]
        if start:
            pending.start = False
        if pending.add or pending.start:
            return True
        self._pending.pop(key, None)
        return False

    async def flush(self, key: Key) -> None:
        """Write everything pending for ``key`` now (a stop report, shutdown); raises
        WriteFailed when that is not possible, the points then stay pending."""
        pending = self._pending.get(key)
        if pending is None:
            return
        task = pending.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            while await self._flush_once(key):
                pass
        except WriteFailed:
            current = self._pending.get(key)
            if current is not None:  # keep retrying in the background
                current.task = asyncio.get_running_loop().create_task(self._flush_later(key))
            raise

    def pending_count(self) -> int:
        return sum(len(p.add) for p in self._pending.values())

    async def flush_all(self) -> None:
        for key in list(self._pending):
            try:
                await self.flush(key)
            except WriteFailed as exc:
                log.warning("report points for %s/%s not written at shutdown: %s", *key, exc)
        for pending in self._pending.values():
            if pending.task is not None:
                pending.task.cancel()
