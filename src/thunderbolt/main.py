"""Start the operator process: metrics endpoint, handler modules, then Kopf.

The top of the import layers: ``import_handlers`` imports every module whose
``@kopf.on`` handlers make up the operator (Experiments/Trials, deployments, live
reports, log/file metric collectors); other concerns add theirs there. They are imported only when the operator
starts, so importing any package stays cheap. Handlers reach the settings through
``thunderbolt.settings.current()``, which ``run`` sets first.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from thunderbolt.settings import OperatorSettings, set_current

# Kopf keeps its handler progress in annotations under our own prefix, never in
# status (the CRD status schemas have no room for it).
ANNOTATION_PREFIX = "operator.thunderbolt.io"

log = logging.getLogger("thunderbolt.operator")


# Watch-event handlers: they run for every event of every Trial, Job and pod, so their
# "succeeded" lines were most of the operator's log (tests/unit/operator/test_quiet_logs.py
# checks that each is one).
ROUTINE_EVENT_HANDLERS = ("trial_event", "job_event", "pod_event", "experiment_deleted")


class QuietRoutineSuccesses(logging.Filter):
    """Drops Kopf's "Timer 'x' succeeded." lines, and "Handler 'x' succeeded." for the
    watch-event handlers, below DEBUG.

    The deployment timers tick every few seconds per ModelDeployment and the event
    handlers run several times per Trial; failures and retries still show, and so do the
    create and update handlers' successes.
    """

    _routine = tuple(f"Handler '{name}' succeeded." for name in ROUTINE_EVENT_HANDLERS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        message = record.getMessage()
        if message.startswith("Timer '") and message.endswith("' succeeded."):
            return False
        return message not in self._routine


def quiet_routine_logs() -> None:
    """Installs the filters on Kopf's per-object logger; idempotent."""
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietRoutineSuccesses) for f in objects.filters):
        objects.addFilter(QuietRoutineSuccesses())


def load_kube_config(settings: OperatorSettings) -> None:
    """Configure the kubernetes client the handlers use: kubeconfig if named, else in-cluster."""
    from thunderbolt.kubeclient import load_config

    load_config(settings.kubeconfig, settings.kube_context)


def connection_info(settings: OperatorSettings, kopf_settings: Any) -> Any:
    """Kopf credentials from the same kubeconfig/context the kubernetes client uses."""
    import kopf
    from kubernetes import client

    load_kube_config(settings)
    cfg = client.Configuration.get_default_copy()
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        trust_env=kopf_settings.networking.trust_env,
    )


def register_lifecycle(settings: OperatorSettings) -> None:
    """Login and Kopf settings handlers; registered once per process by ``run``."""
    import kopf

    @kopf.on.login()
    def login(settings: kopf.OperatorSettings, **_: Any) -> Any:
        return connection_info(operator_settings, settings)

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
        # Only problems become Kubernetes Events; our own Events say what happened.
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60
        settings.execution.max_workers = 16
        # Kopf waits this long for more events on an object before handling it; the
        # default 0.1 s is most of a Trial -> successor hand-over on a quiet cluster.
        settings.batching.batch_window = 0.02
        # Scoped to named namespaces, a Role is enough: no cluster-wide list/watch of
        # namespaces and CRDs (the CRDs must exist when the operator starts).
        settings.scanning.disabled = bool(operator_settings.namespaces)
        if operator_settings.peering:
            # Kopf lets every peer of equal priority run at once; a distinct random
            # priority per replica leaves exactly one active and the others on standby.
            settings.peering.priority = random.SystemRandom().randint(1, 2**30)

    operator_settings = settings


def import_handlers() -> None:
    """Registers the handlers with Kopf (importing a handler module is what registers it).

    Order matters for start-up activities: the collectors use the report endpoint that
    ``reports.handlers`` starts, so they come after it.
    """
    import thunderbolt.deploy.handlers  # noqa: F401
    import thunderbolt.operator.handlers  # noqa: F401
    import thunderbolt.operator.retention_handlers  # noqa: F401
    import thunderbolt.reports.handlers  # noqa: F401
    import thunderbolt.collectors.handlers  # noqa: F401  # isort: skip


def start_metrics(settings: OperatorSettings) -> None:
    from prometheus_client import start_http_server

    start_http_server(settings.metrics_port, addr=settings.bind_address)


def run(settings: OperatorSettings) -> None:
    """Run the operator until interrupted; blocks."""
    import kopf

    from thunderbolt.operator import leadership

    set_current(settings)
    load_kube_config(settings)
    start_metrics(settings)
    register_lifecycle(settings)
    quiet_routine_logs()
    import_handlers()
    scope = ", ".join(settings.namespaces) if settings.namespaces else "all namespaces"
    print(
        f"thunderbolt operator: watching {scope}; metrics on :{settings.metrics_port}/metrics,"
        f" reports on :{settings.report_port}, health on :{settings.health_port}/healthz",
        flush=True,
    )
    kopf.run(
        standalone=not settings.peering,
        clusterwide=settings.clusterwide,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://{settings.bind_address}:{settings.health_port}/healthz",
        memo=kopf.Memo(),
        identity=leadership.own_identity(),  # type: ignore[arg-type]  # NewType of str
    )
