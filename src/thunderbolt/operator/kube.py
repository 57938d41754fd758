"""The few Kubernetes API calls the handlers make, each idempotent.

Creation never reads first: it creates and treats 409 Conflict as "already there"
(deterministic names make that safe). Reads return plain dicts, as the API sends them,
so the pure modules see exactly what ``kubectl get -o json`` shows.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, TRIAL_LABEL, VERSION, event_body
from thunderbolt.kubeclient import (
    CONFLICT,
    NOT_FOUND,
    applied,
    deleted,
    or_none,
    patch_custom_status,
    unless,
)

log = logging.getLogger(__name__)
COMPONENT = "thunderbolt-operator"
_INSTANCE = f"{socket.gethostname()}-{os.getpid()}"


def _raw(response: Any) -> Any:
    return json.loads(response.data)


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    return or_none(
        lambda: _raw(
            custom().get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _preload_content=False
            )
        )
    )


def list_trials(namespace: str, experiment: str, uid: str | None = None) -> list[dict[str, Any]]:
    """The Experiment's Trials (by label, and owned by ``uid`` when given)."""
    items = _raw(
        custom().list_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "trials",
            label_selector=f"{EXPERIMENT_LABEL}={experiment}",
            _preload_content=False,
        )
    )["items"]
    if uid is None:
        return list(items)
    return [
        t
        for t in items
        if any(ref.get("uid") == uid for ref in t["metadata"].get("ownerReferences") or [])
    ]


def patch_status(
    plural: str,
    namespace: str,
    name: str,
    patch: dict[str, Any],
    resource_version: str | None = None,
) -> dict[str, Any] | None:
    """Merge-patch the status subresource, guarded by ``resource_version`` when given;
    returns the object as stored."""
    stored = patch_custom_status(custom(), plural, namespace, name, patch, resource_version)
    return stored if isinstance(stored, dict) else None


def create_custom(plural: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """Create a custom object and return it as stored (uid set); None on 409."""
    try:
        return _raw(
            custom().create_namespaced_custom_object(
                GROUP, VERSION, obj["metadata"]["namespace"], plural, obj, _preload_content=False
            )
        )
    except ApiException as exc:
        unless(exc, CONFLICT)
        return None


def create(obj: dict[str, Any]) -> bool:
    """Create ``obj``; True if created now, False if it already existed (409)."""
    kind, ns = obj["kind"], obj["metadata"]["namespace"]
    body: Any = obj
    calls: dict[str, Callable[[], Any]] = {
        "Trial": lambda: custom().create_namespaced_custom_object(
            GROUP, VERSION, ns, "trials", body
        ),
        "Job": lambda: client.BatchV1Api().create_namespaced_job(ns, body),
        "ConfigMap": lambda: client.CoreV1Api().create_namespaced_config_map(ns, body),
        "Secret": lambda: client.CoreV1Api().create_namespaced_secret(ns, body),
    }
    if kind not in calls:
        raise ValueError(f"cannot create kind {kind}")
    return applied(calls[kind])


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    return or_none(
        lambda: _raw(
            client.BatchV1Api().read_namespaced_job(name, namespace, _preload_content=False)
        )
    )


def get_secret(namespace: str, name: str) -> dict[str, Any] | None:
    return or_none(
        lambda: _raw(
            client.CoreV1Api().read_namespaced_secret(name, namespace, _preload_content=False)
        )
    )


def delete_secret(namespace: str, name: str, uid: str) -> None:
    """Delete exactly the Secret that was read (uid precondition), never a newer one."""
    try:
        client.CoreV1Api().delete_namespaced_secret(
            name,
            namespace,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
        )
    except ApiException as exc:
        unless(exc, NOT_FOUND, CONFLICT)  # gone already, or replaced meanwhile


def adopt_job(job: dict[str, Any], owner: dict[str, Any]) -> None:
    """Give a Job without a controller the Trial as its owner (an orphan of a past run)."""
    refs = job["metadata"].get("ownerReferences") or []
    if any(ref.get("controller") for ref in refs):
        return
    client.BatchV1Api().patch_namespaced_job(
        job["metadata"]["name"],
        job["metadata"]["namespace"],
        {"metadata": {"ownerReferences": [*refs, owner]}},
    )


def list_pods(namespace: str, trial: str) -> list[dict[str, Any]]:
    return list(
        _raw(
            client.CoreV1Api().list_namespaced_pod(
                namespace, label_selector=f"{TRIAL_LABEL}={trial}", _preload_content=False
            )
        )["items"]
    )


def delete_job(namespace: str, name: str) -> None:
    deleted(
        lambda: client.BatchV1Api().delete_namespaced_job(
            name, namespace, propagation_policy="Background"
        )
    )


def post_event(
    obj: dict[str, Any], reason: str, message: str, warning: bool = False, name: str | None = None
) -> None:
    """A Kubernetes Event about ``obj``; best effort (an Event is never worth a retry).
    With ``name``, an Event of that name that exists already is this one (409: done)."""
    meta = obj["metadata"]
    body: Any = event_body(
        obj, reason, message, warning=warning, component=COMPONENT,
        reporting_component=f"{GROUP}/operator", instance=_INSTANCE, name=name,
    )  # fmt: skip
    try:
        client.CoreV1Api().create_namespaced_event(meta["namespace"], body)
    except ApiException as exc:
        if name and exc.status == CONFLICT:
            return
        log.warning("could not post event %s on %s: %s", reason, meta["name"], exc.reason)


def list_experiments(namespace: str | None) -> list[dict[str, Any]]:
    """Experiments in ``namespace`` (all namespaces when None)."""
    api = custom()
    if namespace is None:
        resp = api.list_cluster_custom_object(GROUP, VERSION, "experiments", _preload_content=False)
    else:
        resp = api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "experiments", _preload_content=False
        )
    return list(_raw(resp)["items"])


def get_pod(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return _raw(client.CoreV1Api().read_namespaced_pod(name, namespace, _preload_content=False))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def open_pod_log(namespace: str, name: str, container: str) -> Any:
    """A followed log stream (urllib3 response; read it in chunks, close it to stop).
    No timeout: a quiet training run may print nothing for a long while."""
    return client.CoreV1Api().read_namespaced_pod_log(
        name,
        namespace,
        container=container,
        follow=True,
        _preload_content=False,
    )
