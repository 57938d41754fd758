"""Start the operator process: metrics endpoint, handler modules, then Kopf.

``HANDLER_MODULES`` lists every module whose ``@kopf.on`` handlers make up the operator;
other concerns (live reports, deployments) add their module here. They are imported
only when the operator starts, so importing ``thunderbolt.operator`` stays cheap.
"""

from __future__ import annotations

import importlib
import logging
import os

from thunderbolt.operator.settings import OperatorSettings, set_current

HANDLER_MODULES: tuple[str, ...] = ("thunderbolt.operator.handlers",)

log = logging.getLogger("thunderbolt.operator")


def load_kube_config(settings: OperatorSettings) -> None:
    """Configure the kubernetes client the handlers use: in-cluster, else a kubeconfig."""
    from kubernetes import config

    if settings.kubeconfig:
        # kopf's own login reads KUBECONFIG too, so both clients see the same cluster.
        os.environ["KUBECONFIG"] = settings.kubeconfig
        config.load_kube_config(config_file=settings.kubeconfig)
        return
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def import_handlers(modules: tuple[str, ...] = HANDLER_MODULES) -> None:
    for name in modules:
        importlib.import_module(name)


def start_metrics(settings: OperatorSettings) -> None:
    from prometheus_client import start_http_server

    start_http_server(settings.metrics_port, addr=settings.bind_address)


def run(settings: OperatorSettings) -> None:
    """Run the operator until interrupted; blocks."""
    import kopf

    set_current(settings)
    load_kube_config(settings)
    start_metrics(settings)
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
        memo=kopf.Memo(settings=settings),
    )
