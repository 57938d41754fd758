"""Kubernetes conventions every package shares: API group, label keys, owner references,
the restricted security context, Event bodies, timestamps and readable validation errors.

One home for each, so the operator, the deploy controller, the report endpoint, the
trainer and the CLI cannot drift apart on what a label is called or how a time is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

GROUP = "thunderbolt.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

EXPERIMENT_LABEL = f"{GROUP}/experiment"
TRIAL_LABEL = f"{GROUP}/trial"
NUMBER_LABEL = f"{GROUP}/trial-number"
PARAM_LABEL_PREFIX = f"{GROUP}/param."
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = {MANAGED_BY_LABEL: "thunderbolt"}

# Pods run as this non-root user and group (the images create it).
RUN_AS = 1000
EVENT_MESSAGE_LIMIT = 1024
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def owner_reference(obj: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """A controlling owner reference to ``obj``: the garbage collector deletes the child
    with it, and foreground deletion waits on the child."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", API_VERSION),
        "kind": kind or obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def restricted_pod_security() -> dict[str, Any]:
    """Pod-level part of Pod Security Standard "restricted"."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security(*, read_only_root: bool = False) -> dict[str, Any]:
    """Container-level part of "restricted"; ``read_only_root`` where nothing writes to /."""
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    return context


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """The RFC 3339 form Kubernetes writes (second precision, ``Z``)."""
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(value: str | None) -> datetime | None:
    """A Kubernetes timestamp as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_body(
    obj: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    component: str,
    reporting_component: str,
    instance: str,
    warning: bool = False,
    name: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about ``obj``: named ``name``, else generated from the object's."""
    meta = obj["metadata"]
    stamp = format_time(now or now_utc())
    metadata: dict[str, Any] = {"namespace": meta["namespace"]}
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = f"{meta['name']}."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": metadata,
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", API_VERSION),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:EVENT_MESSAGE_LIMIT],
        "type": "Warning" if warning else "Normal",
        "source": {"component": component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": reporting_component,
        "reportingInstance": instance[:128],
    }


def error_location(loc: tuple[int | str, ...] | list[int | str], root: str = "") -> str:
    """``spec.parameters[0].low`` from a pydantic error location."""
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def describe_errors(exc: ValidationError, *, root: str = "", limit: int | None = None) -> str:
    """A pydantic error as one readable line: ``where: what; where: what``."""
    errors = exc.errors(include_url=False, include_input=False)
    lines = [
        f"{error_location(tuple(e.get('loc', ())), root)}: "
        + str(e.get("msg", "invalid")).removeprefix("Value error, ")
        for e in errors[:limit]
    ]
    return "; ".join(lines)
