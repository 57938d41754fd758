"""Kopf handlers of retention (``operator.cleanup``): thin, each delegates to one function.

Only Experiments with ``spec.retention.onDelete: Delete`` get a finalizer (Kopf adds it
for the delete handler's filter and removes it when the spec changes back), so deleting
any other Experiment still never waits for the operator.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, VERSION
from thunderbolt.operator import cleanup, experiments, metrics, retention
from thunderbolt.operator.validation import SpecError, validate_experiment
from thunderbolt.settings import current, namespace_in_scope

log = logging.getLogger(__name__)
WAIT_DELAY = 5


def _deletes_artifacts(spec: Any, namespace: Any = None, **_: Any) -> bool:
    return namespace_in_scope(namespace) and (
        ((spec or {}).get("retention") or {}).get("onDelete") == "Delete"
    )


@kopf.on.delete(GROUP, VERSION, "experiments", when=_deletes_artifacts)
def experiment_deleting(body: Any, runtime: Any, **_: Any) -> None:
    experiment = dict(body)
    meta = experiment["metadata"]
    try:
        spec = validate_experiment(
            meta["name"], experiment.get("spec") or {}, current().trial_service_accounts
        )
    except SpecError:
        spec = None  # still delete what the store URI names; no Trial volumes known
    try:
        done = cleanup.on_delete(experiment, spec, current(), runtime.total_seconds())
    except ApiException as exc:
        metrics.ERRORS.labels("cleanup").inc()
        raise kopf.TemporaryError(f"{type(exc).__name__}: {exc.reason}", delay=WAIT_DELAY) from exc
    if not done:
        raise kopf.TemporaryError("waiting for the artifact deletion job", delay=WAIT_DELAY)


@kopf.on.event(
    "batch", "v1", "jobs", labels={retention.CLEANUP_LABEL: "retention"}, when=namespace_in_scope
)
def retention_job_event(type: str, body: Any, **_: Any) -> None:
    """A retention Job finished: record it on its Trials, then look for more to delete."""
    if type == "DELETED":
        return
    try:
        outcome = cleanup.retention_job_changed(dict(body))
    except ApiException:
        metrics.ERRORS.labels("cleanup").inc()
        log.exception("retention job %s: recording its outcome failed", body["metadata"]["name"])
        return
    experiment = (body["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)
    if outcome == "Succeeded" and experiment:
        try:
            experiments.reconcile(body["metadata"]["namespace"], experiment, current())
        except Exception:
            metrics.ERRORS.labels("experiment").inc()
            log.exception("reconcile after retention of %s failed", experiment)
