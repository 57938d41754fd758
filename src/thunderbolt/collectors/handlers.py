"""Kopf handlers that run the StdOut collector: one follower per running Trial pod whose
template says ``metricsCollector.kind: StdOut`` (the pod carries the annotation).

Imported by ``thunderbolt.main.import_handlers`` after the report endpoint, whose
``ReportService`` stores what the followers read. When a follower has read the log to
its end it writes ``status.collector`` (counts, the last metrics) and syncs the Trial,
which then finishes from the last report (or fails with ``NoMetrics``). When the pruner
says stop, the follower marks the Trial Pruned and deletes its Job: a container that
knows nothing of Thunderbolt cannot be asked to stop itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from thunderbolt.api.meta import TRIAL_LABEL
from thunderbolt.api.report_schema import EpochReport, ReportReply
from thunderbolt.api.trial import FINISHED_PHASES
from thunderbolt.collectors.stdout import (
    FollowConfig,
    Follower,
    collector_status,
    summary,
)
from thunderbolt.metric_lines import LineParser
from thunderbolt.operator import kube, trials
from thunderbolt.operator.builders import COLLECTOR_ANNOTATION, CONTAINER_NAME
from thunderbolt.operator.trialstatus import collector_of, pruned_by_collector
from thunderbolt.reports.service import ReportService
from thunderbolt.reports.writer import WriteFailed
from thunderbolt.settings import namespace_in_scope

log = logging.getLogger(__name__)
STATUS_RETRIES = 5
FINISH_ATTEMPTS = 5


class PodLog:
    """The trainer container's log, followed through the API server."""

    def __init__(self, namespace: str, pod: str, chunk_bytes: int) -> None:
        self.namespace, self.pod, self.chunk_bytes = namespace, pod, chunk_bytes
        self._response: Any = None

    def open(self) -> Any:
        self._response = kube.open_pod_log(self.namespace, self.pod, CONTAINER_NAME)
        return self._response.stream(self.chunk_bytes)

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001 — closing is best effort
                pass

    def finished(self) -> bool:
        pod = kube.get_pod(self.namespace, self.pod)
        return pod is None or container_exited(pod)


def _trainer_state(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER_NAME:
            return dict(status.get("state") or {})
    return {}


def container_exited(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed") or "terminated" in _trainer_state(pod)


def has_output(pod: dict[str, Any]) -> bool:
    """Whether the trainer container has started (its log exists)."""
    state = _trainer_state(pod)
    return "running" in state or "terminated" in state


class Collectors:
    """The followers of this operator process, one per pod uid."""

    def __init__(self, service: ReportService, config: FollowConfig | None = None) -> None:
        self.service = service
        self.config = config or FollowConfig()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._followers: dict[str, Follower] = {}
        self._done: deque[str] = deque(maxlen=10_000)

    def ensure(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self._tasks or uid in self._done or not has_output(pod):
            return
        task = asyncio.get_running_loop().create_task(self._collect(pod))
        self._tasks[uid] = task

        def forget(_: Any) -> None:
            self._tasks.pop(uid, None)
            self._followers.pop(uid, None)
            self._done.append(uid)

        task.add_done_callback(forget)

    async def stop(self) -> None:
        for follower in list(self._followers.values()):
            follower.stop()
        for task in list(self._tasks.values()):
            task.cancel()

    async def _collect(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], (meta.get("labels") or {})[TRIAL_LABEL]
        try:
            trial = await self.service.store.get_trial(namespace, name)
            status = (trial or {}).get("status") or {}
            if trial is None or status.get("phase") in FINISHED_PHASES:
                return
            if (status.get("collector") or {}).get("state") == "Done":
                return
            metric = trial["spec"]["objective"]["metric"]
            points = status.get("intermediate") or []
            uid = trial["metadata"]["uid"]

            async def submit(report: EpochReport) -> ReportReply:
                return await self.service.collect(namespace, name, report, owner_uid=uid)

            follower = Follower(
                PodLog(namespace, meta["name"], self.config.chunk_bytes),
                LineParser(metric, collector_of(trial)),
                submit,
                start_after=int(points[-1]["step"]) if points else 0,
                config=self.config,
            )
            self._followers[meta["uid"]] = follower
            try:
                await follower.run()
            except Exception:  # noqa: BLE001 — whatever was read still settles the Trial
                log.exception("collector for %s/%s stopped early", namespace, name)
            try:  # write-behind: acknowledged points go onto the Trial before it settles
                await self.service.writer.flush((namespace, name))
            except WriteFailed as exc:
                log.warning("collector %s/%s: points not written: %s", namespace, name, exc)
            loop = asyncio.get_running_loop()
            for attempt in range(FINISH_ATTEMPTS):  # the Trial waits on this: insist a little
                try:
                    await loop.run_in_executor(None, finish, namespace, name, follower)
                    break
                except ApiException as exc:
                    log.warning("collector %s/%s: status not written: %s", namespace, name, exc)
                    await asyncio.sleep(2.0 * (attempt + 1))
        except asyncio.CancelledError:
            raise  # shutdown: the next operator reads the log again from where the Trial is
        except Exception:
            log.exception("collector for %s/%s failed", namespace, name)


def finish(namespace: str, name: str, follower: Follower) -> None:
    """Record what the follower read; stop a pruned Trial; let the Trial settle."""
    collected = collector_status(follower)
    for _ in range(STATUS_RETRIES):
        trial = kube.get_custom("trials", namespace, name)
        if trial is None:
            return
        finished = (trial.get("status") or {}).get("phase") in FINISHED_PHASES
        patch: dict[str, Any] = {"collector": collected}
        pruned = follower.pruned_at
        if pruned is not None and not finished:
            patch.update(pruned_by_collector(trial, pruned.step, pruned.value))
            patch["metrics"] = pruned.metrics
        try:
            kube.patch_status(
                "trials", namespace, name, patch, trial["metadata"]["resourceVersion"]
            )
        except ApiException as exc:
            if exc.status == 409:
                continue
            raise
        problems = collected["skipped"]
        if problems:
            kube.post_event(
                trial,
                "MetricsSkipped",
                f"the StdOut collector skipped {summary(problems)} "
                f"of {collected['lines']} lines read",
                warning=True,
            )
        if pruned is not None and not finished:
            kube.delete_job(namespace, name)
            trials.announce(trials.Finished(trial, patch))
        else:
            trials.sync_and_announce(namespace, name)
        return


_MANAGER: list[Collectors] = []


@kopf.on.startup()
async def start_collectors(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "report_server", None)
    if server is None:
        log.warning("no report endpoint in this operator: StdOut collection is off")
        return
    _MANAGER[:] = [Collectors(server.service)]


@kopf.on.event(
    "", "v1", "pods",
    labels={TRIAL_LABEL: kopf.PRESENT},
    annotations={COLLECTOR_ANNOTATION: "StdOut"},
    when=namespace_in_scope,
)  # fmt: skip
async def pod_output(type: str, body: Any, **_: Any) -> None:
    if type != "DELETED" and _MANAGER:
        _MANAGER[0].ensure(dict(body))


@kopf.on.cleanup()
async def stop_collectors(**_: Any) -> None:
    if _MANAGER:
        await _MANAGER[0].stop()
