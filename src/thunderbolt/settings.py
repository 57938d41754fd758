"""Operator settings: environment variables first, command-line flags on top.

One frozen object is built at start-up and recorded with ``set_current``; every handler
module reads it through ``current()`` (the one way), so handlers never read the
environment themselves. A bottom-level module: any package may import it.

Environment variables (all optional):

==============================  =============================================================
THUNDERBOLT_NAMESPACES          comma-separated namespaces to watch; empty = all namespaces
THUNDERBOLT_EXCLUDE_NAMESPACES  comma-separated namespace globs never acted on (e.g.
                                "kube-*"); mainly for the cluster-wide mode
THUNDERBOLT_MLFLOW_URI          MLflow tracking URI as seen from Trial pods
THUNDERBOLT_ARTIFACTS_URI       default artifact store for trainers (s3://bucket/prefix, file://)
THUNDERBOLT_S3_ENDPOINT         S3-compatible endpoint URL as seen from pods
THUNDERBOLT_ARTIFACTS_SECRET    Secret holding an AWS shared-credentials file under ``credentials``
THUNDERBOLT_REPORT_URL          how pods reach the operator's report endpoint
THUNDERBOLT_REPORT_PORT         port of the report endpoint (8081; 0 = pick a free one)
THUNDERBOLT_METRICS_PORT        Prometheus /metrics port (8080; 0 = pick a free one)
THUNDERBOLT_HEALTH_PORT         kopf liveness /healthz port (8082; 0 = pick a free one)
THUNDERBOLT_SERVING_IMAGE       inference-server image (thunderbolt-trainer:0.1.0)
THUNDERBOLT_RESYNC_SECONDS      how often every Experiment is reconciled without an event (15)
THUNDERBOLT_RECONCILE_WORKERS   threads reconciling Experiments from the event queue (4)
THUNDERBOLT_RECORDS_CHECK_SECONDS  how often Trials are compared with their MLflow runs, per
                                tracked Experiment (300; 0 = never): the RecordsConsistent condition
THUNDERBOLT_WEBHOOK_SECRET_FILE  file holding the MLflow webhook secret; set = the registry
                                webhook endpoint is on (default off)
THUNDERBOLT_WEBHOOK_PORT        port of that endpoint (8083; 0 = pick a free one)
THUNDERBOLT_REPORT_WRITE_DELAY  report write-behind delay in seconds (0.2; 0 = write first)
THUNDERBOLT_PEERING             "true" = kopf peering (several replicas); default standalone
THUNDERBOLT_MODEL_SOURCE_HOSTS  hosts (host or host:port, comma-separated; "*" = any) whose
                                MLflow servers ModelDeployments may name; default: the host of
                                THUNDERBOLT_MLFLOW_URI only
THUNDERBOLT_ALLOW_FILE_SOURCES  "true" = mlflowModel.trackingUri may be a file:// path the
                                operator reads; default refused
THUNDERBOLT_MAX_MODEL_BYTES     largest model the operator downloads to verify (200 MiB)
THUNDERBOLT_REQUIRE_CHECKSUM_TAG  "true" = refuse MLflow model versions without a
                                thunderbolt.io/checksum tag; default: the computed hash is used
THUNDERBOLT_TRIAL_SERVICE_ACCOUNTS  ServiceAccounts a trialTemplate may name (comma-separated;
                                "*" = any); default none: Trials run as the namespace default
KUBECONFIG                      kubeconfig outside a cluster (``--kubeconfig`` overrides)
THUNDERBOLT_KUBE_CONTEXT        kubeconfig context to use (``--context``); default: current
==============================  =============================================================
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_IMAGE = "thunderbolt-trainer:0.1.0"
DEFAULT_METRICS_PORT = 8080
DEFAULT_REPORT_PORT = 8081
DEFAULT_HEALTH_PORT = 8082
DEFAULT_WEBHOOK_PORT = 8083
DEFAULT_RECORDS_CHECK_SECONDS = 300.0
# Reconciles run off a queue of Experiment keys (operator/workqueue.py); a few threads
# keep one slow API call from holding the rest, more only add contention on 2 cores.
DEFAULT_RECONCILE_WORKERS = 4
# Seconds the report endpoint waits to batch status writes (see ``reports.writer``).
DEFAULT_REPORT_WRITE_DELAY = 0.2
# Below the operator pod's 256 MiB /tmp, so one verification can never fill it.
DEFAULT_MAX_MODEL_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    mlflow_tracking_uri: str | None = None
    artifacts_uri: str | None = None
    s3_endpoint_url: str | None = None
    artifacts_credentials_secret: str | None = None
    report_url: str | None = None
    report_port: int = DEFAULT_REPORT_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    health_port: int = DEFAULT_HEALTH_PORT
    serving_image: str = DEFAULT_IMAGE
    bind_address: str = "0.0.0.0"
    kubeconfig: str | None = None
    kube_context: str | None = None
    peering: bool = False
    resync_seconds: float = 15.0
    reconcile_workers: int = DEFAULT_RECONCILE_WORKERS
    report_write_delay: float = DEFAULT_REPORT_WRITE_DELAY
    model_source_hosts: tuple[str, ...] = ()
    allow_file_sources: bool = False
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    require_checksum_tag: bool = False
    trial_service_accounts: tuple[str, ...] = ()
    records_check_seconds: float = DEFAULT_RECORDS_CHECK_SECONDS
    webhook_secret_file: str | None = None
    webhook_port: int = DEFAULT_WEBHOOK_PORT

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def in_scope(self, namespace: str | None) -> bool:
        """Whether the operator acts on objects in ``namespace`` (watched, not excluded)."""
        if not namespace:
            return False
        if self.namespaces and namespace not in self.namespaces:
            return False
        return not any(fnmatch.fnmatchcase(namespace, glob) for glob in self.exclude_namespaces)


def namespace_in_scope(namespace: Any = None, **_: Any) -> bool:
    """Kopf's ``when=`` filter for every handler: objects out of scope are never touched
    (and so never get a finalizer from a timer)."""
    return current().in_scope(namespace)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def _workers(value: str | None) -> int:
    workers = int(value) if value else DEFAULT_RECONCILE_WORKERS
    if not 1 <= workers <= 64:
        raise ValueError(f"THUNDERBOLT_RECONCILE_WORKERS must be 1-64, not {workers}")
    return workers


def _port(value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


_HANDED_OUT: set[int] = set()


def free_port(host: str = "") -> int:
    """A port the kernel says is free now (racy, but fine for local runs and tests).

    Never the same port twice in one process: the kernel often hands the port just
    closed out again, so two calls in a row (an HTTP and a gRPC port) could collide.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def from_env(env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Settings from environment variables only (ports of 0 are kept as 0)."""
    env = os.environ if env is None else env

    def opt(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    return OperatorSettings(
        namespaces=_split(env.get("THUNDERBOLT_NAMESPACES")),
        exclude_namespaces=_split(env.get("THUNDERBOLT_EXCLUDE_NAMESPACES")),
        mlflow_tracking_uri=opt("THUNDERBOLT_MLFLOW_URI"),
        artifacts_uri=opt("THUNDERBOLT_ARTIFACTS_URI"),
        s3_endpoint_url=opt("THUNDERBOLT_S3_ENDPOINT"),
        artifacts_credentials_secret=opt("THUNDERBOLT_ARTIFACTS_SECRET"),
        report_url=opt("THUNDERBOLT_REPORT_URL"),
        report_port=_port(env.get("THUNDERBOLT_REPORT_PORT"), DEFAULT_REPORT_PORT),
        metrics_port=_port(env.get("THUNDERBOLT_METRICS_PORT"), DEFAULT_METRICS_PORT),
        health_port=_port(env.get("THUNDERBOLT_HEALTH_PORT"), DEFAULT_HEALTH_PORT),
        serving_image=opt("THUNDERBOLT_SERVING_IMAGE") or DEFAULT_IMAGE,
        kubeconfig=opt("KUBECONFIG"),
        kube_context=opt("THUNDERBOLT_KUBE_CONTEXT"),
        resync_seconds=float(env.get("THUNDERBOLT_RESYNC_SECONDS") or 15.0),
        reconcile_workers=_workers(env.get("THUNDERBOLT_RECONCILE_WORKERS")),
        report_write_delay=float(
            env.get("THUNDERBOLT_REPORT_WRITE_DELAY") or DEFAULT_REPORT_WRITE_DELAY
        ),
        peering=_flag(env.get("THUNDERBOLT_PEERING")),
        model_source_hosts=_split(env.get("THUNDERBOLT_MODEL_SOURCE_HOSTS")),
        allow_file_sources=_flag(env.get("THUNDERBOLT_ALLOW_FILE_SOURCES")),
        max_model_bytes=int(env.get("THUNDERBOLT_MAX_MODEL_BYTES") or DEFAULT_MAX_MODEL_BYTES),
        trial_service_accounts=_split(env.get("THUNDERBOLT_TRIAL_SERVICE_ACCOUNTS")),
        require_checksum_tag=_flag(env.get("THUNDERBOLT_REQUIRE_CHECKSUM_TAG")),
        records_check_seconds=float(
            env.get("THUNDERBOLT_RECORDS_CHECK_SECONDS") or DEFAULT_RECORDS_CHECK_SECONDS
        ),
        webhook_secret_file=opt("THUNDERBOLT_WEBHOOK_SECRET_FILE"),
        webhook_port=_port(env.get("THUNDERBOLT_WEBHOOK_PORT"), DEFAULT_WEBHOOK_PORT),
    )


def resolve_ports(settings: OperatorSettings) -> OperatorSettings:
    """Replace every port of 0 by a free one, so the real ports can be logged and used."""
    changes: dict[str, Any] = {}
    for name in ("metrics_port", "report_port", "health_port", "webhook_port"):
        if getattr(settings, name) == 0:
            changes[name] = free_port()
    return dataclasses.replace(settings, **changes) if changes else settings


def load_settings(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> OperatorSettings:
    """Environment, then ``overrides`` (CLI flags; None values are ignored), then free ports."""
    settings = from_env(env)
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    for name in ("namespaces", "exclude_namespaces"):
        if name in changes:
            changes[name] = tuple(changes[name])
    if changes:
        settings = dataclasses.replace(settings, **changes)
    return resolve_ports(settings)


_current: OperatorSettings | None = None


def set_current(settings: OperatorSettings) -> None:
    """Record the running operator's settings (called once by ``main.run``)."""
    global _current
    _current = settings


def current() -> OperatorSettings:
    """The running operator's settings; environment defaults when none were set (tests)."""
    global _current
    if _current is None:
        _current = from_env()
    return _current
