"""`thunderbolt leaderboard EXPERIMENT`: every finished trial, best first."""

from __future__ import annotations

import argparse
from typing import Any

from thunderbolt.cli.kube import Kube, add_kube_args, connect, friendly
from thunderbolt.cli.tables import duration, number, param_value, table

EXPERIMENT_LABEL = "thunderbolt.io/experiment"


def trials_of(kube: Kube, experiment: str) -> list[dict[str, Any]]:
    """The experiment's Trials, by label or by spec.experiment (either is enough)."""
    return [
        t
        for t in kube.list("trials")
        if (t.get("metadata", {}).get("labels") or {}).get(EXPERIMENT_LABEL) == experiment
        or (t.get("spec") or {}).get("experiment") == experiment
    ]


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


def leaderboard_table(
    experiment: dict[str, Any], trials: list[dict[str, Any]], limit: int | None = None
) -> str:
    spec = experiment.get("spec") or {}
    objective = spec.get("objective") or {}
    rows_src = ranked(trials, objective.get("direction", "maximize"))[:limit]
    names = [p["name"] for p in spec.get("parameters") or []] or sorted(
        {k for t in rows_src for k in ((t.get("spec") or {}).get("parameters") or {})}
    )
    headers = [
        "RANK",
        "TRIAL",
        (objective.get("metric") or "OBJECTIVE").upper(),
        *names,
        "DURATION",
    ]
    rows = []
    for rank, trial in enumerate(rows_src, start=1):
        params = (trial.get("spec") or {}).get("parameters") or {}
        status = trial["status"]
        rows.append(
            [
                rank,
                trial["metadata"]["name"],
                number(status.get("objective")),
                *[param_value(params.get(n, "-")) for n in names],
                duration(status.get("durationSeconds")),
            ]
        )
    if not rows:
        return "No succeeded trials yet."
    return table(headers, rows)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="an experiment's trials ranked by objective", description=__doc__
    )
    parser.add_argument("experiment")
    parser.add_argument("--top", type=int, default=None, help="only the best N")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    experiment = kube.get("experiments", args.experiment)
    print(leaderboard_table(experiment, trials_of(kube, args.experiment), args.top))
    return 0
