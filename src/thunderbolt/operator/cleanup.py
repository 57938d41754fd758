"""Run what ``retention`` decides: start cleanup Jobs, record their outcome, and delete an
Experiment's artifacts before it goes (``spec.retention.onDelete: Delete``).

Never blocks for long and never forever: one retention Job per Experiment at a time, a
failed one is retried only after ``RETRY_AFTER_SECONDS``, and a deletion that fails or
outlasts ``DELETE_WAIT_SECONDS`` ends with a Warning Event and lets the Experiment go.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, VERSION, format_time, now_utc, parse_time
from thunderbolt.operator import kube, retention
from thunderbolt.settings import OperatorSettings

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 600
# The deletion Job's deadline and a margin for its pod to start and report.
DELETE_WAIT_SECONDS = retention.JOB_DEADLINE_SECONDS + 120


def _raw(response: Any) -> Any:
    return json.loads(response.data)


def list_deployments(settings: OperatorSettings) -> list[dict[str, Any]]:
    """Every ModelDeployment the operator may read: a model any of them names is kept."""
    api = client.CustomObjectsApi()
    if not settings.namespaces:
        resp = api.list_cluster_custom_object(
            GROUP, VERSION, "modeldeployments", _preload_content=False
        )
        return list(_raw(resp)["items"])
    items: list[dict[str, Any]] = []
    for namespace in settings.namespaces:
        resp = api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", _preload_content=False
        )
        items += _raw(resp)["items"]
    return items


def _jobs(namespace: str, experiment: str, kind: str) -> list[dict[str, Any]]:
    selector = f"{EXPERIMENT_LABEL}={experiment},{retention.CLEANUP_LABEL}={kind}"
    resp = client.BatchV1Api().list_namespaced_job(
        namespace, label_selector=selector, _preload_content=False
    )
    return list(_raw(resp)["items"])


def _age_seconds(obj: Mapping[str, Any]) -> float:
    created = parse_time(obj["metadata"].get("creationTimestamp"))
    return (now_utc() - created).total_seconds() if created else 0.0


def _busy(namespace: str, experiment: str) -> bool:
    """A retention Job runs, finished unrecorded (recorded now; the Trials just listed
    are stale), or failed recently (retried later, not at every reconcile)."""
    busy = False
    for job in _jobs(namespace, experiment, "retention"):
        outcome = retention.job_outcome(job)
        if outcome is None or (outcome == "Failed" and _age_seconds(job) < RETRY_AFTER_SECONDS):
            busy = True
        elif outcome == "Succeeded":
            retention_job_changed(job)
            busy = True
        else:
            kube.delete_job(namespace, job["metadata"]["name"])
    return busy


def retain(
    experiment: dict[str, Any],
    spec: ExperimentSpec,
    trials: list[dict[str, Any]],
    settings: OperatorSettings,
) -> str | None:
    """After a reconcile: start a Job deleting the artifacts of Trials outside the best
    ``keepBest``; the name of the Job created, else None."""
    if spec.retention is None or spec.retention.keepBest is None:
        return None
    store = retention.store_uri(experiment.get("spec"), settings)
    if store is None or not retention.victims(
        experiment, spec, trials, store, settings, any_store=True
    ):
        return None  # the cheap check first (on cached Trials): no API call when nothing goes
    meta = experiment["metadata"]
    if _busy(meta["namespace"], meta["name"]):
        return None
    # Fresh Trials (the cache may not have seen the last Job's marks yet) and deployments.
    trials = kube.list_trials(meta["namespace"], meta["name"], meta["uid"])
    protected = retention.protected_models(list_deployments(settings))
    chosen = retention.victims(experiment, spec, trials, store, settings, protected)
    if not chosen:
        log.info("%s/%s: retention: nothing to delete", meta["namespace"], meta["name"])
        return None
    plan = retention.retention_plan(store, chosen, protected)
    job = retention.cleanup_job(experiment, spec, plan, settings, "retention")
    if kube.create(job):
        log.info(
            "%s/%s: retention job %s", meta["namespace"], meta["name"], job["metadata"]["name"]
        )
        kube.post_event(
            experiment,
            "ArtifactCleanupStarted",
            f"job {job['metadata']['name']} deletes the artifacts of {len(plan.trials)} "
            f"trials outside the best {spec.retention.keepBest}: {', '.join(plan.trials)}",
        )
    return str(job["metadata"]["name"])


def retention_job_changed(job: dict[str, Any]) -> str | None:
    """A retention Job changed: when it succeeded, mark its Trials (``artifactsDeleted``)
    and delete it; when it failed, say so (kept until ``_busy`` retries). Returns the
    outcome once finished."""
    outcome = retention.job_outcome(job)
    if outcome is None:
        return None
    meta = job["metadata"]
    namespace, experiment_name = meta["namespace"], (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
    experiment = kube.get_custom("experiments", namespace, experiment_name or "")
    if outcome == "Failed":
        if experiment is not None:
            kube.post_event(
                experiment,
                "ArtifactCleanupFailed",
                f"job {meta['name']} could not delete every artifact (see its pod's log); "
                f"retried in {RETRY_AFTER_SECONDS}s",
                warning=True,
            )
        return outcome
    marked = []
    for name in retention.job_trials(job):
        trial = kube.get_custom("trials", namespace, name)
        if trial is None or (trial.get("status") or {}).get("artifactsDeleted"):
            continue
        record = {
            "reason": "Retention",
            "time": format_time(now_utc()),
            "job": meta["name"],
            "message": "model and files deleted from the store: outside spec.retention.keepBest",
        }
        kube.patch_status("trials", namespace, name, {"artifactsDeleted": record})
        marked.append(name)
    if experiment is not None and marked:
        kube.post_event(
            experiment, "ArtifactsDeleted", f"deleted the artifacts of {', '.join(marked)}"
        )
    kube.delete_job(namespace, meta["name"])
    return outcome


def on_delete(
    experiment: dict[str, Any],
    spec: ExperimentSpec | None,
    settings: OperatorSettings,
    waited_seconds: float,
) -> bool:
    """The Experiment is being deleted with ``onDelete: Delete``: True once its artifacts
    are deleted, or when that failed or took too long (a Warning Event says so); False
    to be asked again."""
    meta = experiment["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    store = retention.store_uri(experiment.get("spec"), settings)
    if store is None:
        kube.post_event(
            experiment,
            "ArtifactsRetained",
            "no file:// or s3:// artifact store: nothing for onDelete: Delete to delete",
        )
        return True
    try:
        jobs = _jobs(namespace, name, "delete")
        mine = [j for j in jobs if j["metadata"]["labels"].get(retention.UID_LABEL) == meta["uid"]]
        job = mine[0] if mine else None
        if job is None:
            trials = kube.list_trials(namespace, name, meta["uid"])
            protected = retention.protected_models(list_deployments(settings))
            plan = retention.deletion_plan(experiment, store, trials, protected)
            job = retention.cleanup_job(experiment, spec, plan, settings, "delete")
            if kube.create(job):
                kube.post_event(
                    experiment,
                    "ArtifactDeletionStarted",
                    f"job {job['metadata']['name']} deletes {', '.join(plan.prefixes[:3])}"
                    + (f" and {len(plan.prefixes) - 3} more" if len(plan.prefixes) > 3 else "")
                    + (f", keeping {len(plan.keep)} deployed models" if plan.keep else ""),
                )
            return False
        outcome = retention.job_outcome(job)
    except ApiException as exc:
        if waited_seconds < DELETE_WAIT_SECONDS:
            raise
        outcome, job = f"Failed ({exc.status} from the API)", None
    if outcome is None and waited_seconds < DELETE_WAIT_SECONDS:
        return False
    if outcome == "Succeeded":
        kube.post_event(experiment, "ArtifactsDeleted", f"deleted the artifacts under {store}")
    else:
        kube.post_event(
            experiment,
            "ArtifactDeletionFailed",
            f"artifacts may remain under {store}: the deletion "
            + (f"job {job['metadata']['name']} " if job else "")
            + ("failed" if outcome else f"did not finish within {DELETE_WAIT_SECONDS}s")
            + "; the Experiment is deleted anyway",
            warning=True,
        )
    if job is not None and outcome is not None:
        kube.delete_job(namespace, job["metadata"]["name"])
    return True
