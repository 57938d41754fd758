"""Objects as the API returns them -> what each dashboard page draws (pure).

The numbers come from the same functions the CLI prints with (``cli.pipeline``,
``cli.leaderboard``, ``cli.compare``, ``cli.tables``), so the page and
``thunderbolt leaderboard`` / ``compare`` / ``describe`` can never disagree. Every value
here is plain data: the browser puts it into the page with ``textContent`` and SVG
attributes, never as markup.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from thunderbolt.api.meta import EXPERIMENT_LABEL, parse_time
from thunderbolt.cli import pipeline
from thunderbolt.cli.compare import goals_of, group_by, pareto_points
from thunderbolt.cli.leaderboard import ranked, split_note, within_noise
from thunderbolt.cli.tables import age, duration, number, param_value

MAX_LOG_CHARS = 64 * 1024


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def matches_selector(labels: dict[str, str] | None, selector: str) -> bool:
    """A small subset of kubectl's label selectors: ``k=v``, ``k!=v``, ``k``, ``!k``, comma-ANDed."""
    labels = labels or {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.split("=", 1))
            if labels.get(key.rstrip("=")) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def trials_of(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Experiment's Trials (same namespace; by label or spec.experiment, as the CLI)."""
    meta = _meta(experiment)
    name, namespace = meta.get("name"), meta.get("namespace")
    return [
        t
        for t in trials
        if _meta(t).get("namespace") == namespace
        and (
            (_meta(t).get("labels") or {}).get(EXPERIMENT_LABEL) == name
            or (t.get("spec") or {}).get("experiment") == name
        )
    ]


def experiment_row(
    experiment: dict[str, Any], trials: list[dict[str, Any]], now: dt.datetime
) -> dict[str, Any]:
    """One line of the Experiments list."""
    meta = _meta(experiment)
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    c = pipeline.counts(experiment, trials)
    finished = sum(c[k] for k in pipeline.FINISHED)
    best = status.get("bestTrial") or {}
    eta = pipeline.eta_seconds(experiment, trials, now)
    ended = status.get("phase") in ("Succeeded", "Failed")
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "labels": dict(meta.get("labels") or {}),
        "phase": status.get("phase") or "Pending",
        "finished": finished,
        "maxTrials": spec.get("maxTrials"),
        "running": c["running"],
        "progress": f"{finished}/{spec.get('maxTrials', '?')}",
        "best": number(best.get("objective")),
        "bestTrial": best.get("name") or "",
        "metric": (spec.get("objective") or {}).get("metric") or "objective",
        "eta": "-" if ended else ("unknown" if eta is None else duration(eta)),
        "age": age(meta.get("creationTimestamp"), now),
    }


def experiments_list(
    experiments: list[dict[str, Any]],
    trials: list[dict[str, Any]],
    now: dt.datetime,
    selector: str = "",
) -> list[dict[str, Any]]:
    """Experiments matching the label selector, by namespace then name."""
    by_owner: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in trials:
        owner = (t.get("spec") or {}).get("experiment") or (_meta(t).get("labels") or {}).get(
            EXPERIMENT_LABEL
        )
        by_owner.setdefault((_meta(t).get("namespace", ""), owner or ""), []).append(t)
    rows = [
        experiment_row(
            e, by_owner.get((_meta(e).get("namespace", ""), _meta(e).get("name", "")), []), now
        )
        for e in experiments
        if matches_selector(_meta(e).get("labels"), selector)
    ]
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


def _param_specs(spec: dict[str, Any], trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parameters as declared (type, range, choices); undeclared ones seen on Trials last."""
    out = []
    for p in spec.get("parameters") or []:
        item = {"name": p.get("name"), "type": p.get("type"), "log": bool(p.get("log"))}
        if p.get("type") == "categorical":
            item["choices"] = [param_value(c) for c in p.get("choices") or []]
        else:
            item["low"], item["high"] = _finite(p.get("low")), _finite(p.get("high"))
        out.append(item)
    declared = {p["name"] for p in out}
    extra = sorted(
        {k for t in trials for k in ((t.get("spec") or {}).get("parameters") or {})} - declared
    )
    for name in extra:
        values = [((t.get("spec") or {}).get("parameters") or {}).get(name) for t in trials]
        numeric = all(_finite(v) is not None for v in values if v is not None)
        out.append({"name": name, "type": "float" if numeric else "categorical", "log": False})
        if not numeric:
            out[-1]["choices"] = sorted({param_value(v) for v in values if v is not None})
    return out


def history(trials: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Objective by trial number with the running best (succeeded trials only count)."""
    best: float | None = None
    out = []
    pick = max if direction == "maximize" else min
    for t in sorted(trials, key=lambda t: (t.get("spec") or {}).get("number", 0)):
        status = t.get("status") or {}
        value = _finite(status.get("objective"))
        if status.get("phase") != "Succeeded" or value is None:
            continue
        best = value if best is None else pick(best, value)
        out.append(
            {
                "number": (t.get("spec") or {}).get("number", 0),
                "trial": _meta(t).get("name"),
                "objective": value,
                "best": best,
            }
        )
    return out


def points(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Succeeded trials' parameters and objective: parallel coordinates and slice plots."""
    out = []
    for t in trials:
        status = t.get("status") or {}
        value = _finite(status.get("objective"))
        if status.get("phase") != "Succeeded" or value is None:
            continue
        params = (t.get("spec") or {}).get("parameters") or {}
        out.append(
            {
                "trial": _meta(t).get("name"),
                "number": (t.get("spec") or {}).get("number", 0),
                "objective": value,
                "params": {
                    k: (v if _finite(v) is not None else param_value(v)) for k, v in params.items()
                },
            }
        )
    return out


def comparisons(
    trials: list[dict[str, Any]], params: list[dict[str, Any]], direction: str
) -> list[dict[str, Any]]:
    """``thunderbolt compare --by P`` for every categorical parameter, same numbers."""
    out = []
    for p in params:
        if p["type"] != "categorical":
            continue
        groups = group_by(trials, p["name"])
        rows = [
            {
                "value": g.value,
                "n": g.n,
                "mean": number(g.mean),
                "best": number(g.best(direction)),
                "std": number(g.std),
                "objectives": g.objectives,
                "trials": g.trials,
            }
            for g in groups
        ]
        winner = None
        if len(groups) > 1:
            pick = max if direction == "maximize" else min
            winner = pick(groups, key=lambda g: g.mean).value
        out.append({"param": p["name"], "groups": rows, "winner": winner})
    return out


def leaderboard(
    experiment: dict[str, Any], trials: list[dict[str, Any]], limit: int | None = None
) -> dict[str, Any]:
    """``thunderbolt leaderboard`` as rows: same ranking, ties within the leader's spread."""
    spec = experiment.get("spec") or {}
    objective = spec.get("objective") or {}
    all_ranked = ranked(trials, objective.get("direction", "maximize"))
    top = all_ranked[:limit]
    names = [p["name"] for p in spec.get("parameters") or []] or sorted(
        {k for t in top for k in ((t.get("spec") or {}).get("parameters") or {})}
    )
    rows = []
    for rank, t in enumerate(top, start=1):
        status = t["status"]
        params = (t.get("spec") or {}).get("parameters") or {}
        rows.append(
            {
                "rank": rank,
                "tied": rank > 1 and within_noise(top[0], t),
                "trial": _meta(t).get("name"),
                "objective": number(status.get("objective")),
                "std": number(status.get("objectiveStd"))
                if status.get("objectiveStd") is not None
                else None,
                "params": [param_value(params.get(n, "-")) for n in names],
                "duration": duration(status.get("durationSeconds")),
            }
        )
    notes = [n for n in [split_note(all_ranked)] if n]
    return {"params": names, "rows": rows, "notes": notes, "total": len(all_ranked)}


def pareto(spec: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Several objectives: every succeeded Trial's values and whether it is on the front
    (``thunderbolt compare`` without ``--by``); None with one objective."""
    goals = goals_of(spec)
    if len(goals) < 2:
        return None
    points = pareto_points(trials, goals)
    return {
        "objectives": [{"metric": g.metric, "direction": g.direction} for g in goals],
        "points": [
            {"trial": p.trial, "number": p.number, "values": p.values, "front": p.front}
            for p in points
        ],
        "frontSize": sum(p.front for p in points),
    }


def trial_table(trials: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    out = []
    for t in sorted(trials, key=lambda t: (t.get("spec") or {}).get("number", 0)):
        status = t.get("status") or {}
        out.append(
            {
                "name": _meta(t).get("name"),
                "number": (t.get("spec") or {}).get("number", 0),
                "phase": status.get("phase") or "Pending",
                "objective": number(status.get("objective")),
                "reason": status.get("reason") or "",
                "age": age(_meta(t).get("creationTimestamp"), now),
            }
        )
    return out


def experiment_view(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    deployment: dict[str, Any] | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Everything the Experiment page draws, importance aside (computed on its own)."""
    meta = _meta(experiment)
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    objective = spec.get("objective") or {}
    direction = objective.get("direction", "maximize")
    params = _param_specs(spec, trials)
    row = experiment_row(experiment, trials, now)
    return {
        "kind": "experiment",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "labels": dict(meta.get("labels") or {}),
        "phase": row["phase"],
        "message": status.get("message") or "",
        "metric": objective.get("metric") or "objective",
        "direction": direction,
        "goal": _finite(objective.get("goal")),
        "progress": row["progress"],
        "eta": row["eta"],
        "best": row["best"],
        "bestTrial": row["bestTrial"],
        "deployment": _meta(deployment).get("name") if deployment else None,
        "stages": [
            {"name": s.name, "state": s.state, "detail": s.detail}
            for s in pipeline.stages(experiment, trials, deployment)
        ],
        "parameters": params,
        "history": history(trials, direction),
        "points": points(trials),
        "comparisons": comparisons(trials, params, direction),
        "leaderboard": leaderboard(experiment, trials),
        "pareto": pareto(spec, trials),
        "trials": trial_table(trials, now),
    }


def learning_curves(trial: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reported series: the objective's intermediate values, then the collector's
    latest value of each other metric (one point each until history is known)."""
    status = trial.get("status") or {}
    objective = ((trial.get("spec") or {}).get("objective") or {}).get("metric") or "objective"
    steps = [
        {"step": int(iv["step"]), "value": v}
        for iv in status.get("intermediate") or []
        if (v := _finite(iv.get("value"))) is not None and isinstance(iv.get("step"), int)
    ]
    curves = [{"metric": objective, "points": sorted(steps, key=lambda p: p["step"])}]
    collector = status.get("collector") or {}
    last_step = collector.get("lastStep")
    for name, value in sorted((collector.get("lastMetrics") or {}).items()):
        if name != objective and _finite(value) is not None and isinstance(last_step, int):
            curves.append({"metric": name, "points": [{"step": last_step, "value": value}]})
    return curves


def event_rows(events: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Kubernetes Events (as dicts), newest first."""

    def when(e: dict[str, Any]) -> str:
        return str(
            e.get("lastTimestamp") or e.get("eventTime") or _meta(e).get("creationTimestamp") or ""
        )

    rows = []
    for e in sorted(events, key=when, reverse=True):
        rows.append(
            {
                "type": e.get("type") or "",
                "reason": e.get("reason") or "",
                "message": e.get("message") or "",
                "count": e.get("count") or 1,
                "age": age(when(e) or None, now),
            }
        )
    return rows


def trial_view(
    trial: dict[str, Any],
    events: list[dict[str, Any]],
    log_tail: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    meta = _meta(trial)
    spec = trial.get("spec") or {}
    status = trial.get("status") or {}
    started = parse_time(status.get("startTime"))
    return {
        "kind": "trial",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "experiment": spec.get("experiment") or "",
        "number": spec.get("number", 0),
        "phase": status.get("phase") or "Pending",
        "reason": status.get("reason") or "",
        "message": status.get("message") or "",
        "objective": number(status.get("objective")),
        "objectiveStd": number(status.get("objectiveStd")),
        "duration": duration(status.get("durationSeconds"))
        if status.get("durationSeconds") is not None
        else (duration((now - started).total_seconds()) if started else "-"),
        "parameters": [
            {"name": k, "value": param_value(v)}
            for k, v in sorted((spec.get("parameters") or {}).items())
        ],
        "metrics": [
            {"name": k, "value": number(v)}
            for k, v in sorted((status.get("metrics") or {}).items())
        ],
        "curves": learning_curves(trial),
        "mlflowRunUrl": _http_url(status.get("mlflowRunUrl")),
        "mlflowModelVersion": status.get("mlflowModelVersion") or "",
        "modelUri": _model_text(status),
        "events": event_rows(events, now),
        "log": (log_tail or "")[-MAX_LOG_CHARS:],
        "validation": validation_view(status.get("validation")),
    }


def _model_text(status: dict[str, Any]) -> str:
    """The model's URI, or that spec.retention deleted it (no link to a removed file)."""
    uri = status.get("modelUri") or ""
    deleted = status.get("artifactsDeleted")
    if uri and isinstance(deleted, dict):
        return f"deleted ({deleted.get('reason') or 'Retention'}, {deleted.get('time') or '?'}); was {uri}"
    return str(uri)


def validation_view(summary: Any) -> dict[str, Any] | None:
    """The Trial's data/model checks (``status.validation``), as `thunderbolt validate
    TRIAL` shows them: verdict, failed dimensions, findings, recommendations."""
    if not isinstance(summary, dict) or not summary.get("verdict"):
        return None
    return {
        "verdict": str(summary["verdict"]),
        "failed": [str(d) for d in summary.get("failed") or []],
        "findings": [
            {
                "kind": str(f.get("kind", "")),
                "severity": str(f.get("severity", "")),
                "message": str(f.get("message", "")),
            }
            for f in summary.get("findings") or []
            if isinstance(f, dict)
        ],
        "recommendations": [
            {"finding": str(r.get("finding", "")), "text": str(r.get("text", ""))}
            for r in summary.get("recommendations") or []
            if isinstance(r, dict)
        ],
    }


def _http_url(value: Any) -> str | None:
    """Links only to http(s): a ``javascript:`` URL from a status must never be clickable."""
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return value
    return None


def deployment_view(
    deployment: dict[str, Any], events: list[dict[str, Any]], now: dt.datetime
) -> dict[str, Any]:
    """Current revision, history timeline, traffic split, canary limits and verdicts."""
    meta = _meta(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    current = status.get("currentRevision") or {}
    canary = status.get("canary")
    strategy = spec.get("strategy") or {}
    traffic = []
    if canary:
        weight = int(canary.get("weight") or 0)
        traffic = [
            {"revision": current.get("number"), "role": "stable", "weight": 100 - weight},
            {"revision": canary.get("revision"), "role": "canary", "weight": weight},
        ]
    elif current:
        traffic = [{"revision": current.get("number"), "role": "stable", "weight": 100}]
    timeline = []
    for h in sorted(status.get("history") or [], key=lambda h: h.get("number", 0)):
        deployed, retired = parse_time(h.get("deployedAt")), parse_time(h.get("retiredAt"))
        timeline.append(
            {
                "number": h.get("number"),
                "outcome": h.get("outcome") or "Active",
                "reason": h.get("reason") or "",
                "source": h.get("source") or h.get("trial") or "",
                "trial": h.get("trial") or "",
                "objective": number(h.get("objective")),
                "deployedAt": h.get("deployedAt") or "",
                "retiredAt": h.get("retiredAt") or "",
                "start": deployed.timestamp() if deployed else None,
                "end": retired.timestamp() if retired else None,
            }
        )
    verdicts = [
        e
        for e in event_rows(events, now)
        if e["reason"] in ("CanaryStep", "RolledBack", "Promoted", "AnalysisPassed")
    ]
    return {
        "kind": "modeldeployment",
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "phase": status.get("phase") or "Pending",
        "reason": status.get("reason") or "",
        "message": status.get("message") or "",
        "strategy": strategy.get("type") or "Rolling",
        "endpoint": status.get("endpoint") or "",
        "current": {
            "number": current.get("number"),
            "source": current.get("source") or current.get("trial") or "",
            "trial": current.get("trial") or "",
            "experiment": current.get("experiment") or "",
            "objective": number(current.get("objective")),
            "modelUri": current.get("modelUri") or "",
            "deployedAt": current.get("deployedAt") or "",
        }
        if current
        else None,
        "canary": {
            "revision": canary.get("revision"),
            "weight": canary.get("weight"),
            "step": canary.get("step"),
            "steps": len(((strategy.get("canary") or {}).get("steps")) or []),
        }
        if canary
        else None,
        "traffic": traffic,
        "analysis": strategy.get("analysis"),
        "verdicts": verdicts,
        "timeline": timeline,
        "now": now.timestamp(),
        "events": event_rows(events, now),
    }
