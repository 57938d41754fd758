"""The pruning snapshot (a LIST of every Trial) is refreshed less often as a search grows."""

from __future__ import annotations

import asyncio

from thunderbolt.reports.cache import TtlCache
from thunderbolt.reports.service import snapshot_ttl


def test_small_searches_refresh_every_base_ttl_and_large_ones_in_proportion():
    assert snapshot_ttl(2.0, 0, 100) == 2.0
    assert snapshot_ttl(2.0, 100, 100) == 2.0
    assert snapshot_ttl(2.0, 1000, 100) == 20.0
    assert snapshot_ttl(2.0, 10_000, 100) == 200.0
    # LIST bytes per second: peers / ttl, level from 100 Trials on
    rates = [n / snapshot_ttl(2.0, n, 100) for n in (100, 1000, 10_000)]
    assert rates[0] == rates[1] == rates[2]


def test_a_value_with_its_own_ttl_is_kept_that_long():
    now = [0.0]
    loads: list[int] = []
    cache: TtlCache[str, int] = TtlCache(2.0, lambda: now[0], ttl_of=lambda size: size / 50)

    async def load(size: int) -> int:
        loads.append(size)
        return size

    async def scenario() -> None:
        assert await cache.get("big", lambda: load(1000)) == 1000  # ttl 20 s
        assert await cache.get("small", lambda: load(10)) == 10  # ttl 0.2 s
        now[0] = 10.0
        await cache.get("big", lambda: load(1000))
        await cache.get("small", lambda: load(10))
        assert cache.peek("big") == 1000 and loads == [1000, 10, 10]
        now[0] = 31.0
        assert cache.peek("big") is None
        await cache.get("big", lambda: load(1000))
        assert loads == [1000, 10, 10, 1000]

    asyncio.run(scenario())
