"""Start the dashboard: connect like kubectl, pick what to watch, serve until stopped."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from aiohttp import web

from thunderbolt.dashboard.kube import Kube
from thunderbolt.dashboard.server import Dashboard, make_app
from thunderbolt.dashboard.store import KINDS, Store, Watcher

log = logging.getLogger(__name__)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def watch_scope(api_client: Any, namespaces: list[str], fallback: str) -> list[str] | None:
    """``namespaces`` when given; else all namespaces if the user may list them cluster-wide,
    else the kubeconfig context's namespace. None means all namespaces."""
    if namespaces:
        return namespaces
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from thunderbolt.api.meta import GROUP, VERSION

    try:
        client.CustomObjectsApi(api_client).list_cluster_custom_object(
            GROUP, VERSION, "experiments", limit=1
        )
    except ApiException as exc:
        if exc.status in (401, 403):
            return [fallback]
        raise
    return None


async def start(
    api_client: Any,
    scope: list[str] | None,
    address: str,
    port: int,
    allow_actions: bool,
) -> tuple[web.AppRunner, Dashboard, list[Watcher]]:
    """Watches started, server listening; the caller stops both."""
    store = Store()
    dashboard = Dashboard(
        store=store, kube=Kube(api_client), allow_actions=allow_actions,
        loopback=is_loopback(address),
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    # One watch per kind (per namespace when the user may not list cluster-wide).
    namespaces: list[str | None] = list(scope) if scope is not None else [None]
    watchers = [Watcher(api_client, kind, ns, store, loop) for kind in KINDS for ns in namespaces]
    for w in watchers:
        w.start()
    runner = web.AppRunner(make_app(dashboard), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner, dashboard, watchers


async def serve_forever(
    api_client: Any, scope: list[str] | None, address: str, port: int, allow_actions: bool
) -> None:
    runner, _, watchers = await start(api_client, scope, address, port, allow_actions)
    host = f"[{address}]" if ":" in address else address
    where = "all namespaces" if scope is None else "namespace " + ", ".join(scope)
    print(f"Thunderbolt dashboard on http://{host}:{port}/ ({where}; "
          f"actions {'ON' if allow_actions else 'off'}). Ctrl-C stops it.", flush=True)  # fmt: skip
    try:
        await asyncio.Event().wait()
    finally:
        for w in watchers:
            w.stop()
        await runner.cleanup()
