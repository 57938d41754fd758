"""Pure CLI formatting: tables, pipeline stages, leaderboard, comparison, rollback target."""

from __future__ import annotations

import datetime as dt

import pytest
from cli_objects import experiment, modeldeployment, summary, trial

from thunderbolt.cli import get, tables
from thunderbolt.cli.compare import comparison_table, group_by, plot
from thunderbolt.cli.describe import experiment_view, modeldeployment_view, trial_view
from thunderbolt.cli.kube import CliError
from thunderbolt.cli.leaderboard import leaderboard_table, ranked
from thunderbolt.cli.pipeline import eta_seconds, pipeline_view, stages
from thunderbolt.cli.rollback import rollback_target

NOW = dt.datetime(2026, 1, 1, 10, 5, tzinfo=dt.UTC)


def test_table_aligns_columns():
    text = tables.table(["A", "LONG"], [["xxxx", 1], [None, "y"]])
    assert text.splitlines() == ["A      LONG", "xxxx   1", "       y"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (75, "1m15s"), (700, "11m"), (3700, "1h1m"), (90000, "1d1h"), (None, "-")],
)
def test_duration_is_compact(seconds, text):
    assert tables.duration(seconds) == text


def test_age_and_params_text():
    assert tables.age("2026-01-01T10:00:00Z", NOW) == "5m0s"
    assert tables.age(None, NOW) == "-"
    assert (
        tables.params_text({"spectral_norm": True, "lr": 0.001234})
        == "lr=0.001234 spectral_norm=true"
    )


def test_get_experiment_row_shows_progress_and_best():
    best = trial(3, objective=0.9667)
    exp = experiment(
        {
            "phase": "Running",
            "trials": {"total": 4, "running": 2, "succeeded": 1, "pruned": 1},
            "bestTrial": summary(best),
        }
    )
    text = get.render("experiments", [exp], NOW, all_ns=False)
    header, row = text.splitlines()
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "RUNNING", "BEST", "BEST-TRIAL", "AGE"]
    assert row.split() == ["iris-sn", "Running", "2/6", "2", "0.9667", "iris-sn-003", "5m0s"]


def test_get_trials_all_namespaces_adds_namespace_column():
    text = get.render("trials", [trial(1, objective=0.9, spectral_norm=True)], NOW, all_ns=True)
    header, row = text.splitlines()
    assert header.split()[0] == "NAMESPACE"
    assert row.split()[:6] == ["demo", "iris-sn-001", "iris-sn", "Succeeded", "0.9", "true"]


def test_get_modeldeployment_row():
    md = modeldeployment(
        {
            "phase": "Available",
            "currentRevision": {"number": 2, "source": "trial/iris-sn-003"},
            "canary": {"revision": 3, "weight": 10, "step": 0},
            "endpoint": "http://iris.demo.svc:8080/v2/models/iris",
        }
    )
    row = get.render("modeldeployments", [md], NOW, all_ns=False).splitlines()[1].split()
    assert row[:5] == ["iris", "Available", "2", "trial/iris-sn-003", "10%"]


def test_pipeline_running_search():
    trials = [trial(0, objective=0.9), trial(1, "Running", duration=None), trial(2, "Pruned")]
    exp = experiment(
        {
            "phase": "Running",
            "trials": {"total": 3, "running": 1, "succeeded": 1, "pruned": 1},
            "bestTrial": summary(trials[0]),
        }
    )
    found = {s.name: s for s in stages(exp, trials, None)}
    assert found["search"].state == "active"
    assert found["train"].state == "active"
    assert "trial 3/6" in found["train"].detail
    assert found["best"].state == "active" and "val_accuracy=0.9" in found["best"].detail
    assert found["promote"].state == "pending"
    view = pipeline_view(exp, trials, None, NOW)
    # 4 trials left at 2 in parallel: 2 waves of the 30 s mean.
    assert "ETA: 1m0s" in view


def test_pipeline_done_when_best_is_served():
    best = trial(2, objective=0.97)
    exp = experiment(
        {
            "phase": "Succeeded",
            "trials": {"total": 6, "succeeded": 6},
            "bestTrial": summary(best),
            "startTime": "2026-01-01T10:00:00Z",
            "completionTime": "2026-01-01T10:04:00Z",
        }
    )
    md = modeldeployment(
        {
            "phase": "Available",
            "currentRevision": {"number": 1, "trial": "iris-sn-002"},
            "endpoint": "http://iris.demo.svc:8080/v2/models/iris",
        }
    )
    assert [s.state for s in stages(exp, [best], md)] == ["done"] * 4
    view = pipeline_view(exp, [best], md, NOW)
    assert "finished in 4m0s" in view and "http://iris.demo.svc:8080" in view


def test_pipeline_promote_in_progress_and_degraded():
    best = trial(2, objective=0.97)
    exp = experiment({"phase": "Succeeded", "bestTrial": summary(best)})
    old = {"number": 1, "trial": "iris-sn-000"}
    progressing = modeldeployment({"phase": "Available", "currentRevision": old})
    assert stages(exp, [best], progressing)[-1].state == "active"
    degraded = modeldeployment({"phase": "Degraded", "currentRevision": old})
    assert stages(exp, [best], degraded)[-1].state == "failed"


def test_a_revision_waiting_for_approval_is_a_settled_waiting_stage():
    best = trial(2, objective=0.97)
    exp = experiment({"phase": "Succeeded", "bestTrial": summary(best)})
    old = {"number": 1, "trial": "iris-sn-000"}
    message = "revision 2 waits for approval: thunderbolt approve|reject <name> --revision 2"
    md = modeldeployment(
        {
            "phase": "Available",
            "currentRevision": old,
            "reason": "PendingApproval",
            "message": message,
        }
    )
    stage = stages(exp, [best], md)[-1]
    assert stage.state == "waiting" and "revision 2 waits for approval" in stage.detail
    assert "[?] promote" in pipeline_view(exp, [best], md, NOW)
    # once the best is served the stage is done, whatever waits after it
    serving = modeldeployment(
        {"phase": "Available", "currentRevision": {"number": 2, "trial": "iris-sn-002"},
         "reason": "PendingApproval", "message": message}
    )  # fmt: skip
    assert stages(exp, [best], serving)[-1].state == "done"


def test_failed_search_without_success_marks_train_and_best_failed():
    exp = experiment({"phase": "Failed", "trials": {"total": 3, "failed": 3}})
    states = {s.name: s.state for s in stages(exp, [], None)}
    assert (
        states["search"] == "failed" and states["train"] == "failed" and states["best"] == "failed"
    )


def test_eta_prefers_operator_estimate():
    exp = experiment({"phase": "Running", "estimatedCompletionTime": "2026-01-01T10:07:30Z"})
    assert eta_seconds(exp, [], NOW) == 150
    assert eta_seconds(experiment({"phase": "Running"}), [], NOW) is None


def test_leaderboard_ranks_by_direction():
    trials = [
        trial(0, objective=0.8),
        trial(1, objective=0.95),
        trial(2, "Failed"),
        trial(3, objective=0.9),
    ]
    assert [t["spec"]["number"] for t in ranked(trials, "maximize")] == [1, 3, 0]
    assert [t["spec"]["number"] for t in ranked(trials, "minimize")] == [0, 3, 1]
    text = leaderboard_table(experiment(), trials)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["RANK", "TRIAL", "VAL_ACCURACY"]
    assert lines[1].split()[:3] == ["1", "iris-sn-001", "0.95"]
    assert len(lines) == 4
    assert leaderboard_table(experiment(), [trial(0, "Running")]) == "No succeeded trials yet."


def test_compare_groups_spectral_norm():
    trials = [
        trial(0, objective=0.90, spectral_norm=False),
        trial(1, objective=0.94, spectral_norm=False),
        trial(2, objective=0.96, spectral_norm=True),
        trial(3, objective=0.98, spectral_norm=True),
        trial(4, "Pruned", objective=0.5, spectral_norm=True),
    ]
    groups = group_by(trials, "spectral_norm")
    assert [(g.value, g.n) for g in groups] == [("false", 2), ("true", 2)]
    assert groups[1].mean == pytest.approx(0.97)
    assert groups[1].best("maximize") == 0.98 and groups[0].best("minimize") == 0.90
    assert groups[0].std == pytest.approx(0.028284, rel=1e-4)
    text = comparison_table(groups, "spectral_norm", "val_accuracy", "maximize")
    assert text.splitlines()[0].split() == [
        "SPECTRAL_NORM",
        "N",
        "MEAN",
        "val_accuracy",
        "BEST",
        "val_accuracy",
        "STD",
    ]
    assert "best mean val_accuracy: spectral_norm=true" in text


def test_compare_writes_a_png(tmp_path):
    groups = group_by(
        [trial(0, objective=0.9), trial(1, objective=0.95, spectral_norm=True)], "spectral_norm"
    )
    out = tmp_path / "cmp.png"
    plot(groups, "spectral_norm", "val_accuracy", "iris-sn", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5000


def test_rollback_defaults_to_the_newest_older_revision_that_served():
    md = modeldeployment(
        {
            "phase": "Available",
            "currentRevision": {"number": 6},
            "history": [
                {"number": 1, "outcome": "Superseded", "reason": "superseded by revision 2"},
                {"number": 2, "outcome": "Superseded", "promotedAt": "2026-01-01T00:00:00Z"},
                {"number": 3, "outcome": "RolledBack", "reason": "AnalysisFailed: p99 900ms"},
                {"number": 4, "outcome": "Superseded",
                 "reason": "the desired model changed before its rollout finished"},
                {"number": 5, "outcome": "Refused", "reason": "ChecksumMismatch: ..."},
                {"number": 6, "outcome": "Promoted"},
            ],
        }
    )  # fmt: skip
    assert rollback_target(md, None) == 2  # not the failed canary 3, not 4 or 5
    assert rollback_target(md, 1) == 1
    with pytest.raises(CliError, match="revision 3 never served.*--force"):
        rollback_target(md, 3)
    assert rollback_target(md, 3, force=True) == 3
    with pytest.raises(CliError, match="was refused"):
        rollback_target(md, 5, force=True)
    with pytest.raises(CliError, match="no revision 7"):
        rollback_target(md, 7)
    with pytest.raises(CliError, match="already serves"):
        rollback_target(md, 6)
    first = modeldeployment({"currentRevision": {"number": 1}, "history": [{"number": 1}]})
    with pytest.raises(CliError, match="no older revision that served"):
        rollback_target(first, None)


def test_rollback_skips_rejected_and_deprecated_revisions():
    deprecated = {"decision": "Deprecated", "by": "alice", "reason": "leaks labels"}
    md = modeldeployment(
        {
            "currentRevision": {"number": 4},
            "history": [
                {"number": 1, "outcome": "Superseded", "promotedAt": "2026-01-01T00:00:00Z"},
                {"number": 2, "outcome": "Superseded", "promotedAt": "2026-01-02T00:00:00Z",
                 "deprecated": deprecated},
                {"number": 3, "outcome": "Rejected", "reason": "rejected by bob: worse"},
                {"number": 4, "outcome": "Promoted"},
            ],
        }
    )  # fmt: skip
    assert rollback_target(md, None) == 1
    with pytest.raises(CliError, match="deprecated \\(leaks labels\\)"):
        rollback_target(md, 2, force=True)
    with pytest.raises(CliError, match="was rejected"):
        rollback_target(md, 3, force=True)


def test_describe_views_render_every_section():
    t = trial(1, objective=0.9, jobName="iris-sn-001", mlflowRunId="abc", reason=None)
    exp = experiment({"phase": "Running", "bestTrial": summary(t)})
    text = experiment_view(exp, [t], None, NOW)
    for section in ("Trials:", "Leaderboard:", "Conditions:", "[>] train"):
        assert section in text
    assert "Job:         iris-sn-001" in trial_view(t)
    md = modeldeployment({"phase": "Available", "history": [{"number": 1, "outcome": "Active"}]})
    assert "REVISION" in modeldeployment_view(md)


def test_promote_waits_for_the_search_to_end():
    best = trial(2, objective=0.97)
    running = experiment({"phase": "Running", "bestTrial": summary(best)})
    md = modeldeployment({"phase": "Pending"})
    assert stages(running, [best], md)[-1].state == "pending"
    assert stages(running, [best], modeldeployment({"phase": "Degraded"}))[-1].state == "failed"
