"""Where Trials live: reads and optimistic status writes, behind one small interface.

``KubeStore`` talks to the API server (the official client, in a thread pool so the
endpoint's event loop never blocks); ``MemoryStore`` keeps objects in a dict with the
same resourceVersion semantics, for the pure service tests and local experiments.
Both honour the contract the service relies on:

* ``patch_status`` applies a JSON merge patch to the status subresource only when the
  object's resourceVersion still equals the one given, else raises ``Conflict``;
* reads return plain JSON-like dicts (what ``kubectl get -o json`` shows);
* ``create_event`` returns False when an Event of that name exists (idempotent).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, VERSION
from thunderbolt.kubeclient import CONFLICT, NOT_FOUND, patch_custom_status, user_agent

TRIALS, EXPERIMENTS = "trials", "experiments"

T = TypeVar("T")


class Conflict(Exception):
    """The object changed since it was read (HTTP 409 on a resourceVersion precondition)."""


class Gone(Exception):
    """The object no longer exists."""


class StoreError(Exception):
    """The API server failed or could not be reached; the caller may retry later."""


class TrialStore(Protocol):
    async def get_trial(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_trial_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]: ...

    async def list_trials(self, namespace: str, experiment: str) -> list[dict[str, Any]]: ...

    async def get_experiment(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_event(self, namespace: str, event: dict[str, Any]) -> bool: ...


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what the API server does for merge-patch+json)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class MemoryStore:
    """In-process objects with resourceVersions; thread-safe, deep-copies in and out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._rv = 0
        self.events: list[dict[str, Any]] = []

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object (kind: trials | experiments | secrets)."""
        with self._lock:
            self._rv += 1
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta["resourceVersion"] = str(self._rv)
            meta.setdefault("uid", f"uid-{meta['name']}-{self._rv}")
            self._objects[(kind, meta["namespace"], meta["name"])] = stored
            return copy.deepcopy(stored)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((kind, namespace, name), None)

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    async def get_trial(self, namespace: str, name: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)  # an I/O point, as with a real API server: others interleave
        return self._get(TRIALS, namespace, name)

    async def get_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(EXPERIMENTS, namespace, name)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get("secrets", namespace, name)

    async def list_trials(self, namespace: str, experiment: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (kind, ns, _), o in self._objects.items()
                if kind == TRIALS
                and ns == namespace
                and (o["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL) == experiment
            ]

    async def patch_trial_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        await asyncio.sleep(0)
        with self._lock:
            obj = self._objects.get((TRIALS, namespace, name))
            if obj is None:
                raise Gone(f"trial {namespace}/{name}")
            if obj["metadata"]["resourceVersion"] != resource_version:
                raise Conflict(f"trial {namespace}/{name} changed")
            self._rv += 1
            obj["status"] = merge_patch(obj.get("status") or {}, status)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            return copy.deepcopy(obj)

    async def create_event(self, namespace: str, event: dict[str, Any]) -> bool:
        with self._lock:
            name = event["metadata"]["name"]
            if any(e["metadata"]["name"] == name for e in self.events):
                return False
            self.events.append(copy.deepcopy(event))
            return True


class KubeStore:
    """The API server through the official client (configured by the caller)."""

    def __init__(
        self, api_client: Any = None, *, workers: int = 16, timeout: tuple[float, float] = (2, 5)
    ) -> None:
        from kubernetes import client

        self._timeout = timeout
        if api_client is None:
            api_client = client.ApiClient()
            api_client.user_agent = user_agent("reports")
        self._client = api_client
        self._custom = client.CustomObjectsApi(self._client)
        self._core = client.CoreV1Api(self._client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tb-reports")

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", self._timeout)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise Gone(str(exc.reason)) from None
            if exc.status == CONFLICT:
                raise Conflict(str(exc.reason)) from None
            raise StoreError(f"API server: {exc.status} {exc.reason}") from None
        except (OSError, HTTPError) as exc:
            raise StoreError(f"API server unreachable: {exc}") from None

    async def _maybe(self, fn: Any, *args: Any) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._call(fn, *args)
            return result
        except Gone:
            return None

    async def get_trial(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._maybe(
            self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, TRIALS, name
        )

    async def get_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._maybe(
            self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, EXPERIMENTS, name
        )

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        # The raw JSON, not the client's model: the same shape MemoryStore returns.
        try:
            response = await self._call(
                self._core.read_namespaced_secret, name, namespace, _preload_content=False
            )
        except Gone:
            return None
        data: dict[str, Any] = json.loads(response.data)
        return data

    async def list_trials(self, namespace: str, experiment: str) -> list[dict[str, Any]]:
        # resourceVersion=0: from the API server's watch cache, not etcd; a pruning
        # snapshot is seconds stale by design (``snapshot_ttl``) anyway.
        result = await self._call(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            TRIALS,
            label_selector=f"{EXPERIMENT_LABEL}={experiment}",
            resource_version="0",
        )
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    async def patch_trial_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            patch_custom_status, self._custom, TRIALS, namespace, name, status, resource_version
        )
        return result

    async def create_event(self, namespace: str, event: dict[str, Any]) -> bool:
        try:
            await self._call(self._core.create_namespaced_event, namespace, event)
        except Conflict:
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
