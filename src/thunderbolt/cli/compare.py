"""`thunderbolt compare EXPERIMENT [--by PARAM] [--png FILE]`.

The objective of succeeded trials grouped by one parameter's value (spectral_norm on
vs off is the motivating case): n, mean, best, std per group, and a strip+box plot.

With several objectives (``spec.objectives``) and no ``--by``: the Pareto front, the
Trials no other beats on every objective, as a table (every objective, the front first)
and a scatter of two objectives (``--axes A,B``, default the first two) with the front
highlighted and joined, the direction of "better" marked on each axis.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import statistics
from dataclasses import dataclass, field
from typing import Any

from thunderbolt import objectives as objectives_
from thunderbolt.api.experiment import Objective
from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly
from thunderbolt.cli.tables import number, param_value, table
from thunderbolt.cli.trial_reads import trials_of


@dataclass
class Group:
    value: str
    objectives: list[float] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.objectives)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.objectives)

    @property
    def std(self) -> float:
        """Sample standard deviation; 0 for a single trial."""
        return statistics.stdev(self.objectives) if self.n > 1 else 0.0

    def best(self, direction: str) -> float:
        return max(self.objectives) if direction == "maximize" else min(self.objectives)


def group_by(trials: list[dict[str, Any]], param: str) -> list[Group]:
    """Succeeded trials with an objective, grouped by ``param`` (missing -> '-')."""
    groups: dict[str, Group] = {}
    for trial in trials:
        status = trial.get("status") or {}
        objective = status.get("objective")
        if status.get("phase") != "Succeeded" or objective is None or not math.isfinite(objective):
            continue
        params = (trial.get("spec") or {}).get("parameters") or {}
        key = param_value(params[param]) if param in params else "-"
        group = groups.setdefault(key, Group(key))
        group.objectives.append(float(objective))
        group.trials.append(trial["metadata"]["name"])
    return [groups[k] for k in sorted(groups)]


def comparison_table(groups: list[Group], param: str, metric: str, direction: str) -> str:
    if not groups:
        return "No succeeded trials to compare yet."
    rows = [
        [g.value, g.n, number(g.mean), number(g.best(direction)), number(g.std)] for g in groups
    ]
    text = table([param.upper(), "N", f"MEAN {metric}", f"BEST {metric}", "STD"], rows)
    if len(groups) > 1:
        pick = max if direction == "maximize" else min
        winner = pick(groups, key=lambda g: g.mean)
        text += f"\nbest mean {metric}: {param}={winner.value} ({direction})"
    return text


def plot(groups: list[Group], param: str, metric: str, title: str, path: pathlib.Path) -> None:
    """Box plot per group with every trial drawn as a point (matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups) + 2), 4), dpi=120)
    try:
        data = [g.objectives for g in groups]
        ax.boxplot(data, widths=0.5, showmeans=True)
        ax.set_xticks(range(1, len(groups) + 1), [f"{g.value}\n(n={g.n})" for g in groups])
        for i, g in enumerate(groups, start=1):
            offsets = [i + 0.12 * ((j % 5) - 2) / 2 for j in range(g.n)]
            ax.scatter(offsets, g.objectives, s=18, alpha=0.7, zorder=3)
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


@dataclass(frozen=True)
class ParetoPoint:
    """One succeeded Trial with every objective's value; ``front``: non-dominated."""

    trial: str
    number: int
    values: list[float]
    front: bool


def goals_of(spec: dict[str, Any]) -> list[Objective]:
    """The Experiment's objectives (one for a single-objective Experiment)."""
    raw = spec.get("objectives") or ([spec["objective"]] if spec.get("objective") else [])
    return [Objective.model_validate(o) for o in raw]


def pareto_points(trials: list[dict[str, Any]], goals: list[Objective]) -> list[ParetoPoint]:
    """Succeeded Trials with every objective, the front first, each part best first on
    the first objective (the same front as ``status.paretoFront`` and the leaderboard)."""
    front = {id(t) for t, _ in objectives_.pareto_front(trials, goals)}
    points = [
        ParetoPoint(
            str(t["metadata"]["name"]),
            int((t.get("spec") or {}).get("number", 0)),
            list(vals),
            id(t) in front,
        )
        for t, vals in objectives_.scored(trials, goals)
    ]
    return sorted(points, key=lambda p: not p.front)  # stable: rank order kept


def pareto_table(points: list[ParetoPoint], goals: list[Objective]) -> str:
    if not points:
        return "No succeeded trials with every objective yet."
    headers = ["TRIAL", "FRONT", *(f"{g.metric.upper()} ({g.direction[:3]})" for g in goals)]
    rows = [[p.trial, "*" if p.front else "", *(number(v) for v in p.values)] for p in points]
    on_front = sum(p.front for p in points)
    how = ", ".join(g.metric for g in goals)
    return (
        table(headers, rows)
        + f"\n* Pareto front: {on_front} of {len(points)} trial(s); none of them is beaten"
        f" on every one of {how} by another trial"
    )


def axes_of(goals: list[Objective], axes: str | None) -> tuple[int, int]:
    """Indexes of the two objectives to plot (``--axes A,B``; default the first two)."""
    names = [g.metric for g in goals]
    if not axes:
        return 0, 1
    picked = [a.strip() for a in axes.split(",")]
    if len(picked) != 2 or any(a not in names for a in picked) or picked[0] == picked[1]:
        raise CliError(f"--axes takes two different objectives of: {', '.join(names)}")
    return names.index(picked[0]), names.index(picked[1])


def pareto_plot(
    points: list[ParetoPoint],
    goals: list[Objective],
    axes: tuple[int, int],
    title: str,
    path: pathlib.Path,
) -> None:
    """Two objectives as a scatter: every Trial a grey dot, the front orange and joined
    in order (a step line: the trade-off a user picks from)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i, j = axes
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    try:
        rest = [p for p in points if not p.front]
        front = sorted((p for p in points if p.front), key=lambda p: p.values[i])
        ax.scatter(
            [p.values[i] for p in rest], [p.values[j] for p in rest],
            s=16, color="#9aa5b1", alpha=0.7, label="trials",
        )  # fmt: skip
        ax.plot(
            [p.values[i] for p in front], [p.values[j] for p in front],
            "o-", color="#e8590c", markersize=6, label=f"Pareto front ({len(front)})",
        )  # fmt: skip
        for p in front:
            ax.annotate(str(p.number), (p.values[i], p.values[j]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        better = {"maximize": "higher is better", "minimize": "lower is better"}
        ax.set_xlabel(f"{goals[i].metric} ({better[goals[i].direction]})")
        ax.set_ylabel(f"{goals[j].metric} ({better[goals[j].direction]})")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="objective grouped by a parameter (table and plot)", description=__doc__
    )
    parser.add_argument("experiment")
    parser.add_argument(
        "--by", metavar="PARAM", help="parameter to group by (required with one objective)"
    )
    parser.add_argument(
        "--axes",
        metavar="A,B",
        help="several objectives: the two objectives to plot (default: the first two)",
    )
    parser.add_argument("--png", type=pathlib.Path, help="also write a plot to this PNG file")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    experiment = kube.get("experiments", args.experiment)
    spec = experiment.get("spec") or {}
    goals = goals_of(spec)
    if args.by is None:
        if len(goals) < 2:
            raise CliError("--by PARAM is required: this experiment has one objective")
        return _front(kube, args, goals)
    names = [p["name"] for p in spec.get("parameters") or []]
    if names and args.by not in names:
        raise CliError(f"{args.by!r} is not a parameter of {args.experiment}: {', '.join(names)}")
    # several objectives: compared on the first
    objective = spec.get("objective") or (spec.get("objectives") or [{}])[0]
    metric = objective.get("metric", "objective")
    direction = objective.get("direction", "maximize")
    groups = group_by(trials_of(kube, args.experiment), args.by)
    print(comparison_table(groups, args.by, metric, direction))
    if args.png:
        if not groups:
            raise CliError("nothing to plot")
        plot(groups, args.by, metric, f"{args.experiment}: {metric} by {args.by}", args.png)
        print(f"plot written to {args.png}")
    return 0


def _front(kube: Any, args: argparse.Namespace, goals: list[Objective]) -> int:
    axes = axes_of(goals, args.axes)
    points = pareto_points(trials_of(kube, args.experiment), goals)
    print(pareto_table(points, goals))
    if args.png:
        if not points:
            raise CliError("nothing to plot")
        title = f"{args.experiment}: Pareto front"
        pareto_plot(points, goals, axes, title, args.png)
        print(f"plot written to {args.png}")
    return 0
