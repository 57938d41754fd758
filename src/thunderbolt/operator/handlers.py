"""Kopf handlers for Experiments and Trials: thin, each delegates to one function.

Event flow: an Experiment change reconciles it (creates Trials); a new Trial gets its
Job; Job and pod events update the Trial's status; a Trial that finishes reconciles
its Experiment again, which creates the successor. Those event-driven reconciles go
through a queue of Experiment keys, and the status syncs through a queue of Trial keys
(``workqueue.py``: one run per burst of events, keys served in turn); the event
handlers that only queue run on Kopf's event loop, not in its threads. A periodic
resync queues every unsettled Experiment in case an event was missed. No handler here
adds a finalizer, so deleting an Experiment does not wait for the operator (owner
references do the rest) — unless it has ``spec.promote`` (Kopf puts a finalizer on
every object a timer runs for: deploy/handlers.py) or ``retention.onDelete: Delete``
(retention_handlers.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.meta import EXPERIMENT_LABEL, GROUP, TRIAL_LABEL, VERSION
from thunderbolt.operator import consistency, experiments, kube, leadership, metrics, trials
from thunderbolt.operator.search import STUDIES
from thunderbolt.operator.tally import TALLIES
from thunderbolt.operator.trialcache import TRIALS
from thunderbolt.operator.workqueue import KeyQueue
from thunderbolt.settings import OperatorSettings, current, namespace_in_scope

log = logging.getLogger(__name__)
RETRY_DELAY = 5
CHILDREN_WAIT = 30.0  # s a create handler waits for the reconcile making the children
STATUS_SYNC_WORKERS = 8  # threads syncing Trial status from Jobs and pods


def _retry_later(kind: str, exc: Exception) -> kopf.TemporaryError:
    metrics.ERRORS.labels(kind).inc()
    return kopf.TemporaryError(f"{type(exc).__name__}: {exc}", delay=RETRY_DELAY)


@kopf.on.create(GROUP, VERSION, "experiments", when=namespace_in_scope)
@kopf.on.resume(GROUP, VERSION, "experiments", when=namespace_in_scope)
@kopf.on.update(GROUP, VERSION, "experiments", field="spec", when=namespace_in_scope)
def experiment_changed(name: str, namespace: Any, **_: Any) -> None:
    try:
        experiments.reconcile(namespace, name, current())
    except ApiException as exc:
        raise _retry_later("experiment", exc) from exc


@kopf.on.event(GROUP, VERSION, "experiments", when=namespace_in_scope)
def experiment_deleted(type: str, body: Any, **_: Any) -> None:
    if type == "DELETED":
        STUDIES.forget(body["metadata"]["uid"])
        TALLIES.forget(body["metadata"]["uid"])
        TRIALS.forget(body["metadata"]["namespace"], body["metadata"]["name"])
        metrics.forget_experiment(body["metadata"]["namespace"], body["metadata"]["name"])


@kopf.on.create(GROUP, VERSION, "trials", when=namespace_in_scope)
@kopf.on.resume(GROUP, VERSION, "trials", when=namespace_in_scope)
def trial_created(name: str, namespace: Any, uid: Any, **_: Any) -> None:
    if trials.CHILDREN.made(uid, wait=CHILDREN_WAIT):
        return  # by this process, in the reconcile that created the Trial
    try:
        # Read the Trial again: under load the body Kopf hands over can be minutes old
        # (it waited for a worker), and a Trial that finished meanwhile, whose Job was
        # already deleted, must not get a new Job (seen with 100 Experiments at once).
        trial = kube.get_custom("trials", namespace, name)
        if trial is not None:
            trials.ensure_children(trial, current())
            trials.announce_validation(trial)  # finished before a restart: Event missing?
    except ApiException as exc:
        raise _retry_later("trial", exc) from exc


def _reconcile_quietly(key: tuple[str, str]) -> None:
    """Off the queue (no retries): a failure waits for the periodic resync."""
    namespace, experiment = key
    try:
        experiments.reconcile(namespace, experiment, current())
    except Exception:
        metrics.ERRORS.labels("experiment").inc()
        log.exception("reconcile of experiment %s/%s failed", namespace, experiment)


# Events and the resync only add their Experiment's key: one reconcile per burst of
# events, Experiments served in turn (workqueue.py). Started with the operator.
RECONCILES: KeyQueue[tuple[str, str]] = KeyQueue(
    _reconcile_quietly, workers=1, observe_wait=metrics.RECONCILE_QUEUE_WAIT.observe
)
metrics.RECONCILE_QUEUE.set_function(RECONCILES.depth)


def _reconcile_soon(namespace: str, experiment: str) -> None:
    RECONCILES.add((namespace, experiment))


@kopf.on.event(GROUP, VERSION, "trials", when=namespace_in_scope)
async def trial_event(type: str, body: Any, **_: Any) -> None:
    """A Trial that finished (or vanished) frees a slot: reconcile its Experiment.

    Runs on the event loop (in-memory work only), not in the executor: under load the
    executor's threads are busy with Job and pod syncs, and this event is the one the
    successor waits for."""
    # first, so the reconcile below sees this event; a replay of a known phase is no news
    news = TRIALS.observe(type, body)
    meta = body["metadata"]
    experiment = (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
    if not experiment:
        return
    phase = (body.get("status") or {}).get("phase") or "Pending"
    if type == "DELETED":
        trials.forget(meta["namespace"], meta["name"], meta["uid"])
    elif not news or phase not in trials.FINISHED_PHASES:
        return
    else:
        search = STUDIES.peek(experiments.experiment_uid(body) or "")
        number = (body.get("spec") or {}).get("number")
        if search is not None and number in search.told:
            return  # already counted (e.g. the replay of a restart)
    _reconcile_soon(meta["namespace"], experiment)


def _sync_quietly(key: tuple[str, str, str]) -> None:
    """Off the status-sync queue (no retries: the Job's or pod's next event syncs again)."""
    namespace, name, experiment = key
    try:
        finished = trials.sync(namespace, name)
    except ApiException:
        metrics.ERRORS.labels("trial").inc()
        log.exception("status sync of trial %s/%s failed", namespace, name)
        return
    if finished is None:
        return
    if finished.stored is not None:
        # The cache learns the new phase now, not a watch round-trip later: the reconcile
        # queued next tells the Trial and starts the successor, and the Trial's watch
        # event then finds it told (one reconcile per finished Trial, not two).
        TRIALS.observe("MODIFIED", finished.stored)
    if experiment:
        _reconcile_soon(namespace, experiment)  # queued: the successor comes from there
    trials.announce(finished)


# Job and pod events only add their Trial's key: the events of one burst (Job created,
# pod created, scheduled...) that arrive while the key waits make one sync (a read of
# the Trial, its Job and pods), and the syncs leave Kopf's handler threads free.
STATUS_SYNCS: KeyQueue[tuple[str, str, str]] = KeyQueue(
    _sync_quietly,
    workers=STATUS_SYNC_WORKERS,
    name="status sync",
    observe_wait=metrics.STATUS_SYNC_QUEUE_WAIT.observe,
)
metrics.STATUS_SYNC_QUEUE.set_function(STATUS_SYNCS.depth)


def _sync_soon(namespace: str, labels: Any) -> None:
    name = (labels or {}).get(TRIAL_LABEL)
    if not name or TRIALS.finished(namespace, name):
        return  # a finished Trial's status is final: no reads for its Job's last events
    STATUS_SYNCS.add((namespace, name, (labels or {}).get(EXPERIMENT_LABEL) or ""))


@kopf.on.event("batch", "v1", "jobs", labels={TRIAL_LABEL: kopf.PRESENT}, when=namespace_in_scope)
async def job_event(type: str, namespace: Any, labels: Any, **_: Any) -> None:
    if type != "DELETED":
        _sync_soon(namespace, labels)


@kopf.on.event("", "v1", "pods", labels={TRIAL_LABEL: kopf.PRESENT}, when=namespace_in_scope)
async def pod_event(type: str, namespace: Any, labels: Any, **_: Any) -> None:
    if type != "DELETED":
        _sync_soon(namespace, labels)


def _resync_all(settings: OperatorSettings) -> None:
    namespaces: tuple[str | None, ...] = settings.namespaces or (None,)
    for namespace in namespaces:
        for exp in kube.list_experiments(namespace):
            meta, status = exp["metadata"], exp.get("status") or {}
            if not settings.in_scope(meta["namespace"]):
                continue
            settled = status.get("phase") in ("Succeeded", "Failed") and status.get(
                "observedGeneration"
            ) == meta.get("generation")
            if not settled:
                _reconcile_soon(meta["namespace"], meta["name"])


def _standby(settings: OperatorSettings, kopf_settings: kopf.OperatorSettings) -> str | None:
    """Why this replica must not resync now (another peer is active), else None."""
    if not settings.peering:
        return None
    scopes: tuple[str | None, ...] = settings.namespaces or (None,)
    peering = kopf_settings.peering
    return leadership.is_standby(peering.name, scopes, peering.priority)


def _resync_round(settings: OperatorSettings, kopf_settings: kopf.OperatorSettings) -> None:
    reason = _standby(settings, kopf_settings)
    if reason:
        log.debug("resync skipped: standing by (%s)", reason)
        return
    _resync_all(settings)


async def _resync_loop(settings: OperatorSettings, kopf_settings: kopf.OperatorSettings) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(settings.resync_seconds)
        try:
            await loop.run_in_executor(None, _resync_round, settings, kopf_settings)
        except Exception:
            metrics.ERRORS.labels("resync").inc()
            log.exception("periodic resync failed")


@kopf.on.startup()
async def start_resync(memo: Any, settings: kopf.OperatorSettings, **_: Any) -> None:
    RECONCILES.start(current().reconcile_workers)
    STATUS_SYNCS.start()
    # Kopf pauses its own handlers on a standby replica; this loop asks leadership.
    memo.resync_task = asyncio.create_task(_resync_loop(current(), settings))
    # Trials vs MLflow, on the active replica only (the RecordsConsistent condition).
    operator = current()
    memo.records_task = asyncio.create_task(
        consistency.loop(operator, lambda: _standby(operator, settings))
    )


@kopf.on.cleanup()
async def stop_resync(memo: Any, **_: Any) -> None:
    for name in ("resync_task", "records_task"):
        task = getattr(memo, name, None)
        if task is not None:
            task.cancel()
    loop = asyncio.get_running_loop()
    await asyncio.gather(
        loop.run_in_executor(None, RECONCILES.stop), loop.run_in_executor(None, STATUS_SYNCS.stop)
    )
