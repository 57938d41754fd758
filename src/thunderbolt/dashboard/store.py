"""The dashboard's copy of the cluster: one watch per resource kind, shared by every page.

Each kind (Experiments, Trials, ModelDeployments) is listed once and then watched from
that list's resourceVersion in a thread of its own (the Kubernetes client is
synchronous); every change lands in the ``Store`` on the event loop, which tells the open
pages through their queues (server-sent events). A page view costs no API request for
these kinds: N open pages cost the same 3 watches as one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, VERSION

log = logging.getLogger(__name__)

KINDS = ("experiments", "trials", "modeldeployments")
QUEUE_SIZE = 1000
Key = tuple[str, str]  # (namespace, name)


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def experiment_of(trial: dict[str, Any]) -> str:
    meta = trial.get("metadata") or {}
    return str(
        (trial.get("spec") or {}).get("experiment")
        or (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
        or ""
    )


class Store:
    """Objects by kind and key, a change counter, and the pages listening (loop thread only)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {k: {} for k in KINDS}
        self.by_experiment: dict[Key, dict[str, dict[str, Any]]] = {}
        self.version = 0
        self.synced: set[str] = set()
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.changed_at: dict[str, float] = {}

    # -- writes (from the watch threads, through the loop) --

    def replace(self, kind: str, items: list[dict[str, Any]], namespace: str | None = None) -> None:
        """A fresh list of one kind (start-up, or after the watch lost its place), of one
        namespace or (None) of all."""
        for key in [k for k in self.objects[kind] if namespace is None or k[0] == namespace]:
            self._drop(kind, self.objects[kind][key])
        for obj in items:
            self._put(kind, obj)
        self.synced.add(kind)
        self._tell({"kind": kind, "type": "RESYNC"})

    def apply(self, kind: str, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._drop(kind, obj)
        else:
            self._put(kind, obj)
        ns, name = _key(obj)
        change = {"kind": kind, "type": event_type, "namespace": ns, "name": name}
        if kind == "trials":
            change["experiment"] = experiment_of(obj)
        self._tell(change)

    def _put(self, kind: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        self.objects[kind][key] = obj
        if kind == "trials":
            owner = (key[0], experiment_of(obj))
            self.by_experiment.setdefault(owner, {})[key[1]] = obj

    def _drop(self, kind: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        old = self.objects[kind].pop(key, None)
        if kind == "trials" and old is not None:
            self.by_experiment.get((key[0], experiment_of(old)), {}).pop(key[1], None)

    def _tell(self, change: dict[str, Any]) -> None:
        self.version += 1
        self.changed_at[change["kind"]] = time.time()
        change["version"] = self.version
        for queue in list(self.listeners):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                # A page that stopped reading: it refetches everything when it catches up.
                queue.get_nowait()
                queue.put_nowait({"kind": "*", "type": "RESYNC", "version": self.version})

    # -- reads --

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects[kind].get((namespace, name))

    def all(self, kind: str) -> list[dict[str, Any]]:
        return list(self.objects[kind].values())

    def trials_of(self, namespace: str, experiment: str) -> list[dict[str, Any]]:
        return list(self.by_experiment.get((namespace, experiment), {}).values())

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(queue)


class Watcher:
    """List-then-watch of one kind in a daemon thread, feeding ``store`` on ``loop``."""

    def __init__(
        self,
        api_client: Any,
        kind: str,
        namespace: str | None,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.api_client, self.kind, self.namespace = api_client, kind, namespace
        self.store, self.loop = store, loop
        self.on_error = on_error
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"watch-{kind}", daemon=True)
        self.requests = 0  # API requests made (lists and watches), for the bench

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _call(self, **kwargs: Any) -> Any:
        from kubernetes import client

        api = client.CustomObjectsApi(self.api_client)
        if self.namespace is None:
            return api.list_cluster_custom_object, (GROUP, VERSION, self.kind), kwargs
        return (
            api.list_namespaced_custom_object,
            (GROUP, VERSION, self.namespace, self.kind),
            kwargs,
        )

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        backoff = 0.5
        while not self.stopped.is_set():
            try:
                func, args, _ = self._call()
                self.requests += 1
                listed = func(*args)
                version = (listed.get("metadata") or {}).get("resourceVersion")
                self.loop.call_soon_threadsafe(
                    self.store.replace, self.kind, listed.get("items", [])
                )
                backoff = 0.5
                while not self.stopped.is_set():
                    w = watch.Watch()
                    self.requests += 1
                    for event in w.stream(
                        func, *args, resource_version=version, timeout_seconds=240,
                        allow_watch_bookmarks=True,
                    ):  # fmt: skip
                        if self.stopped.is_set():
                            w.stop()
                            return
                        obj = event["object"]
                        version = (obj.get("metadata") or {}).get("resourceVersion") or version
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self.loop.call_soon_threadsafe(
                                self.store.apply, self.kind, event["type"], obj
                            )
                        elif event["type"] == "ERROR":
                            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
            except Exception as exc:  # noqa: BLE001 -- any failure: list again after a pause
                if getattr(exc, "status", None) == 410:
                    continue  # the version expired: list again at once
                log.warning("watch %s: %s", self.kind, getattr(exc, "reason", None) or exc)
                if self.on_error is not None:
                    self.on_error(self.kind, exc)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 30.0)
