"""Run one Trial: create its children (report Secret, ConfigMap, Job) and keep its
status in step with the Job and pods. Children are created, never read first; 409
means an earlier attempt made them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from thunderbolt.api import report_secret
from thunderbolt.api.meta import owner_reference
from thunderbolt.api.refusals import is_unfixable, refusal_message
from thunderbolt.api.trial import FINISHED_PHASES, TrialSpec
from thunderbolt.operator import kube, metrics, validation_digest
from thunderbolt.operator.builders import (
    build_configmap,
    build_job,
    trainer_config,
)
from thunderbolt.operator.locks import KeyedLocks
from thunderbolt.operator.trialstatus import derive, job_created, never_started, status_patch
from thunderbolt.operator.validation import SpecError, check_service_account, format_errors
from thunderbolt.settings import OperatorSettings

log = logging.getLogger(__name__)
_lock = KeyedLocks()  # one status sync per Trial at a time
STATUS_CONFLICT_RETRIES = 5


class ChildrenLedger:
    """Trials whose children this process made, or is making right now.

    The reconcile that creates a Trial makes its children at once; the Trial's create
    handler, fired by the watch meanwhile, asks here first and waits for that attempt
    instead of repeating it (a read and three creates answered 409, per Trial)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: set[str] = set()
        self._making: dict[str, threading.Event] = {}

    def begin(self, uid: str) -> None:
        with self._lock:
            self._making.setdefault(uid, threading.Event())

    def end(self, uid: str, made: bool) -> None:
        with self._lock:
            if made:
                self._made.add(uid)
            done = self._making.pop(uid, None)
        if done is not None:
            done.set()

    def made(self, uid: str, wait: float = 0.0) -> bool:
        """Whether this process made them; waits up to ``wait`` s for an attempt under way."""
        with self._lock:
            if uid in self._made:
                return True
            running = self._making.get(uid)
        if running is None or not running.wait(wait):
            return False
        with self._lock:
            return uid in self._made

    def forget(self, uid: str) -> None:
        with self._lock:
            self._made.discard(uid)

    def __len__(self) -> int:
        with self._lock:
            return len(self._made) + len(self._making)


CHILDREN = ChildrenLedger()


def forget(namespace: str, name: str, uid: str) -> None:
    """The Trial was deleted: drop what is kept per Trial (nothing outlives it)."""
    _lock.forget(f"{namespace}/{name}")
    CHILDREN.forget(uid)


def is_finished(trial: dict[str, Any]) -> bool:
    return (trial.get("status") or {}).get("phase") in FINISHED_PHASES


def experiment_ref(trial: dict[str, Any]) -> dict[str, Any] | None:
    """A minimal Experiment object (for Events) from the Trial's owner reference."""
    for ref in trial["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Experiment" and ref.get("controller"):
            return {
                "apiVersion": ref.get("apiVersion"),
                "kind": "Experiment",
                "metadata": {
                    "name": ref["name"],
                    "namespace": trial["metadata"]["namespace"],
                    "uid": ref.get("uid"),
                },
            }
    return None


def ensure_children(trial: dict[str, Any], settings: OperatorSettings) -> None:
    """Create what a Trial needs to run; nothing for a finished Trial.

    A Trial whose spec or children can never be valid fails once, with a reason, instead
    of being retried forever (it then counts against the Experiment's maxFailedTrials).
    """
    if is_finished(trial):
        return
    uid, made = str(trial["metadata"]["uid"]), False
    CHILDREN.begin(uid)
    try:
        _create_children(trial, settings)
        made = True
    except ValidationError as exc:
        _fail_for_good(trial, "InvalidSpec", format_errors(exc))
    except SpecError as exc:
        _fail_for_good(trial, "InvalidSpec", str(exc))
    except ApiException as exc:
        if not is_unfixable(exc):
            raise
        _fail_for_good(trial, "InvalidJobSpec", refusal_message(exc))
    finally:
        CHILDREN.end(uid, made)


def _fail_for_good(trial: dict[str, Any], reason: str, message: str) -> None:
    meta = trial["metadata"]
    log.warning("trial %s/%s cannot run: %s: %s", meta["namespace"], meta["name"], reason, message)
    status = never_started(trial, reason, message)
    kube.patch_status("trials", meta["namespace"], meta["name"], status)
    announce(Finished(trial, status))


def _ensure_report_secret(trial: dict[str, Any]) -> str:
    """The Trial's report-token Secret, created by us. A Secret of that name that is not
    this Trial's (planted before it existed, or left by an earlier Trial of the same
    name) is deleted and replaced: its token must never be mounted or trusted."""
    meta = trial["metadata"]
    name = report_secret.secret_name(meta["name"])
    if kube.create(report_secret.build_report_secret(trial)):
        return name
    existing = kube.get_secret(meta["namespace"], name)
    if existing is not None and not report_secret.owned_by(existing, trial):
        log.warning(
            "replacing report Secret %s/%s: not owned by this trial", meta["namespace"], name
        )
        kube.delete_secret(meta["namespace"], name, existing["metadata"]["uid"])
        if not kube.create(report_secret.build_report_secret(trial)):
            raise ApiException(status=409, reason=f"report Secret {name} was recreated meanwhile")
    return name


def _create_children(trial: dict[str, Any], settings: OperatorSettings) -> None:
    meta = trial["metadata"]
    spec = TrialSpec.model_validate(trial["spec"])
    check_service_account(spec.template, settings.trial_service_accounts)
    secret_name = _ensure_report_secret(trial) if settings.report_url else None
    config = trainer_config(trial, settings, with_report=secret_name is not None)
    kube.create(build_configmap(trial, config))
    job = build_job(trial, config, settings, secret_name)
    if not kube.create(job):
        existing = kube.get_job(meta["namespace"], meta["name"])
        if existing is not None:
            kube.adopt_job(existing, owner_reference(trial))
    if not (trial.get("status") or {}).get("jobName"):
        status = status_patch(trial.get("status") or {}, job_created(trial, meta["name"]))
        kube.patch_status("trials", meta["namespace"], meta["name"], status)


@dataclass(frozen=True)
class Finished:
    """A Trial that finished just now: announce it (after the successor is on its way)."""

    trial: dict[str, Any]
    status: dict[str, Any]
    stored: dict[str, Any] | None = None  # the Trial as the finishing write stored it


def sync(namespace: str, name: str) -> Finished | None:
    """Bring the Trial's status in line with its Job; says when it finished just now."""
    with _lock(f"{namespace}/{name}"), metrics.RECONCILE_SECONDS.labels("trial").time():
        for _ in range(STATUS_CONFLICT_RETRIES):
            trial = kube.get_custom("trials", namespace, name)
            if trial is None or is_finished(trial):
                return None
            job = kube.get_job(namespace, name)
            if job is None:
                return None  # not created yet; the create/resume handler makes it
            pods = kube.list_pods(namespace, name)
            outcome = derive(trial, job, pods)
            patch = status_patch(trial.get("status") or {}, outcome.status)
            if not patch:
                return None
            try:
                stored = kube.patch_status(
                    "trials", namespace, name, patch, trial["metadata"]["resourceVersion"]
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue  # someone else (the report endpoint) wrote first: re-read
                raise
            if outcome.stop_job:
                kube.delete_job(namespace, name)
            return Finished(trial, outcome.status, stored) if outcome.finished else None
        return None


def sync_and_announce(namespace: str, name: str) -> None:
    """``sync``, and the Events when that finished the Trial (its Experiment reconciles
    on the phase change through the Trial watch)."""
    finished = sync(namespace, name)
    if finished is not None:
        announce(finished)


def announce(finished: Finished) -> None:
    """Events on the Trial and its Experiment saying how the Trial ended."""
    trial, status = finished.trial, finished.status
    collected = status.get("collector") or {}
    if collected.get("kind") == "File" and collected.get("skipped"):
        shown = ", ".join(f"{n} {k}" for k, n in sorted(collected["skipped"].items()))
        kube.post_event(
            trial,
            "MetricsSkipped",
            f"the File collector skipped {shown} of {collected.get('lines', 0)} lines read",
            warning=True,
        )
    name = trial["metadata"]["name"]
    phase = status["phase"]
    text = f"trial {name} {phase.lower()}"
    if status.get("objective") is not None:
        text += f": objective={status['objective']}"
    if status.get("reason"):
        detail = f": {status['message']}" if status.get("message") else ""
        text += f" ({status['reason']}{detail})"
    warning = phase == "Failed"
    kube.post_event(trial, f"Trial{phase}", text, warning=warning)
    experiment = experiment_ref(trial)
    if experiment:
        kube.post_event(experiment, f"Trial{phase}", text, warning=warning)
    announce_validation(trial, status)


def announce_validation(trial: dict[str, Any], status: dict[str, Any] | None = None) -> None:
    """The Trial's one validation Event (failed or warned checks, DatasetError), if it
    is due and not posted yet; a finished Trial resumed after a restart gets it here."""
    try:
        validation_digest.announce(trial, trial.get("status") or {} if status is None else status)
    except ApiException as exc:
        log.warning("validation event of %s not marked: %s", trial["metadata"]["name"], exc)
