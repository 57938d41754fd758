"""Per-Trial report credentials: checking a presented token against the Trial's Secret
(built and read by ``thunderbolt.api.report_secret``).

The endpoint accepts a report for Trial T only with T's token: a token leaked from one
pod cannot write another Trial. The operator never keeps tokens in memory beyond a short
cache, so any replica can verify any report by reading the Secret.
"""

from __future__ import annotations

import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from thunderbolt.api.report_secret import Credential, credential_from_secret, secret_name

_BEARER = re.compile(r"^Bearer ([A-Za-z0-9_\-]{16,256})$")

__all__ = ["LookupBudgetSpent", "TokenVerifier", "parse_bearer"]


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None when absent/malformed."""
    if not header:
        return None
    match = _BEARER.match(header.strip())
    return match.group(1) if match else None


class LookupBudgetSpent(Exception):
    """Too many Secret reads for tokens not in the cache: answer 429, read nothing."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.1f}s")
        self.retry_after = retry_after


SecretReader = Callable[[str, str], Awaitable[dict[str, Any] | None]]


class TokenVerifier:
    """Checks a presented token against THAT Trial's Secret, with a short cache.

    A mismatch against a cached credential refreshes it at most once per
    ``refresh_interval`` (a recreated Trial has a new token), so forged requests cannot
    turn into a flood of API reads. Reads for tokens the cache cannot vouch for (unknown
    Trials, mismatches) are charged to the caller's ``budget``; both caches are bounded
    LRUs, the negative one small, so forged names cannot evict the real Trials' entries.
    """

    def __init__(
        self,
        read_secret: SecretReader,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 2.0,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
        max_negative: int = 1_000,
    ) -> None:
        self._read = read_secret
        self._ttl, self._negative_ttl, self._refresh = ttl, negative_ttl, refresh_interval
        self._clock = clock
        self._max, self._max_negative = max_entries, max_negative
        self._cache: OrderedDict[tuple[str, str], tuple[Credential, float]] = OrderedDict()
        self._negative: OrderedDict[tuple[str, str], float] = OrderedDict()

    async def _load(self, namespace: str, trial: str) -> Credential | None:
        key = (namespace, trial)
        secret = await self._read(namespace, secret_name(trial))
        credential = credential_from_secret(secret, trial) if secret else None
        now = self._clock()
        self._cache.pop(key, None)
        self._negative.pop(key, None)
        if credential is None:
            self._negative[key] = now
            if len(self._negative) > self._max_negative:
                self._negative.popitem(last=False)
        else:
            self._cache[key] = (credential, now)
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return credential

    def _needs_read(self, key: tuple[str, str], presented: str, now: float) -> tuple[bool, bool]:
        """(read the Secret?, is that read on the caller's budget?)"""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            credential, loaded = cached
            if _same(credential.token, presented):
                return now - loaded > self._ttl, False  # routine refresh: not budgeted
            return now - loaded > self._refresh, True
        seen = self._negative.get(key)
        if seen is not None and now - seen <= self._negative_ttl:
            return False, False
        return True, True

    async def verify(
        self,
        namespace: str,
        trial: str,
        presented: str,
        budget: Callable[[], float] | None = None,
    ) -> Credential | None:
        """The matching credential, or None when the token is not this Trial's.

        Raises LookupBudgetSpent when a read is needed and ``budget()`` says to wait.
        """
        key = (namespace, trial)
        read, budgeted = self._needs_read(key, presented, self._clock())
        if read:
            if budgeted and budget is not None:
                wait = budget()
                if wait > 0:
                    raise LookupBudgetSpent(wait)
            credential = await self._load(namespace, trial)
        else:
            cached = self._cache.get(key)
            credential = cached[0] if cached else None
        if credential is None or not _same(credential.token, presented):
            return None
        return credential

    def forget(self, namespace: str, trial: str) -> None:
        self._cache.pop((namespace, trial), None)
        self._negative.pop((namespace, trial), None)


def _same(expected: bytes, presented: str) -> bool:
    return hmac.compare_digest(expected, presented.encode())
