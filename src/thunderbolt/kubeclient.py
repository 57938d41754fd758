"""What every package does with the Kubernetes client the same way: load the
configuration, treat 404 and 409 as answers rather than errors, and merge-patch a
custom object's status guarded by its resourceVersion.

The operator, the deploy controller, the report endpoint and the CLI each keep their own
small gateway (sync functions, a class, an async store, user-facing errors); these are
the pieces they share, so the rules cannot differ between them. The client library is
imported on first use: importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from thunderbolt.api.meta import GROUP, VERSION

if TYPE_CHECKING:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

T = TypeVar("T")
NOT_FOUND = 404
CONFLICT = 409
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def load_config(kubeconfig: str | None = None, context: str | None = None) -> None:
    """Configure the client's default: the kubeconfig (and context) if named, else
    in-cluster, else the default kubeconfig."""
    from kubernetes import config

    if kubeconfig or context:
        if kubeconfig:
            os.environ["KUBECONFIG"] = kubeconfig
        config.load_kube_config(config_file=kubeconfig, context=context)
    else:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
    share_default_client()


def user_agent(component: str) -> str:
    """What the API server's audit log shows as the client: one name per component, so
    requests can be traced to the operator, the report endpoint or the CLI."""
    from thunderbolt import __version__

    return f"thunderbolt-{component}/{__version__}"


def share_default_client(pool_size: int = 32) -> None:
    """One ApiClient, so one pool of kept-alive connections, for every ``XxxApi()`` made
    without a client. Without it the library builds a new ApiClient per call: a new
    connection with its TCP and TLS handshakes for each API request (on the operator's
    path from a finished Trial to its successor's Job: about ten, one after the other).
    ``pool_size`` covers Kopf's handler threads. bench/kube_client_reuse.py measures it."""
    from kubernetes import client

    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = pool_size
    shared = client.ApiClient(configuration)
    shared.user_agent = user_agent("operator")
    client.ApiClient.set_default(shared)


def unless(exc: ApiException, *codes: int) -> None:
    """Re-raise ``exc`` unless its status is one of ``codes`` (the expected answers)."""
    if exc.status not in codes:
        raise exc


def or_none(call: Callable[[], T]) -> T | None:
    """The result of a read, or None when the object does not exist (404)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as exc:
        unless(exc, NOT_FOUND)
        return None


def applied(call: Callable[[], Any]) -> bool:
    """Run a create or a guarded write: True when it went through, False on 409 (the
    object already exists, or another writer changed it first)."""
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as exc:
        unless(exc, CONFLICT)
        return False
    return True


def deleted(call: Callable[[], Any]) -> None:
    """Run a delete; an object already gone (404) is what was wanted."""
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as exc:
        unless(exc, NOT_FOUND)


def status_patch_body(patch: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
    """A status merge-patch; with ``resource_version`` it applies only to that version
    (409 otherwise), so a decision made on a stale read never overwrites a newer writer."""
    body: dict[str, Any] = {"status": patch}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return body


def patch_custom_status(
    api: client.CustomObjectsApi,
    plural: str,
    namespace: str,
    name: str,
    patch: dict[str, Any],
    resource_version: str | None = None,
    **kwargs: Any,
) -> Any:
    """Merge-patch a Thunderbolt object's status subresource (null deletes a field, lists
    are replaced)."""
    return api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        status_patch_body(patch, resource_version),
        _content_type=MERGE_PATCH,
        **kwargs,
    )
