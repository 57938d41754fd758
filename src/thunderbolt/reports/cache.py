"""A small async TTL cache: single-flight loads, optional bounded stale-while-revalidate.

Only ever a saving of API reads: nothing here may be needed for correctness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small TTL cache where concurrent misses for one key share a single load."""

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float],
        max_entries: int = 10_000,
        *,
        max_stale: float = 0.0,
        ttl_of: Callable[[V], float] | None = None,
    ) -> None:
        self.ttl, self._clock, self._max, self.max_stale = ttl, clock, max_entries, max_stale
        self._ttl_of = ttl_of  # a value's own TTL (e.g. longer for costlier reloads)
        self._values: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def _ttl(self, value: V) -> float:
        return self.ttl if self._ttl_of is None else self._ttl_of(value)

    def peek(self, key: K) -> V | None:
        hit = self._values.get(key)
        if hit is None or self._clock() - hit[1] > self._ttl(hit[0]):
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        if len(self._values) >= self._max:
            self._values.clear()
        self._values[key] = (value, self._clock())

    def drop(self, key: K) -> None:
        self._values.pop(key, None)

    async def get(self, key: K, load: Callable[[], Awaitable[V]], *, stale_ok: bool = False) -> V:
        """The cached value; ``stale_ok``: one expired for at most ``max_stale`` seconds
        too, refreshed in the background (under steady traffic no request waits for a
        reload; after a quiet spell the first one does, so decisions never use old data)."""
        hit = self._values.get(key)
        if hit is not None:
            age, ttl = self._clock() - hit[1], self._ttl(hit[0])
            if age <= ttl:
                return hit[0]
            if stale_ok and age <= ttl + self.max_stale:
                if key not in self._loading:
                    self._start(key, load).add_done_callback(_quiet)
                return hit[0]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._start(key, load)

    def _start(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        """Begin a load; registered at once, so nobody starts a second one meanwhile."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future

        async def run() -> V:
            try:
                value = await load()
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
                raise
            finally:
                self._loading.pop(key, None)
            self.put(key, value)
            future.set_result(value)
            return value

        return asyncio.get_running_loop().create_task(run())


def _quiet(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background cache refresh failed: %s", task.exception())
