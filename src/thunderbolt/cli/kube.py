"""Cluster access for the CLI, resolved the way kubectl resolves it.

``--kubeconfig`` beats ``KUBECONFIG`` beats ``~/.kube/config``; ``--context`` picks a
context; with no kubeconfig at all we try the in-cluster service account. The
namespace comes from ``-n``, else the context's namespace, else ``default``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thunderbolt.api.meta import GROUP, VERSION
from thunderbolt.kubeclient import user_agent

TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"

IN_CLUSTER_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
PLURALS = {
    "experiment": "experiments",
    "trial": "trials",
    "modeldeployment": "modeldeployments",
}
# What users may type for each kind: kubectl-style names and the CRDs' short names.
ALIASES = {
    "experiment": "experiments",
    "experiments": "experiments",
    "exp": "experiments",
    "tbexp": "experiments",
    "trial": "trials",
    "trials": "trials",
    "tbtrial": "trials",
    "modeldeployment": "modeldeployments",
    "modeldeployments": "modeldeployments",
    "md": "modeldeployments",
    "tbmd": "modeldeployments",
}


class CliError(RuntimeError):
    """A user-facing failure: printed without a traceback, exit status 1."""


def plural_of(kind: str, examples: str) -> str:
    """The plural resource name for what the user typed, or a CliError naming the choices."""
    plural = ALIASES.get(kind.lower())
    if plural is None:
        raise CliError(f"unknown kind {kind!r}: use {examples}")
    return plural


def api_errors() -> tuple[type[Exception], ...]:
    """What a failed API call raises: an HTTP status, or no connection at all."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return (ApiException, urllib3.exceptions.HTTPError, OSError)


def friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn CliError into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return wrapper


def add_kube_args(parser: argparse.ArgumentParser, *, namespaced: bool = True) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    group.add_argument("--context", help="kubeconfig context to use")
    if namespaced:
        group.add_argument("-n", "--namespace", help="namespace (default: the context's)")


@dataclass
class Kube:
    """A connected API client plus the namespace commands act in."""

    api_client: Any
    namespace: str

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def list(
        self,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        cached: bool = False,
    ) -> list[dict[str, Any]]:
        """Objects of one kind; ``namespace=""`` lists across all namespaces.

        ``cached``: served from the API server's watch cache (``resourceVersion=0``: no
        etcd read, possibly a moment behind) and parsed straight from the bytes; what
        the Trial views use, since a search can have 10 000 Trials (docs/operator.md)."""
        ns = self.namespace if namespace is None else namespace
        kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        if cached:
            kwargs |= {"resource_version": "0", "_preload_content": False}
        try:
            if ns == "":
                result = self.custom.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)
            else:
                result = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, ns, plural, **kwargs
                )
        except api_errors() as exc:
            raise CliError(_explain(exc, f"list {plural}")) from exc
        if cached:
            result = json.loads(result.data)
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def table(self, plural: str, label_selector: str) -> dict[str, Any]:
        """The API server's Table of one kind in the namespace: printer-column cells
        only, no objects (``includeObject=None``), from the watch cache."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{plural}"
        query = [
            ("labelSelector", label_selector),
            ("resourceVersion", "0"),
            ("includeObject", "None"),
        ]
        try:
            request = self.api_client.param_serialize(
                "GET",
                path,
                query_params=query,
                header_params={"Accept": TABLE},
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*request)
            data = response.read()
        except api_errors() as exc:
            raise CliError(_explain(exc, f"list {plural}")) from exc
        if response.status >= 400:  # this call path does not raise on HTTP errors
            from kubernetes.client.exceptions import ApiException

            refused = ApiException(status=response.status, reason=response.reason)
            raise CliError(_explain(refused, f"list {plural}"))
        table: dict[str, Any] = json.loads(data)
        return table

    def get(self, plural: str, name: str) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except api_errors() as exc:
            raise CliError(_explain(exc, f"get {plural}/{name} in {self.namespace}")) from exc
        return obj

    def get_optional(self, plural: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        from thunderbolt.kubeclient import or_none

        try:
            obj: dict[str, Any] | None = or_none(
                lambda: self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                )
            )
        except ApiException as exc:
            raise CliError(_explain(exc, f"get {plural}/{name}")) from exc
        return obj

    def patch(
        self, plural: str, name: str, body: dict[str, Any], field_manager: str | None = None
    ) -> dict[str, Any]:
        extra = {"field_manager": field_manager} if field_manager else {}
        try:
            obj: dict[str, Any] = self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, body, **extra
            )
        except api_errors() as exc:
            raise CliError(_explain(exc, f"patch {plural}/{name}")) from exc
        return obj


def _explain(exc: BaseException, what: str) -> str:
    status = getattr(exc, "status", None)
    if status == 404:
        return f"cannot {what}: not found (are the CRDs installed? `thunderbolt crds | kubectl apply -f -`)"
    if status in (401, 403):
        return f"cannot {what}: forbidden ({getattr(exc, 'reason', '')})"
    reason = getattr(exc, "reason", None) or exc
    return f"cannot {what}: {reason}"


def _context_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    if chosen is None:
        raise CliError(f"context {context!r} not found in the kubeconfig")
    namespace: str | None = chosen.get("context", {}).get("namespace")
    return namespace


def connect(args: argparse.Namespace) -> Kube:
    """Load credentials like kubectl and return a client bound to the chosen namespace."""
    from kubernetes import client, config

    kubeconfig = getattr(args, "kubeconfig", None) or None
    context = getattr(args, "context", None)
    paths = kubeconfig or os.environ.get("KUBECONFIG") or str(pathlib.Path.home() / ".kube/config")
    have_file = any(pathlib.Path(p).is_file() for p in paths.split(os.pathsep) if p)
    namespace = getattr(args, "namespace", None)
    if have_file:
        try:
            # The paths are passed explicitly: the client library reads $KUBECONFIG only
            # once, at import, so a later change of it would otherwise be ignored.
            api_client = config.new_client_from_config(config_file=paths, context=context)
        except config.ConfigException as exc:
            raise CliError(f"kubeconfig: {exc}") from exc
        namespace = namespace or _context_namespace(paths, context)
    else:
        try:
            config.load_incluster_config()
        except config.ConfigException as exc:
            raise CliError(
                "no kubeconfig found (set KUBECONFIG or --kubeconfig) and not running in a cluster"
            ) from exc
        api_client = client.ApiClient()
        if not namespace and IN_CLUSTER_NAMESPACE.is_file():
            namespace = IN_CLUSTER_NAMESPACE.read_text().strip()
    api_client.user_agent = user_agent("cli")
    return Kube(api_client=api_client, namespace=namespace or "default")
