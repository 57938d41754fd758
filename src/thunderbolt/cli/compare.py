"""`thunderbolt compare EXPERIMENT --by PARAM [--png FILE]`.

The objective of succeeded trials grouped by one parameter's value (spectral_norm on
vs off is the motivating case): n, mean, best, std per group, and a strip+box plot.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import statistics
from dataclasses import dataclass, field
from typing import Any

from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly
from thunderbolt.cli.leaderboard import trials_of
from thunderbolt.cli.tables import number, param_value, table


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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="objective grouped by a parameter (table and plot)", description=__doc__
    )
    parser.add_argument("experiment")
    parser.add_argument("--by", required=True, metavar="PARAM", help="parameter to group by")
    parser.add_argument("--png", type=pathlib.Path, help="also write a plot to this PNG file")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    experiment = kube.get("experiments", args.experiment)
    spec = experiment.get("spec") or {}
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
