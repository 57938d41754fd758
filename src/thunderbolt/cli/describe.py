"""`thunderbolt describe experiment|trial|modeldeployment NAME`.

The experiment view is the pipeline (search -> train -> best -> promote/serve) with
trial progress, best objective and ETA; ``--watch`` reprints it whenever it changes
until the search ends, which is what `make demo` shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from thunderbolt.cli.kube import CliError, Kube, add_kube_args, connect, friendly, plural_of
from thunderbolt.cli.leaderboard import leaderboard_table, split_text
from thunderbolt.cli.pipeline import pipeline_view, stages
from thunderbolt.cli.tables import duration, number, params_text, table
from thunderbolt.cli.trial_reads import trials_of
from thunderbolt.cli.validate import summary_lines


def conditions_table(status: dict[str, Any]) -> str:
    conditions = status.get("conditions") or []
    if not conditions:
        return "  (none)"
    rows = [
        [c.get("type"), c.get("status"), c.get("reason", ""), c.get("message", "")]
        for c in conditions
    ]
    return _indent(table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def trials_table(trials: list[dict[str, Any]]) -> str:
    """Every Trial with its split identity (equal SPLITs: validated on the same rows)
    and, with cross-validation, its objective's std over folds."""
    ordered = sorted(trials, key=lambda t: (t.get("spec") or {}).get("number", 0))
    spread = any((t.get("status") or {}).get("objectiveStd") is not None for t in ordered)
    rows = []
    for t in ordered:
        status = t.get("status") or {}
        rows.append(
            [
                t["metadata"]["name"],
                status.get("phase", "Pending"),
                number(status.get("objective")),
                *([number(status.get("objectiveStd"))] if spread else []),
                split_text(status),
                duration(status.get("durationSeconds")),
                status.get("reason") or "",
                params_text((t.get("spec") or {}).get("parameters")),
            ]
        )
    if not rows:
        return "  (none yet)"
    headers = ["TRIAL", "PHASE", "OBJECTIVE", *(["±STD"] if spread else []), "SPLIT"]
    return _indent(table([*headers, "DURATION", "REASON", "PARAMETERS"], rows))


def experiment_view(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    deployment: dict[str, Any] | None,
    now: dt.datetime,
) -> str:
    parts = [
        pipeline_view(experiment, trials, deployment, now),
        "",
        "Trials:",
        trials_table(trials),
        "",
        "Leaderboard:",
        _indent(leaderboard_table(experiment, trials, limit=5)),
        "",
        "Conditions:",
        conditions_table(experiment.get("status") or {}),
    ]
    summary = (experiment.get("status") or {}).get("validation")
    if summary:
        parts[-2:-2] = ["Validation:", *summary_lines(summary), ""]
    return "\n".join(parts)


def trial_view(trial: dict[str, Any]) -> str:
    spec = trial.get("spec") or {}
    status = trial.get("status") or {}
    metrics = " ".join(f"{k}={number(v)}" for k, v in sorted((status.get("metrics") or {}).items()))
    intermediate = status.get("intermediate") or []
    fields = [
        (
            "Trial",
            f"{trial['metadata']['name']} (experiment {spec.get('experiment')}, #{spec.get('number')})",
        ),
        (
            "Phase",
            status.get("phase", "Pending")
            + (f" ({status['reason']})" if status.get("reason") else ""),
        ),
        ("Message", status.get("message")),
        ("Parameters", params_text(spec.get("parameters"))),
        (
            "Objective",
            number(status.get("objective"))
            + (
                f" ± {number(status['objectiveStd'])} (std over folds)"
                if status.get("objectiveStd") is not None
                else ""
            ),
        ),
        ("Split", _split_line(status.get("split"))),
        ("Metrics", metrics or None),
        ("Reported", f"{len(intermediate)} intermediate values" if intermediate else None),
        ("Job", status.get("jobName")),
        (
            "Duration",
            duration(status.get("durationSeconds")) if status.get("durationSeconds") else None,
        ),
        ("GPU seconds", number(status.get("gpuSeconds")) if status.get("gpuSeconds") else None),
        *usage_fields(status),
        ("MLflow run", status.get("mlflowRunUrl") or status.get("mlflowRunId")),
        ("Model", status.get("modelUri")),
        ("Checksum", status.get("modelChecksum")),
        ("Deleted", _deleted_line(status.get("artifactsDeleted"))),
    ]
    lines = [f"{k + ':':<13}{v}" for k, v in fields if v not in (None, "")]
    return "\n".join([*lines, "Conditions:", conditions_table(status)])


def mebibytes(value: Any) -> str | None:
    return None if value is None else f"{int(value) / 2**20:.1f} MiB"


def usage_fields(status: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the run ran and cost: image (and digest), code revision, CPU, peak memory."""
    image, digest = status.get("image"), status.get("imageDigest")
    shown = f"{image or '?'}@{digest}" if digest else image
    cpu = status.get("cpuSeconds")
    return [
        ("Image", shown),
        ("Code", status.get("codeRevision")),
        ("CPU seconds", number(cpu) if cpu is not None else None),
        ("Peak memory", mebibytes(status.get("peakMemoryBytes"))),
    ]


def _deleted_line(deleted: Any) -> str | None:
    """spec.retention removed the model and files: the URI above no longer resolves."""
    if not isinstance(deleted, dict):
        return None
    return (
        f"model and files deleted from the store ({deleted.get('reason')}, {deleted.get('time')})"
    )


def _split_line(split: dict[str, Any] | None) -> str | None:
    if not split:
        return None
    folds = f", {split['folds']} folds" if split.get("folds") else ", holdout"
    return f"seed {split.get('seed')}, validation rows {split.get('validationHash')}{folds}"


def modeldeployment_view(md: dict[str, Any]) -> str:
    status = md.get("status") or {}
    current = status.get("currentRevision") or {}
    canary = status.get("canary")
    lines = [
        f"ModelDeployment {md['metadata']['name']}: {status.get('phase', 'Pending')}",
        f"Endpoint:    {status.get('endpoint') or '-'}",
        f"Serving:     revision {current.get('number', '-')} "
        f"{current.get('source') or current.get('trial') or ''} {current.get('modelUri') or ''}".rstrip(),
    ]
    if canary:
        lines.append(
            f"Canary:      revision {canary.get('revision')} at {canary.get('weight')}% (step {canary.get('step')})"
        )
    rows = [
        [
            h.get("number"),
            h.get("outcome"),
            h.get("source") or h.get("trial") or "",
            h.get("deployedAt") or "",
            h.get("reason") or "",
        ]
        for h in status.get("history") or []
    ]
    lines += [
        "History:",
        _indent(table(["REVISION", "OUTCOME", "SOURCE", "DEPLOYED", "REASON"], rows))
        if rows
        else "  (none)",
    ]
    lines += ["Conditions:", conditions_table(status)]
    return "\n".join(lines)


def snapshot(
    kube: Kube, plural: str, name: str, now: dt.datetime, brief: bool = False
) -> tuple[str, bool]:
    """The rendered view and whether the object reached a final state.

    An experiment is final once the search ended and its promote stage settled (the
    best model served, the rollout failed, nothing to promote, or a revision waiting for
    approval).
    """
    obj = kube.get(plural, name)
    phase = (obj.get("status") or {}).get("phase")
    if plural == "experiments":
        promote = (obj.get("spec") or {}).get("promote") or {}
        md = kube.get_optional("modeldeployments", promote["modelDeployment"]) if promote else None
        trials = trials_of(kube, name)
        view = pipeline_view if brief else experiment_view
        text = view(obj, trials, md, now)
        # "waiting": a revision waits for a person's approval; watching longer shows nothing
        settled = stages(obj, trials, md)[-1].state in ("done", "failed", "skipped", "waiting")
        return text, phase in ("Succeeded", "Failed") and settled
    if plural == "trials":
        return trial_view(obj), phase in ("Succeeded", "Failed", "Pruned")
    return modeldeployment_view(obj), phase in ("Available", "Degraded")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe", help="details and pipeline view", description=__doc__
    )
    parser.add_argument("kind", help="experiment | trial | modeldeployment")
    parser.add_argument("name")
    parser.add_argument("-w", "--watch", action="store_true", help="reprint on change until done")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between polls")
    parser.add_argument(
        "--timeout", type=float, default=0, help="give up after N seconds (0: never)"
    )
    parser.add_argument("--brief", action="store_true", help="experiment: the pipeline view only")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    from thunderbolt.api.meta import now_utc

    plural = plural_of(args.kind, "experiment, trial or modeldeployment")
    kube = connect(args)
    if not args.watch:
        print(snapshot(kube, plural, args.name, now_utc(), args.brief)[0])
        return 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    last = None
    while True:
        text, done = snapshot(kube, plural, args.name, now_utc(), args.brief)
        # Without ETA/age lines, so a ticking clock alone does not reprint.
        stable = "\n".join(line for line in text.splitlines() if "ETA:" not in line)
        if stable != last:
            print(f"--- {now_utc():%H:%M:%S}\n{text}", flush=True)
            last = stable
        if done:
            return 0
        if deadline is not None and time.monotonic() > deadline:
            raise CliError(
                f"timed out after {args.timeout:.0f}s waiting for {args.kind} {args.name}"
            )
        time.sleep(args.interval)
