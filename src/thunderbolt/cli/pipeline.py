"""The Experiment pipeline view: search -> train -> best -> promote/serve (pure).

Built from the objects only (Experiment, its Trials, the promoted ModelDeployment),
so `describe`, `make demo` and tests all show the same thing.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from thunderbolt.api.meta import parse_time
from thunderbolt.cli.tables import duration, number, params_text

FINISHED = ("succeeded", "failed", "pruned")
MARKS = {
    "done": "[x]",
    "active": "[>]",
    "pending": "[ ]",
    "failed": "[!]",
    "skipped": "[-]",
    "waiting": "[?]",  # for a person: a revision waits for approval
}


@dataclass(frozen=True)
class Stage:
    name: str
    state: str  # done | active | pending | failed | skipped | waiting
    detail: str

    def line(self) -> str:
        return f"  {MARKS[self.state]} {self.name:<8} {self.detail}".rstrip()


def counts(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, int]:
    """Trial counts from status, or from the Trials when the status has none yet."""
    status_counts = (experiment.get("status") or {}).get("trials") or {}
    if status_counts.get("total"):
        return {k: int(status_counts.get(k, 0)) for k in ("total", "running", "pending", *FINISHED)}
    out = {
        "total": len(trials),
        "running": 0,
        "pending": 0,
        "succeeded": 0,
        "failed": 0,
        "pruned": 0,
    }
    for trial in trials:
        phase = ((trial.get("status") or {}).get("phase") or "Pending").lower()
        if phase in out:
            out[phase] += 1
    return out


def eta_seconds(
    experiment: dict[str, Any], trials: list[dict[str, Any]], now: dt.datetime
) -> float | None:
    """Seconds until the search ends: the operator's estimate, else mean trial time x waves left."""
    status = experiment.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return 0.0
    estimate = parse_time(status.get("estimatedCompletionTime"))
    if estimate is not None:
        return max(0.0, (estimate - now).total_seconds())
    spec = experiment.get("spec") or {}
    durations = [
        float(t["status"]["durationSeconds"])
        for t in trials
        if (t.get("status") or {}).get("durationSeconds") is not None
    ]
    if not durations:
        return None
    c = counts(experiment, trials)
    remaining = max(0, int(spec.get("maxTrials", 0)) - sum(c[k] for k in FINISHED))
    waves = math.ceil(remaining / max(1, int(spec.get("parallelTrials", 1))))
    return waves * (sum(durations) / len(durations))


def stages(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    deployment: dict[str, Any] | None,
) -> list[Stage]:
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    phase = status.get("phase") or "Pending"
    c = counts(experiment, trials)
    max_trials = int(spec.get("maxTrials", 0))
    finished = sum(c[k] for k in FINISHED)
    algorithm = spec.get("algorithm") or {}
    n_params = len(spec.get("parameters") or [])
    ended = phase in ("Succeeded", "Failed")

    search_state = "failed" if phase == "Failed" else "done" if ended else "active"
    if phase == "Pending" and not c["total"]:
        search_state = "pending"
    search = Stage(
        "search",
        search_state,
        f"{algorithm.get('name', 'tpe')} over {n_params} parameters, "
        f"{c['total']}/{max_trials} trials asked",
    )

    train_state = "done" if ended else "active" if c["running"] or finished else "pending"
    if phase == "Failed" and not c["succeeded"]:
        train_state = "failed"
    current = min(max_trials, finished + c["running"]) if max_trials else finished
    train = Stage(
        "train",
        train_state,
        f"trial {current}/{max_trials}: {c['running']} running, {c['succeeded']} succeeded, "
        f"{c['failed']} failed, {c['pruned']} pruned",
    )

    best_trial = status.get("bestTrial") or {}
    metric = (spec.get("objective") or (spec.get("objectives") or [{}])[0]).get(
        "metric", "objective"
    )
    if best_trial:
        best = Stage(
            "best",
            "done" if ended else "active",
            f"{best_trial.get('name')} {metric}={number(best_trial.get('objective'))} "
            f"{params_text(best_trial.get('parameters'))}",
        )
    else:
        best = Stage("best", "failed" if ended else "pending", "no successful trial yet")

    return [search, train, best, promote_stage(spec.get("promote"), best_trial, deployment, ended)]


def promote_stage(
    promote: dict[str, Any] | None,
    best_trial: dict[str, Any],
    deployment: dict[str, Any] | None,
    ended: bool,
) -> Stage:
    if not promote:
        return Stage("serve", "skipped", "no spec.promote: deploy a trial with a ModelDeployment")
    target = promote.get("modelDeployment")
    if deployment is None:
        state = "pending"
        return Stage("promote", state, f"ModelDeployment {target} not created yet")
    md_status = deployment.get("status") or {}
    current = md_status.get("currentRevision") or {}
    md_phase = md_status.get("phase") or "Pending"
    serving_best = bool(best_trial) and current.get("trial") == best_trial.get("name")
    if md_phase == "Degraded":
        state = "failed"
    elif serving_best and md_phase == "Available":
        state = "done"
    elif md_phase in ("Progressing", "Pending") or (best_trial and not serving_best):
        state = "active"
    else:
        state = "done" if ended else "active"
    if not ended and state == "active":
        state = "pending"  # promotion happens once the search has ended
    waiting = md_status.get("reason") == "PendingApproval"
    if waiting and state != "done":
        state = "waiting"  # nothing moves until someone approves or rejects
    revision = current.get("number")
    detail = f"ModelDeployment {target}: {md_phase}"
    if revision is not None:
        detail += f", revision {revision} ({current.get('trial') or current.get('source') or '?'})"
    canary = md_status.get("canary")
    if canary:
        detail += f", canary {canary.get('weight')}%"
    if md_status.get("endpoint"):
        detail += f", {md_status['endpoint']}"
    if waiting:
        detail += f"; {md_status.get('message') or 'a revision waits for approval'}"
    return Stage("promote", state, detail)


def pipeline_view(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    deployment: dict[str, Any] | None,
    now: dt.datetime,
) -> str:
    """The compact, human view: header, four stages, ETA."""
    meta = experiment.get("metadata") or {}
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    objective = spec.get("objective") or {}
    goal = objective.get("goal")
    several = spec.get("objectives") or []
    front = status.get("paretoFrontSize")
    wanted = ", ".join(f"{o.get('direction', 'maximize')} {o.get('metric')}" for o in several)
    lines = [
        f"Experiment {meta.get('name')} ({meta.get('namespace', '-')}): "
        f"{status.get('phase') or 'Pending'}",
        f"  objectives: {wanted}" + (f" ({front} on the Pareto front)" if front else "")
        if several
        else f"  objective: {objective.get('direction', 'maximize')} {objective.get('metric')}"
        + (f" (goal {number(goal)})" if goal is not None else ""),
    ]
    lines += [s.line() for s in stages(experiment, trials, deployment)]
    eta = eta_seconds(experiment, trials, now)
    if status.get("phase") in ("Succeeded", "Failed"):
        start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
        took = duration((end - start).total_seconds()) if start and end else "-"
        lines.append(
            f"  finished in {took}" + (f": {status['message']}" if status.get("message") else "")
        )
    else:
        lines.append(f"  ETA: {'unknown' if eta is None else duration(eta)}")
    return "\n".join(lines)
