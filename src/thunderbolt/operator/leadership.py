"""Whether this replica is the active one among Kopf peers.

Kopf pauses its watch streams, timers and daemons on a standby replica, but the
operator's periodic Experiment resync is a plain asyncio task that Kopf does not know.
Before each round the resync asks ``is_standby``, which applies Kopf's own rule to the
peering objects: a replica stands by while another live peer has a higher priority, or
the same one (then Kopf pauses every peer of that priority). A peer is dead once its
``lastseen`` plus ``lifetime`` has passed, which is also when Kopf resumes a standby.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from kubernetes import client

from thunderbolt.kubeclient import or_none

PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"


@cache
def own_identity() -> str:
    """This process's peer id, handed to Kopf so both name this replica the same way."""
    pod = os.environ.get("POD_ID") or os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{getpass.getuser()}@{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


def _deadline(info: Mapping[str, Any]) -> dt.datetime | None:
    seen = info.get("lastseen")
    if not seen:
        return None
    try:
        lastseen = dt.datetime.fromisoformat(str(seen))
    except ValueError:
        return None
    if lastseen.tzinfo is None:
        lastseen = lastseen.replace(tzinfo=dt.UTC)
    return lastseen + dt.timedelta(seconds=int(info.get("lifetime") or 60))


def standby_reason(
    peers: Mapping[str, Mapping[str, Any]], identity: str, priority: int, now: dt.datetime
) -> str | None:
    """Why this replica must stay passive (Kopf's rule), or None when it may act."""
    for peer, info in peers.items():
        if peer == identity or not isinstance(info, Mapping):
            continue
        deadline = _deadline(info)
        if deadline is None or deadline <= now:
            continue  # dead (or never seen): Kopf ignores it and cleans it up
        other = int(info.get("priority") or 0)
        if other > priority:
            return f"peer {peer} has a higher priority ({other} > {priority})"
        if other == priority:
            return f"peer {peer} has the same priority ({priority}); Kopf pauses both"
    return None


def _peering_status(name: str, namespace: str | None) -> dict[str, Any]:
    api = client.CustomObjectsApi()
    obj: Any
    if namespace is None:
        obj = or_none(
            lambda: api.get_cluster_custom_object(
                PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name
            )
        )
    else:
        obj = or_none(
            lambda: api.get_namespaced_custom_object(
                PEERING_GROUP, PEERING_VERSION, namespace, "kopfpeerings", name
            )
        )
    return dict((obj or {}).get("status") or {})


def is_standby(
    name: str, namespaces: Iterable[str | None], priority: int, now: dt.datetime | None = None
) -> str | None:
    """The reason this replica stands by in any of its peering scopes, else None.

    A missing peering object means no peers there (Kopf then runs without peering in
    that scope, if peering is optional).
    """
    now = now or dt.datetime.now(dt.UTC)
    for namespace in namespaces:
        reason = standby_reason(_peering_status(name, namespace), own_identity(), priority, now)
        if reason:
            return reason
    return None
