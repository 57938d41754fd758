"""A Trial's status from its Job and pods: pure, so every failure mode is unit-tested.

The trainer's verdict comes from the termination message (a ``TrainResult`` JSON);
the kubelet's and the Job controller's verdicts (OOMKilled, DeadlineExceeded, image
pull errors, non-zero exits) fill in when the trainer could not say anything itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.collector import MetricsCollector
from thunderbolt.api.meta import format_time, now_utc, parse_time
from thunderbolt.api.trainer_config import TrainResult
from thunderbolt.api.trial import FINISHED_PHASES, compact_curve
from thunderbolt.metric_lines import LineParser
from thunderbolt.operator.conditions import condition, merge_conditions

# Waiting reasons that mean the image will not come; the first two can be transient.
IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
PERMANENT_PULL_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
IMAGE_PULL_GRACE_SECONDS = 120.0
MESSAGE_LIMIT = 1024


def parse_result(message: str | None) -> TrainResult | None:
    """The trainer's TrainResult from a termination message (JSON, or the last JSON line
    of a log tail when the kubelet fell back to logs)."""
    if not message or not message.strip():
        return None
    candidates = [message.strip()] + [
        line.strip() for line in reversed(message.splitlines()) if line.strip().startswith("{")
    ]
    for text in candidates:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        try:
            return TrainResult.model_validate(data)
        except ValidationError:
            continue
    return None


def _truncate(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else "…" + text[-MESSAGE_LIMIT:]


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class Outcome:
    """The status fields to write, and whether the Job should be stopped."""

    status: dict[str, Any] = field(default_factory=dict)
    stop_job: bool = False

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", "Pending"))

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES


def _latest(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not pods:
        return None
    return max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")


TRAINER_CONTAINER = "trainer"


def _container(pod: dict[str, Any] | None) -> dict[str, Any]:
    """The trainer's status (pods with sidecars list several containers, in any order)."""
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == TRAINER_CONTAINER:
            return dict(status)
    return statuses[0] if statuses else {}


def _terminated(pod: dict[str, Any] | None) -> dict[str, Any] | None:
    cs = _container(pod)
    return (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
        "terminated"
    )


def _job_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _result_fields(result: TrainResult, metric: str) -> dict[str, Any]:
    metrics = {
        k: v for k, v in ((k, _finite(v)) for k, v in result.metrics.items()) if v is not None
    }
    objective = _finite(result.objective)
    if objective is None:
        objective = metrics.get(metric)
    fields: dict[str, Any] = {"metrics": metrics, "objective": objective}
    std = _finite(result.objectiveStd)
    if std is not None:
        fields["objectiveStd"] = std
    if result.switches:  # what the model trained with, also when it was not searched
        fields["switches"] = dict(result.switches)
    if result.split is not None:  # which rows validated: equal on comparable Trials
        fields["split"] = result.split.model_dump(exclude_none=True)
    if result.validation is not None:  # the data/model checks' digest
        fields["validation"] = result.validation.model_dump(exclude_none=True)
    cpu = _finite(result.cpuSeconds)
    if cpu is not None and cpu >= 0:  # resource accounting, as the trainer measured it
        fields["cpuSeconds"] = cpu
    if result.peakMemoryBytes is not None and result.peakMemoryBytes >= 0:
        fields["peakMemoryBytes"] = int(result.peakMemoryBytes)
    if result.codeRevision and len(result.codeRevision) <= 100:
        fields["codeRevision"] = result.codeRevision
    for key in (
        "mlflowRunId",
        "mlflowRunUrl",
        "mlflowModelVersion",
        "modelUri",
        "modelChecksum",
    ):
        value = getattr(result, key)
        if value:
            fields[key] = value
    return fields


def _from_result(result: TrainResult, metric: str) -> dict[str, Any]:
    """Phase, reason and results from what the trainer said."""
    fields = _result_fields(result, metric)
    if result.status == "Succeeded":
        if fields["objective"] is None:
            return {
                **fields,
                "phase": "Failed",
                "reason": "NoObjective",
                "message": f"the result has no finite value for the objective {metric!r}",
            }
        return {**fields, "phase": "Succeeded", "reason": None, "message": result.message}
    if result.status == "Pruned":
        return {
            **fields,
            "phase": "Pruned",
            "reason": result.reason or "Pruned",
            "message": result.message,
        }
    return {
        **fields,
        "phase": "Failed",
        "reason": result.reason or "TrainerFailed",
        "message": result.message,
    }


def collector_of(trial: dict[str, Any]) -> MetricsCollector:
    template = (trial.get("spec") or {}).get("template") or {}
    return MetricsCollector.model_validate(template.get("metricsCollector") or {})


def _points(trial: dict[str, Any]) -> list[tuple[int, float]]:
    raw = (trial.get("status") or {}).get("intermediate") or []
    return [(int(p["step"]), float(p["value"])) for p in raw]


def _no_metrics(metric: str, where: str, problems: str) -> dict[str, Any]:
    detail = f"; skipped: {problems}" if problems else ""
    return {
        "phase": "Failed",
        "reason": "NoMetrics",
        "message": f"no line {where} carries the objective metric {metric!r}{detail}",
    }


def _from_file(trial: dict[str, Any], message: str | None, metric: str) -> dict[str, Any]:
    """The File collector: the kubelet put the metrics file's last 4 KiB in the message."""
    collector = collector_of(trial)
    parser = LineParser(metric, collector)
    samples = parser.feed_text(message or "")
    status: dict[str, Any] = {
        "kind": "File",
        "state": "Done",
        "lines": parser.lines,
        "reports": parser.reports,
        "skipped": parser.problems(),
    }
    if parser.last is None:
        return {
            "collector": status,
            **_no_metrics(metric, f"of {collector.path}", parser.summary()),
        }
    status.update(lastStep=parser.last.step, lastMetrics=parser.last.metrics)
    merged = dict(_points(trial))
    for sample in samples:
        merged.setdefault(sample.step, sample.value)
    points = compact_curve(sorted(merged.items()))
    return {
        "collector": status,
        "intermediate": [{"step": s, "value": v} for s, v in points],
        "objective": parser.last.value,
        "metrics": parser.last.metrics,
        "phase": "Succeeded",
        "reason": None,
        "message": None,
    }


def _from_stdout(trial: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The StdOut collector's verdict, once it has read the log to its end (else None)."""
    collected = (trial.get("status") or {}).get("collector") or {}
    if collected.get("state") != "Done":
        return None
    points = _points(trial)
    last = collected.get("lastMetrics") or {}
    objective = _finite(last.get(metric))
    if objective is None and points:
        objective = points[-1][1]
    if objective is None:
        problems = ", ".join(
            f"{n} {k}" for k, n in sorted((collected.get("skipped") or {}).items())
        )
        lines = int(collected.get("lines") or 0)
        return _no_metrics(metric, f"of the {lines} the container printed", problems)
    metrics = {k: v for k, v in ((k, _finite(v)) for k, v in last.items()) if v is not None}
    return {"objective": objective, "metrics": metrics, "phase": "Succeeded", "reason": None,
            "message": None}  # fmt: skip


def pruned_by_collector(
    trial: dict[str, Any], step: int, value: float, now: datetime | None = None
) -> dict[str, Any]:
    """The status of a StdOut Trial the pruner stopped (the operator stops its Job)."""
    outcome = Outcome(
        {
            "phase": "Pruned",
            "reason": "Pruned",
            "message": f"the pruner stopped the trial at step {step} (value {value:.6g})",
            "objective": value,
        }
    )
    started = (trial.get("status") or {}).get("startTime")
    if started:
        outcome.status["startTime"] = started
    return _settle(trial, outcome, now or now_utc()).status


def stopped_with_experiment(
    trial: dict[str, Any], message: str, now: datetime | None = None
) -> dict[str, Any]:
    """The status of a Trial stopped because its Experiment ended (its Job is deleted):
    Pruned, not Failed, so it never counts against the failure budget."""
    outcome = Outcome({"phase": "Pruned", "reason": "ExperimentComplete", "message": message})
    started = (trial.get("status") or {}).get("startTime")
    if started:
        outcome.status["startTime"] = started
    return _settle(trial, outcome, now or now_utc()).status


def _failure_from_pod(pod: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    if pod is None:
        return None
    if (pod.get("status") or {}).get("reason") == "Evicted":
        return {"phase": "Failed", "reason": "Evicted", "message": pod["status"].get("message")}
    term = _terminated(pod)
    if not term:
        return None
    if term.get("reason") == "OOMKilled":
        return {
            "phase": "Failed",
            "reason": "OOMKilled",
            "message": "the container was killed for exceeding its memory limit",
        }
    result = parse_result(term.get("message"))
    if result is not None:
        fields = _from_result(result, metric)
        if fields["phase"] == "Succeeded":  # non-zero exit but a success result: trust the exit
            fields.update(phase="Failed", reason="Error")
        return fields
    code = term.get("exitCode")
    text = (term.get("message") or "").strip()
    return {
        "phase": "Failed",
        "reason": term.get("reason") if term.get("reason") not in (None, "Error") else "Error",
        "message": f"exit code {code}" + (f": {text}" if text else ""),
    }


def _pending_or_running(pod: dict[str, Any] | None, now: datetime) -> Outcome:
    if pod is None:
        return Outcome({"phase": "Pending", "reason": None, "message": None})
    cs = _container(pod)
    waiting = (cs.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if reason in IMAGE_PULL_REASONS:
        created = parse_time(pod["metadata"].get("creationTimestamp")) or now
        message = _truncate(waiting.get("message")) or reason
        if (
            reason in PERMANENT_PULL_REASONS
            or (now - created).total_seconds() > IMAGE_PULL_GRACE_SECONDS
        ):
            return Outcome({"phase": "Failed", "reason": reason, "message": message}, stop_job=True)
        return Outcome({"phase": "Pending", "reason": reason, "message": message})
    if reason:
        return Outcome(
            {"phase": "Pending", "reason": reason, "message": _truncate(waiting.get("message"))}
        )
    if (cs.get("state") or {}).get("running") or (pod.get("status") or {}).get(
        "phase"
    ) == "Running":
        return Outcome({"phase": "Running", "reason": None, "message": None})
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return Outcome(
                {
                    "phase": "Pending",
                    "reason": cond.get("reason") or "Unschedulable",
                    "message": _truncate(cond.get("message")),
                }
            )
    return Outcome({"phase": "Pending", "reason": None, "message": None})


def _conditions(
    phase: str, reason: str | None, message: str | None, at: str
) -> list[dict[str, Any]]:
    failed_reason = (reason or "Failed") if phase == "Failed" else phase
    pruned_reason = (reason or "Pruned") if phase == "Pruned" else phase
    return [
        condition(
            "Running", phase == "Running", "Running" if phase == "Running" else phase, message, at
        ),
        condition(
            "Succeeded",
            phase == "Succeeded",
            "Succeeded" if phase == "Succeeded" else phase,
            message,
            at,
        ),
        condition("Failed", phase == "Failed", failed_reason, message, at),
        condition("Pruned", phase == "Pruned", pruned_reason, message, at),
    ]


def derive(
    trial: dict[str, Any],
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime | None = None,
) -> Outcome:
    """The Trial status that the Job and its pods imply (``intermediate`` is never touched)."""
    now = now or now_utc()
    spec = trial.get("spec") or {}
    metric = (spec.get("objective") or {}).get("metric", "")
    outcome = (
        Outcome({"phase": "Pending"}) if job is None else _from_job(trial, job, pods, metric, now)
    )
    return _settle(trial, outcome, now)


def _settle(trial: dict[str, Any], outcome: Outcome, now: datetime) -> Outcome:
    """Times, GPU seconds and conditions for the phase ``outcome`` says."""
    spec = trial.get("spec") or {}
    status = outcome.status
    status["message"] = _truncate(status.get("message"))
    if outcome.finished:
        gpus = int(((spec.get("template") or {}).get("resources") or {}).get("gpus", 0) or 0)
        _add_times(status, trial, gpus, now)
    at = format_time(now)
    old_conditions = (trial.get("status") or {}).get("conditions") or []
    status["conditions"] = merge_conditions(
        old_conditions, _conditions(outcome.phase, status.get("reason"), status.get("message"), at)
    )
    return outcome


def _from_job(
    trial: dict[str, Any],
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    metric: str,
    now: datetime,
) -> Outcome:
    """The Job's verdict (complete, failed, or still going), with its start and image."""
    jstatus = job.get("status") or {}
    pod = _latest(pods)
    complete = _job_condition(job, "Complete")
    failed = _job_condition(job, "Failed")
    if complete:
        outcome = Outcome(_completed(trial, pods, pod, metric))
        if outcome.finished:  # a StdOut Trial may still be reading its log's end
            outcome.status.setdefault("completionTime", jstatus.get("completionTime"))
    elif failed:
        outcome = Outcome(_failed(failed, pods, pod, metric))
        outcome.status.setdefault("completionTime", failed.get("lastTransitionTime"))
    else:
        outcome = _pending_or_running(pod, now)
    if jstatus.get("startTime"):
        outcome.status["startTime"] = jstatus["startTime"]
    outcome.status["jobName"] = job["metadata"]["name"]
    image = _container(pod).get("image")
    if image:
        outcome.status["image"] = image
    digest = image_digest(_container(pod).get("imageID"))
    if digest:
        outcome.status["imageDigest"] = digest
    return outcome


def image_digest(image_id: str | None) -> str | None:
    """``sha256:<hex>`` of the image the kubelet ran (``repo@sha256:…``, or an image ID):
    a tag can move, the digest names the exact image for lineage."""
    if not image_id:
        return None
    digest = image_id.rsplit("@", 1)[-1].rsplit("://", 1)[-1]
    return digest if digest.startswith("sha256:") and len(digest) == 71 else None


def _completed(
    trial: dict[str, Any], pods: list[dict[str, Any]], pod: dict[str, Any] | None, metric: str
) -> dict[str, Any]:
    """A complete Job: the trainer's own result, what the collector gathered (File:
    the metrics file handed over as the termination message; StdOut: the reports read
    from the log), or NoResult when there is neither."""
    kind = collector_of(trial).kind
    done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    term = _terminated(_latest(done) or pod)
    message = (term or {}).get("message")
    result = None if kind == "File" else parse_result(message)
    collected = None
    if result is None and kind == "File":
        collected = _from_file(trial, message, metric)
    elif kind == "StdOut":
        collected = _from_stdout(trial, metric)
        if collected is None:  # the collector is still reading the log's end
            collected = {"phase": "Running", "reason": "CollectingMetrics",
                         "message": "reading the rest of the container's output"}  # fmt: skip
        elif result is not None:  # every report is in: now the result file wins
            collected = None
    if collected is not None:
        return collected
    if result is None:
        return {
            "phase": "Failed",
            "reason": "NoResult",
            "message": "the trainer exited 0 without a TrainResult in its termination message",
        }
    return _from_result(result, metric)


def _failed(
    failed: dict[str, Any], pods: list[dict[str, Any]], pod: dict[str, Any] | None, metric: str
) -> dict[str, Any]:
    """A failed Job: its deadline, else what the failed pod says, else the Job's reason."""
    if failed.get("reason") == "DeadlineExceeded":
        return {
            "phase": "Failed",
            "reason": "DeadlineExceeded",
            "message": failed.get("message") or "the Job ran past activeDeadlineSeconds",
        }
    failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    return _failure_from_pod(_latest(failed_pods) or pod, metric) or {
        "phase": "Failed",
        "reason": failed.get("reason") or "JobFailed",
        "message": failed.get("message"),
    }


def _add_times(status: dict[str, Any], trial: dict[str, Any], gpus: int, now: datetime) -> None:
    """Completion time, duration and GPU-seconds of a finished Trial."""
    status["completionTime"] = status.get("completionTime") or format_time(now)
    start = parse_time(status.get("startTime")) or parse_time(
        trial["metadata"].get("creationTimestamp")
    )
    end = parse_time(status["completionTime"])
    if start and end:
        status.setdefault("startTime", format_time(start))
        duration = max(0.0, (end - start).total_seconds())
        status["durationSeconds"] = duration
        status["gpuSeconds"] = gpus * duration


def job_created(
    trial: dict[str, Any], job_name: str, now: datetime | None = None
) -> dict[str, Any]:
    """Status of a Trial whose Job was just created: what ``derive`` says of a Job with
    no pod yet, conditions included, so the sync on that Job's first event writes
    nothing (one status write per Trial fewer)."""
    outcome = Outcome({"phase": "Pending", "reason": None, "message": None, "jobName": job_name})
    return _settle(trial, outcome, now or now_utc()).status


def never_started(
    trial: dict[str, Any], reason: str, message: str, now: datetime | None = None
) -> dict[str, Any]:
    """Final status of a Trial that can never run: its spec, or a child built from it, is
    invalid (retrying cannot fix that). It counts as a failed Trial like any other."""
    at = format_time(now or now_utc())
    text = _truncate(message)
    old_conditions = (trial.get("status") or {}).get("conditions") or []
    return {
        "phase": "Failed",
        "reason": reason,
        "message": text,
        "completionTime": at,
        "durationSeconds": 0.0,
        "gpuSeconds": 0.0,
        "conditions": merge_conditions(old_conditions, _conditions("Failed", reason, text, at)),
    }


def status_patch(current: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """The merge-patch from ``current`` to ``derived`` (empty when nothing changed).

    Only keys this module owns are written; ``intermediate`` and anything else another
    writer (the report endpoint) keeps in status is left alone, except for the points a
    File collector read at the end (the Trial is finished then: reports are closed).
    """
    patch = {}
    from_file = (derived.get("collector") or {}).get("kind") == "File"
    for key, value in derived.items():
        if key == "intermediate" and not (from_file and derived.get("phase") in FINISHED_PHASES):
            continue
        if current.get(key) != value:
            patch[key] = value
    return patch
