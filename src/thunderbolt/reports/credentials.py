"""Per-Trial report credentials.

Every Trial gets its own random token in a Secret owned by the Trial (so it is deleted
with it), mounted read-only into that Trial's pod. The endpoint accepts a report for
Trial T only with T's token: a token leaked from one pod cannot write another Trial.
The operator never keeps tokens in memory beyond a short cache, so any replica can
verify any report by reading the Secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from thunderbolt.api.trainer_config import REPORT_TOKEN_DIR

TOKEN_KEY = "token"
TRIAL_LABEL = "thunderbolt.io/trial"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "report-credential"
TRIAL_API_VERSION = "thunderbolt.io/v1alpha1"
_SUFFIX = "-report"
_MAX_NAME = 253
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9_\-]{16,256})$")

__all__ = [
    "REPORT_TOKEN_DIR",
    "LookupBudgetSpent",
    "TokenVerifier",
    "build_report_secret",
    "owned_by",
    "parse_bearer",
    "secret_name",
]


def secret_name(trial_name: str) -> str:
    """``<trial>-report``; over-long names are shortened with a hash so they stay unique."""
    name = trial_name + _SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(trial_name.encode()).hexdigest()[:10]
    keep = _MAX_NAME - len(_SUFFIX) - len(digest) - 1
    return f"{trial_name[:keep].rstrip('-.')}-{digest}{_SUFFIX}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def build_report_secret(trial_obj: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """The Secret manifest for a Trial's report token, owned by the Trial.

    A fresh random token each call: create it once (a 409 on create means it exists and
    the existing token stays valid) and mount it; never patch it over an existing one.
    """
    meta = trial_obj["metadata"]
    labels = {
        TRIAL_LABEL: meta["name"],
        COMPONENT_LABEL: COMPONENT,
        "app.kubernetes.io/managed-by": "thunderbolt",
    }
    experiment = (meta.get("labels") or {}).get("thunderbolt.io/experiment")
    if experiment:
        labels["thunderbolt.io/experiment"] = experiment
    value = token or new_token()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(meta["name"]),
            "namespace": meta.get("namespace"),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": trial_obj.get("apiVersion", TRIAL_API_VERSION),
                    "kind": "Trial",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {TOKEN_KEY: base64.b64encode(value.encode()).decode()},
    }


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None when absent/malformed."""
    if not header:
        return None
    match = _BEARER.match(header.strip())
    return match.group(1) if match else None


@dataclass(frozen=True)
class Credential:
    """What a Trial's Secret says: its token and the uid of the Trial that owns it."""

    token: bytes
    owner_uid: str | None


def credential_from_secret(secret: dict[str, Any], trial_name: str) -> Credential | None:
    """Only a Secret that is labelled for this Trial counts (not any Secret of that name)."""
    meta = secret.get("metadata") or {}
    if (meta.get("labels") or {}).get(TRIAL_LABEL) != trial_name:
        return None
    raw = (secret.get("data") or {}).get(TOKEN_KEY)
    if not raw:
        return None
    try:
        token = base64.b64decode(raw, validate=True)
    except ValueError:
        return None
    owners = [
        ref.get("uid")
        for ref in meta.get("ownerReferences") or []
        if ref.get("kind") == "Trial" and ref.get("name") == trial_name and ref.get("uid")
    ]
    if not owners:
        # Not made by the operator for this Trial (it always sets the owner): a Secret
        # planted before the Trial existed must never authenticate anything.
        return None
    return Credential(token=token, owner_uid=owners[0])


def owned_by(secret: dict[str, Any], trial_obj: dict[str, Any]) -> bool:
    """Whether an existing report Secret is this very Trial's (same name and uid)."""
    meta = trial_obj["metadata"]
    credential = credential_from_secret(secret, meta["name"])
    return credential is not None and credential.owner_uid == meta.get("uid")


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
