"""The leaderboard and pipeline views of an Experiment with several objectives."""

from __future__ import annotations

import datetime as dt

from cli_objects import experiment, trial

from thunderbolt.cli.leaderboard import leaderboard_table
from thunderbolt.cli.pipeline import pipeline_view

OBJECTIVES = [
    {"metric": "val_accuracy", "direction": "maximize"},
    {"metric": "latency_p50_ms", "direction": "minimize"},
]


def multi_experiment(status=None):
    exp = experiment(status)
    exp["spec"].pop("objective")
    exp["spec"]["objectives"] = OBJECTIVES
    return exp


def scored(number, accuracy, latency, **status):
    return trial(
        number,
        objective=accuracy,
        metrics={"val_accuracy": accuracy, "latency_p50_ms": latency},
        **status,
    )


def test_leaderboard_marks_the_pareto_front_and_shows_every_objective():
    trials = [
        scored(0, 0.90, 1.0),
        scored(1, 0.95, 3.0),
        scored(2, 0.88, 2.0),  # dominated by trial 0
        scored(3, 0.85, 0.5),
        trial(4, "Running"),
    ]
    lines = leaderboard_table(multi_experiment(), trials).splitlines()
    assert lines[0].split()[:5] == ["RANK", "TRIAL", "FRONT", "VAL_ACCURACY", "LATENCY_P50_MS"]
    assert [line.split()[1:5] for line in lines[1:5]] == [
        ["iris-sn-001", "*", "0.95", "3"],
        ["iris-sn-000", "*", "0.9", "1"],
        ["iris-sn-002", "0.88", "2", "0.01"],  # no star: the next column follows
        ["iris-sn-003", "*", "0.85", "0.5"],
    ]
    assert "3 trial(s) on the Pareto front" in lines[5]
    front = leaderboard_table(multi_experiment(), trials, front_only=True).splitlines()
    assert [line.split()[1] for line in front[1:4]] == ["iris-sn-001", "iris-sn-000", "iris-sn-003"]
    assert "iris-sn-002" not in "\n".join(front)


def test_pipeline_header_names_every_objective_and_the_front():
    exp = multi_experiment({"phase": "Running", "paretoFrontSize": 3})
    now = dt.datetime(2026, 1, 1, 10, 5, tzinfo=dt.UTC)
    header = pipeline_view(exp, [], None, now).splitlines()[1]
    assert (
        header
        == "  objectives: maximize val_accuracy, minimize latency_p50_ms (3 on the Pareto front)"
    )


def _goals():
    from thunderbolt.cli.compare import goals_of

    return goals_of(multi_experiment()["spec"])


def test_compare_lists_the_front_first_with_every_objective():
    from thunderbolt.cli.compare import pareto_points, pareto_table

    trials = [scored(0, 0.90, 1.0), scored(1, 0.95, 3.0), scored(2, 0.88, 2.0), trial(3, "Failed")]
    points = pareto_points(trials, _goals())
    assert [(p.trial, p.front) for p in points] == [
        ("iris-sn-001", True),
        ("iris-sn-000", True),
        ("iris-sn-002", False),  # 0.88 and 2 ms: trial 0 is better on both
    ]
    lines = pareto_table(points, _goals()).splitlines()
    assert lines[0].split() == [
        "TRIAL",
        "FRONT",
        "VAL_ACCURACY",
        "(max)",
        "LATENCY_P50_MS",
        "(min)",
    ]
    assert lines[1].split() == ["iris-sn-001", "*", "0.95", "3"]
    assert lines[3].split() == ["iris-sn-002", "0.88", "2"]
    assert "Pareto front: 2 of 3 trial(s)" in lines[4]


def test_compare_pareto_plot_is_a_png_and_axes_are_checked(tmp_path):
    import pytest

    from thunderbolt.cli.compare import axes_of, pareto_plot, pareto_points
    from thunderbolt.cli.kube import CliError

    points = pareto_points([scored(i, 0.8 + i / 100, 1 + (i * 7) % 5) for i in range(8)], _goals())
    out = tmp_path / "front.png"
    pareto_plot(points, _goals(), axes_of(_goals(), "latency_p50_ms,val_accuracy"), "t", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert axes_of(_goals(), None) == (0, 1)
    for bad in ("val_accuracy", "val_accuracy,val_accuracy", "val_accuracy,nope"):
        with pytest.raises(CliError, match="two different objectives"):
            axes_of(_goals(), bad)
