"""Kopf handlers of the ModelDeployment controller: timers over ``reconcile.Controller``.

Timers, not change handlers: a rollout moves on readiness, pauses and metrics as much as
on spec edits, and a level-triggered tick every ``TICK_SECONDS`` covers all of them
without sleeping in a handler. Handlers are sync (the kubernetes client blocks), so Kopf
runs them in its thread pool.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf

from thunderbolt.api.meta import GROUP, VERSION
from thunderbolt.deploy import builders as b
from thunderbolt.deploy import webhooks
from thunderbolt.deploy.kube import Kube
from thunderbolt.deploy.reconcile import Controller
from thunderbolt.deploy.sources import SourcePolicy
from thunderbolt.settings import current, namespace_in_scope

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
PROMOTE_SECONDS = 5.0

_lock = threading.Lock()
_controller: Controller | None = None


def controller() -> Controller:
    """One controller per operator process, built from the operator's settings."""
    global _controller
    with _lock:
        if _controller is None:
            settings = current()
            defaults = b.ServingDefaults(
                image=settings.serving_image,
                s3_endpoint_url=settings.s3_endpoint_url,
                credentials_secret=settings.artifacts_credentials_secret,
                mlflow_tracking_uri=settings.mlflow_tracking_uri,
            )
            _controller = Controller(Kube(), defaults, SourcePolicy.from_settings(settings))
        return _controller


def _poster(body: Any) -> Any:
    def post(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])

    return post


@kopf.timer(
    GROUP, VERSION, b.PLURAL, id="rollout", interval=TICK_SECONDS, backoff=5.0,
    when=namespace_in_scope,
)  # fmt: skip
def rollout(name: str, namespace: Any, body: kopf.Body, **_: Any) -> None:
    ctrl = controller()
    if ctrl.due(dict(body)):
        ctrl.tick(name, namespace, _poster(body))


def _promotes(spec: kopf.Spec, namespace: Any, **_: Any) -> bool:
    return namespace_in_scope(namespace) and bool(spec.get("promote"))


@kopf.timer(
    GROUP, VERSION, "experiments", id="promote", interval=PROMOTE_SECONDS, backoff=10.0,
    when=_promotes,
)  # fmt: skip
def promote(body: kopf.Body, **_: Any) -> None:
    def post_target(target: dict[str, Any], type_: str, reason: str, message: str) -> None:
        obj: Any = target
        kopf.event(obj, type=type_, reason=reason, message=message[:1024])

    controller().promote(dict(body), _poster(body), post_target)


@kopf.on.startup()
def start_webhooks(memo: Any, **_: Any) -> None:
    """The MLflow registry webhook endpoint, when a secret file is configured."""
    settings = current()
    path = settings.webhook_secret_file
    if not path:
        return
    try:
        webhooks.read_secret(path)
    except (OSError, ValueError) as exc:  # misconfigured: say so and stop, never run unsigned
        raise kopf.PermanentError(f"MLflow webhook secret {path}: {exc}") from exc
    endpoint = webhooks.Endpoint(lambda: webhooks.read_secret(path),
                                 controller().recheck_mlflow_model)  # fmt: skip
    memo.webhook_server = webhooks.serve(endpoint, settings.bind_address, settings.webhook_port)
    log.info("MLflow webhooks on :%d%s", settings.webhook_port, webhooks.PATH)


@kopf.on.cleanup()
def stop_webhooks(memo: Any, **_: Any) -> None:
    server = getattr(memo, "webhook_server", None)
    if server is not None:
        server.shutdown()
