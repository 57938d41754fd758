"""`thunderbolt leaderboard EXPERIMENT`: every finished trial, best first.

With several objectives (``spec.objectives``) every objective has a column, Trials are
ranked on the first, and the Pareto front (the Trials no other beats on every
objective; what ``status.paretoFront`` lists) is marked ``*``; ``--front`` shows only it.

With cross-validation each Trial has an objective spread (the std over folds): it is
shown, and trials whose objective is within the leader's spread are marked ``~`` (their
difference from the leader is noise). Trials validated on different rows (different
split identities) are flagged, since their objectives do not compare.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from thunderbolt import objectives
from thunderbolt.api.experiment import Objective
from thunderbolt.cli.kube import add_kube_args, connect, friendly
from thunderbolt.cli.tables import duration, number, param_value, table
from thunderbolt.cli.trial_reads import trials_of


def ranked(trials: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Succeeded trials with an objective, best first; ties keep trial-number order."""
    scored = [
        t
        for t in trials
        if (t.get("status") or {}).get("phase") == "Succeeded"
        and (t.get("status") or {}).get("objective") is not None
    ]
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(
        scored,
        key=lambda t: (
            sign * float(t["status"]["objective"]),
            (t.get("spec") or {}).get("number", 0),
        ),
    )


def _std(trial: dict[str, Any]) -> float | None:
    value = (trial.get("status") or {}).get("objectiveStd")
    return float(value) if value is not None else None


def split_text(status: dict[str, Any]) -> str:
    """A Trial's split identity, short: ``seed/hash`` (``xk`` with k folds); "-" if none."""
    split = status.get("split") or {}
    if not split:
        return "-"
    folds = f"x{split['folds']}" if split.get("folds") else ""
    return f"{split.get('seed')}/{str(split.get('validationHash', ''))[:8]}{folds}"


def within_noise(best: dict[str, Any], other: dict[str, Any]) -> bool:
    """``other``'s objective is within the leader's spread (one std over folds)."""
    spread = _std(best)
    if spread is None:
        return False
    gap = abs(float(best["status"]["objective"]) - float(other["status"]["objective"]))
    return gap <= spread


def split_note(trials: list[dict[str, Any]]) -> str | None:
    """A warning when the trials were not all validated on the same rows."""
    splits = {
        json.dumps(split, sort_keys=True)
        for t in trials
        if (split := (t.get("status") or {}).get("split"))
    }
    if len(splits) <= 1:
        return None
    return (
        f"warning: these trials were validated on {len(splits)} different splits "
        "(status.split): their objectives do not compare like with like"
    )


def _param_names(spec: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    return [p["name"] for p in spec.get("parameters") or []] or sorted(
        {k for t in rows for k in ((t.get("spec") or {}).get("parameters") or {})}
    )


def front_table(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    limit: int | None = None,
    front_only: bool = False,
) -> str:
    """Several objectives: Trials ranked on the first objective, one column per
    objective, the Pareto front (non-dominated Trials) marked ``*``."""
    spec = experiment.get("spec") or {}
    goals = [Objective.model_validate(o) for o in spec.get("objectives") or []]
    ranked_all = objectives.scored(trials, goals)
    front = {id(t) for t, _ in objectives.pareto_front(trials, goals)}
    shown = [(t, v) for t, v in ranked_all if id(t) in front or not front_only][:limit]
    names = _param_names(spec, [dict(t) for t, _ in shown])
    headers = ["RANK", "TRIAL", "FRONT", *(g.metric.upper() for g in goals), *names, "SPLIT"]
    rows = [
        [
            rank,
            t["metadata"]["name"],
            "*" if id(t) in front else "",
            *(number(v) for v in vals),
            *[
                param_value(((t.get("spec") or {}).get("parameters") or {}).get(n, "-"))
                for n in names
            ],
            split_text(t.get("status") or {}),
        ]
        for rank, (t, vals) in enumerate(shown, start=1)
    ]
    if not rows:
        return "No succeeded trials with every objective yet."
    how = ", ".join(f"{g.metric} ({g.direction[:3]})" for g in goals)
    notes = [f"* {len(front)} trial(s) on the Pareto front: none is better on all of {how}"]
    note = split_note([dict(t) for t, _ in ranked_all])
    if note:
        notes.append(note)
    return "\n".join([table(headers, rows), *notes])


def leaderboard_table(
    experiment: dict[str, Any],
    trials: list[dict[str, Any]],
    limit: int | None = None,
    front_only: bool = False,
) -> str:
    spec = experiment.get("spec") or {}
    if spec.get("objectives"):
        return front_table(experiment, trials, limit, front_only)
    objective = spec.get("objective") or {}
    all_ranked = ranked(trials, objective.get("direction", "maximize"))
    rows_src = all_ranked[:limit]
    spread = any(_std(t) is not None for t in rows_src)
    names = [p["name"] for p in spec.get("parameters") or []] or sorted(
        {k for t in rows_src for k in ((t.get("spec") or {}).get("parameters") or {})}
    )
    headers = [
        "RANK",
        "TRIAL",
        (objective.get("metric") or "OBJECTIVE").upper(),
        *(["±STD"] if spread else []),
        *names,
        "DURATION",
        "SPLIT",
    ]
    rows = []
    tied = 0
    for rank, trial in enumerate(rows_src, start=1):
        params = (trial.get("spec") or {}).get("parameters") or {}
        status = trial["status"]
        noise = rank > 1 and within_noise(rows_src[0], trial)
        tied += noise
        rows.append(
            [
                f"{rank}~" if noise else rank,
                trial["metadata"]["name"],
                number(status.get("objective")),
                *([number(_std(trial))] if spread else []),
                *[param_value(params.get(n, "-")) for n in names],
                duration(status.get("durationSeconds")),
                split_text(status),
            ]
        )
    if not rows:
        return "No succeeded trials yet."
    notes = []
    if tied:
        notes.append(
            f"~ {tied} trial(s) within the leader's spread (±{number(_std(rows_src[0]))}): "
            "not distinguishable from it"
        )
    note = split_note(all_ranked)
    if note:
        notes.append(note)
    return "\n".join([table(headers, rows), *notes])


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="an experiment's trials ranked by objective", description=__doc__
    )
    parser.add_argument("experiment")
    parser.add_argument("--top", type=int, default=None, help="only the best N")
    parser.add_argument(
        "--front", action="store_true", help="several objectives: only the Pareto front"
    )
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    experiment = kube.get("experiments", args.experiment)
    print(leaderboard_table(experiment, trials_of(kube, args.experiment), args.top, args.front))
    return 0
