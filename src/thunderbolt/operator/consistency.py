"""The periodic records check: each tracked Experiment's ``RecordsConsistent`` condition.

Every ``records_check_seconds`` the active replica compares each Experiment that tracks
to MLflow with the runs tagged with it (``records.consistency``, the comparison
``thunderbolt check mlflow`` prints) and sets the condition: True ``Consistent``, False
with the most frequent kind of disagreement as the reason (``RunMissing``,
``ObjectiveDiffers``, ...), or Unknown when MLflow cannot be read. The message holds
counts only, never what MLflow returned. A turn to False posts a Warning Event.

Bounded: one Experiment at a time on one dedicated thread (MLflow's client blocks), with
MLflow's own request timeout and a deadline per round; a round still running when
the next is due is skipped. The operator only talks to the MLflow hosts it may fetch
models from (``THUNDERBOLT_MODEL_SOURCE_HOSTS``, else its own MLflow).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from kubernetes.client.exceptions import ApiException

from thunderbolt.api.meta import format_time, now_utc
from thunderbolt.operator import kube, metrics
from thunderbolt.operator.conditions import condition
from thunderbolt.operator.experiments import _lock as experiment_lock
from thunderbolt.records.consistency import Run, compare, fetch_runs, summary
from thunderbolt.settings import OperatorSettings

log = logging.getLogger(__name__)
CONDITION = "RecordsConsistent"
EVENT_REASON = "RecordsInconsistent"
# Seconds a round may run before the loop stops waiting for it (it is then left to finish
# and the rounds due meanwhile are skipped); each MLflow request has its own timeout.
ROUND_DEADLINE_S = 600.0
MIN_INTERVAL_S = 1.0  # a mistyped interval must not hammer MLflow

Fetch = Callable[[str, str, str, str], list[Run]]
Verdict = tuple[str, str, str]  # (condition status True|False|Unknown, reason, message)


def tracking(experiment: dict[str, Any], settings: OperatorSettings) -> tuple[str, str] | None:
    """(tracking URI, MLflow experiment name) when the Experiment tracks to MLflow."""
    mlflow = ((experiment.get("spec") or {}).get("tracking") or {}).get("mlflow")
    if mlflow is None:
        return None
    uri = mlflow.get("trackingUri") or settings.mlflow_tracking_uri
    if not uri:
        return None
    return uri, mlflow.get("experimentName") or experiment["metadata"]["name"]


def allowed(uri: str, settings: OperatorSettings) -> bool:
    """Whether the operator may talk to this MLflow (the model-source hosts rule)."""
    parsed = urlparse(uri)
    if parsed.scheme.lower() not in ("http", "https"):
        return False  # file:// or sqlite:// would read the operator's own disk
    hosts = settings.model_source_hosts
    if not hosts and settings.mlflow_tracking_uri:
        hosts = (urlparse(settings.mlflow_tracking_uri).netloc.rsplit("@", 1)[-1].lower(),)
    host, netloc = (parsed.hostname or "").lower(), parsed.netloc.rsplit("@", 1)[-1].lower()
    return any(fnmatch.fnmatch(host, p) or fnmatch.fnmatch(netloc, p) for p in hosts if p)


def judge(
    experiment: dict[str, Any], trials: list[dict[str, Any]], uri: str, mlflow_name: str,
    fetch: Fetch = fetch_runs,
) -> Verdict:  # fmt: skip
    meta = experiment["metadata"]
    try:
        runs = fetch(uri, meta["namespace"], meta["name"], mlflow_name)
    except ValueError as exc:
        return "Unknown", "Unchecked", str(exc)
    except Exception as exc:  # MLflow or the network: the type only, never the body
        return "Unknown", "MlflowUnreachable", f"cannot read MLflow: {type(exc).__name__}"
    consistent, reason, message = summary(compare(meta["name"], trials, runs))
    return ("True" if consistent else "False"), reason, message


def conditions_with(
    old: list[dict[str, Any]], verdict: Verdict, at: str, generation: int | None
) -> list[dict[str, Any]] | None:
    """The Experiment's conditions with ours set; None when nothing would change."""
    status, reason, message = verdict
    new = condition(CONDITION, status == "True", reason, message, at, generation)
    new["status"] = status
    if message:
        new["message"] = message  # False and Unknown say why too
    before = next((c for c in old if c.get("type") == CONDITION), None)
    if before is not None:
        same = all(before.get(k) == new.get(k) for k in ("status", "reason", "message"))
        if same:
            return None
        if before.get("status") == status and before.get("lastTransitionTime"):
            new["lastTransitionTime"] = before["lastTransitionTime"]
    return [c for c in old if c.get("type") != CONDITION] + [new]


def write(namespace: str, name: str, uid: str, verdict: Verdict, now: datetime) -> bool:
    """Set the condition on the current object (under the reconcile's lock, so neither
    write loses the other's); posts the Event on a turn to False. True when written."""
    with experiment_lock(f"{namespace}/{name}"):
        experiment = kube.get_custom("experiments", namespace, name)
        if experiment is None or experiment["metadata"].get("uid") != uid:
            return False
        old = (experiment.get("status") or {}).get("conditions") or []
        generation = experiment["metadata"].get("generation")
        merged = conditions_with(old, verdict, format_time(now), generation)
        if merged is None:
            return False
        kube.patch_status("experiments", namespace, name, {"conditions": merged},
                          experiment["metadata"]["resourceVersion"])  # fmt: skip
    was = next((c.get("status") for c in old if c.get("type") == CONDITION), None)
    if verdict[0] == "False" and was != "False":
        kube.post_event(experiment, EVENT_REASON, f"{verdict[1]}: {verdict[2]}", warning=True)
    return True


def check_one(experiment: dict[str, Any], settings: OperatorSettings) -> Verdict | None:
    """Check one Experiment and write its condition; None when it is not checked."""
    meta = experiment["metadata"]
    found = tracking(experiment, settings)
    if found is None or not settings.in_scope(meta["namespace"]):
        return None
    uri, mlflow_name = found
    if not allowed(uri, settings):
        verdict: Verdict = ("Unknown", "MlflowNotAllowed",
                            "the operator may not read this MLflow host (model-source hosts)")  # fmt: skip
    else:
        trials = kube.list_trials(meta["namespace"], meta["name"], meta.get("uid"))
        verdict = judge(experiment, trials, uri, mlflow_name)
    try:
        write(meta["namespace"], meta["name"], meta["uid"], verdict, now_utc())
    except ApiException as exc:
        if exc.status not in (404, 409):  # gone, or changed meanwhile: the next round
            raise
    return verdict


def check_round(settings: OperatorSettings, standby: Callable[[], str | None]) -> int:
    """One round over every tracked Experiment in scope; the number checked."""
    reason = standby()
    if reason:
        log.debug("records check skipped: standing by (%s)", reason)
        return 0
    checked = 0
    for namespace in settings.namespaces or (None,):
        for experiment in kube.list_experiments(namespace):
            try:
                checked += check_one(experiment, settings) is not None
            except Exception:
                metrics.ERRORS.labels("records").inc()
                log.exception("records check of %s failed", experiment["metadata"]["name"])
    return checked


async def loop(settings: OperatorSettings, standby: Callable[[], str | None]) -> None:
    """Rounds every ``records_check_seconds`` (the first after one interval)."""
    if settings.records_check_seconds <= 0:
        return
    # MLflow's client retries for minutes by default; a periodic check must fail fast.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="records-check")
    running: asyncio.Future[int] | None = None
    try:
        while True:
            await asyncio.sleep(max(settings.records_check_seconds, MIN_INTERVAL_S))
            if running is not None and not running.done():
                log.warning("records check still running; this round is skipped")
                continue
            running = asyncio.get_running_loop().run_in_executor(
                pool, check_round, settings, standby
            )
            try:
                await asyncio.wait_for(asyncio.shield(running), ROUND_DEADLINE_S)
            except TimeoutError:
                log.warning("records check round over its deadline; left to finish")
            except Exception:
                metrics.ERRORS.labels("records").inc()
                log.exception("records check round failed")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
