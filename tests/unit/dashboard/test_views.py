"""The dashboard's view models agree with what the CLI prints for the same objects."""

from __future__ import annotations

import datetime as dt

from objects import NS, experiment, trial, trials

from thunderbolt.cli.compare import comparison_table, group_by
from thunderbolt.cli.leaderboard import leaderboard_table, ranked
from thunderbolt.cli.tables import number
from thunderbolt.dashboard import views

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_history_keeps_the_running_best_over_succeeded_trials_only():
    history = views.history(trials(), "maximize")
    assert [h["number"] for h in history] == [0, 1, 3, 5]
    assert [h["best"] for h in history] == [0.90, 0.95, 0.95, 0.97]
    assert [h["best"] for h in views.history(trials(), "minimize")] == [0.90, 0.90, 0.90, 0.90]


def test_leaderboard_rows_rank_like_the_cli():
    view = views.leaderboard(experiment(), trials())
    assert [r["trial"] for r in view["rows"]] == [
        t["metadata"]["name"] for t in ranked(trials(), "maximize")
    ]
    assert view["params"] == ["lr", "spectral_norm"]
    printed = leaderboard_table(experiment(), trials())
    for row in view["rows"]:
        assert row["trial"] in printed and row["objective"] in printed


def test_comparison_has_the_numbers_of_thunderbolt_compare():
    params = views._param_specs(experiment()["spec"], trials())
    (comparison,) = views.comparisons(trials(), params, "maximize")
    assert comparison["param"] == "spectral_norm"
    printed = comparison_table(
        group_by(trials(), "spectral_norm"), "spectral_norm", "accuracy", "maximize"
    )
    for group in comparison["groups"]:
        line = next(line for line in printed.splitlines() if line.startswith(group["value"] + " "))
        assert line.split()[1:] == [str(group["n"]), group["mean"], group["best"], group["std"]]
    assert comparison["winner"] == "false"  # mean 0.95 (one trial) beats 0.9333
    groups = {g["value"]: g for g in comparison["groups"]}
    assert groups["true"]["mean"] == number((0.90 + 0.93 + 0.97) / 3)
    assert groups["false"]["n"] == 1 and groups["false"]["best"] == number(0.95)


def test_experiment_view_carries_pipeline_progress_and_points():
    view = views.experiment_view(
        experiment(bestTrial={"name": "iris-5", "objective": 0.97}), trials(), None, NOW
    )
    assert [s["name"] for s in view["stages"]] == ["search", "train", "best", "serve"]
    assert view["progress"] == "6/8" and view["best"] == number(0.97)
    assert len(view["points"]) == 4
    assert view["points"][0]["params"]["spectral_norm"] == "true"
    assert [t["number"] for t in view["trials"]] == list(range(7))


def test_list_filters_by_label_selector():
    exps = [experiment("iris"), experiment("other")]
    exps[1]["metadata"]["labels"] = {"app": "other"}
    rows = views.experiments_list(exps, trials(), NOW, "app=iris")
    assert [r["name"] for r in rows] == ["iris"]
    assert rows[0]["finished"] == 6 and rows[0]["running"] == 1
    assert [r["name"] for r in views.experiments_list(exps, [], NOW, "app!=iris")] == ["other"]
    assert [r["name"] for r in views.experiments_list(exps, [], NOW, "team,!missing")] == ["iris"]
    assert views.experiments_list(exps, [], NOW, "nolabel") == []


def test_trial_view_curves_events_and_safe_links():
    t = trial(6, "Running", None, False, intermediate=[{"step": 1, "value": 0.7}, {"step": 0, "value": 0.5}],
              mlflowRunUrl="javascript:alert(1)")  # fmt: skip
    t["status"]["collector"] = {
        "kind": "StdOut",
        "lastStep": 1,
        "lastMetrics": {"loss": 0.4, "accuracy": 0.7},
    }
    events = [
        {
            "type": "Normal",
            "reason": "Created",
            "message": "job",
            "lastTimestamp": "2026-01-01T11:00:00Z",
        },
        {
            "type": "Warning",
            "reason": "Late",
            "message": "x",
            "lastTimestamp": "2026-01-01T11:30:00Z",
        },
    ]
    view = views.trial_view(t, events, "line\n" * 10, NOW)
    assert view["curves"][0] == {
        "metric": "accuracy",
        "points": [{"step": 0, "value": 0.5}, {"step": 1, "value": 0.7}],
    }
    assert view["curves"][1]["metric"] == "loss"
    assert view["mlflowRunUrl"] is None  # never a javascript: link
    assert [e["reason"] for e in view["events"]] == ["Late", "Created"]
    assert views._http_url("https://mlflow.example/runs/1") == "https://mlflow.example/runs/1"


def test_deployment_view_splits_traffic_during_a_canary():
    md = {
        "metadata": {"name": "iris", "namespace": NS},
        "spec": {
            "strategy": {"type": "Canary", "canary": {"steps": [{"weight": 20}, {"weight": 50}]}}
        },
        "status": {
            "phase": "Progressing",
            "currentRevision": {"number": 1, "trial": "iris-1", "objective": 0.95},
            "canary": {"revision": 2, "weight": 20, "step": 0},
            "history": [
                {"number": 2, "outcome": "Active", "deployedAt": "2026-01-01T11:50:00Z"},
                {"number": 1, "outcome": "Active", "deployedAt": "2026-01-01T11:00:00Z"},
            ],
        },
    }
    view = views.deployment_view(md, [], NOW)
    assert view["traffic"] == [
        {"revision": 1, "role": "stable", "weight": 80},
        {"revision": 2, "role": "canary", "weight": 20},
    ]
    assert [h["number"] for h in view["timeline"]] == [1, 2]
    assert view["canary"]["steps"] == 2


def test_trials_of_needs_the_same_namespace():
    other = trial(9, "Succeeded", 0.5, True)
    other["metadata"]["namespace"] = "elsewhere"
    assert len(views.trials_of(experiment(), [*trials(), other])) == 7


def test_trial_view_shows_the_validation_digest_as_the_cli_does():
    t = trial(3, "Failed", None, False)
    assert views.trial_view(t, [], None, NOW)["validation"] is None
    t["status"]["validation"] = {
        "verdict": "fail",
        "failed": ["dataset"],
        "findings": [
            {"kind": "split_leakage", "severity": "fail", "message": "12 of 12 rows <b>shared</b>"}
        ],
        "recommendations": [
            {"action": "drop_leaking_rows", "finding": "split_leakage", "text": "drop them"}
        ],
    }
    shown = views.trial_view(t, [], None, NOW)["validation"]
    assert shown == {
        "verdict": "fail",
        "failed": ["dataset"],
        "findings": [
            {"kind": "split_leakage", "severity": "fail", "message": "12 of 12 rows <b>shared</b>"}
        ],
        "recommendations": [{"finding": "split_leakage", "text": "drop them"}],
    }  # text as data: the page writes it with textContent, never as markup
