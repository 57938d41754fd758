"""How StdOut and File Trials finish: from the last report, NoMetrics when there is none,
never before the StdOut collector has read the log to its end."""

from __future__ import annotations

from datetime import UTC, datetime

from thunderbolt.operator.trialstatus import derive, pruned_by_collector, status_patch

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T0 = "2026-01-01T11:58:00Z"


def trial(collector, status=None):
    return {
        "metadata": {"name": "e-001", "namespace": "ns", "creationTimestamp": T0},
        "spec": {
            "number": 1,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "template": {"metricsCollector": collector},
        },
        "status": status or {"phase": "Running", "startTime": T0},
    }


def complete_job():
    return {
        "metadata": {"name": "e-001"},
        "status": {
            "startTime": T0,
            "completionTime": "2026-01-01T11:59:00Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }


def done_pod(message="", name="trainer"):
    return {
        "metadata": {"name": "e-001-x", "creationTimestamp": T0},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "aaa-sidecar", "state": {"terminated": {"exitCode": 0}}},
                {
                    "name": name,
                    "image": "mine:1",
                    "state": {"terminated": {"exitCode": 0, "message": message}},
                },
            ],
        },
    }


STDOUT = {"kind": "StdOut"}
FILE = {"kind": "File", "path": "/workspace/metrics.txt"}


def test_stdout_waits_for_the_collector_then_finishes_from_the_last_report():
    running = trial(STDOUT, {"phase": "Running", "intermediate": [{"step": 1, "value": 0.4}]})
    waiting = derive(running, complete_job(), [done_pod()], NOW)
    assert waiting.phase == "Running" and waiting.status["reason"] == "CollectingMetrics"
    assert not waiting.finished and "completionTime" not in waiting.status
    collected = {
        "phase": "Running",
        "intermediate": [{"step": 1, "value": 0.4}, {"step": 2, "value": 0.7}],
        "collector": {
            "kind": "StdOut",
            "state": "Done",
            "lines": 9,
            "reports": 2,
            "lastMetrics": {"val_accuracy": 0.7, "loss": 0.3},
        },
    }
    done = derive(trial(STDOUT, collected), complete_job(), [done_pod()], NOW)
    assert done.phase == "Succeeded"
    assert done.status["objective"] == 0.7
    assert done.status["metrics"] == {"val_accuracy": 0.7, "loss": 0.3}
    assert done.status["image"] == "mine:1"  # the trainer's, not the sidecar's


def test_stdout_with_nothing_parseable_fails_with_no_metrics():
    status = {
        "phase": "Running",
        "collector": {
            "kind": "StdOut",
            "state": "Done",
            "lines": 3,
            "reports": 0,
            "skipped": {"nonFinite": 2},
        },
    }
    out = derive(trial(STDOUT, status), complete_job(), [done_pod()], NOW)
    assert out.phase == "Failed" and out.status["reason"] == "NoMetrics"
    assert "'val_accuracy'" in out.status["message"] and "2 nonFinite" in out.status["message"]


def test_a_result_in_the_termination_log_wins_once_the_log_is_read():
    message = '{"status": "Succeeded", "objective": 0.99}'
    out = derive(trial(STDOUT), complete_job(), [done_pod(message)], NOW)
    assert out.phase == "Running" and out.status["reason"] == "CollectingMetrics"
    read = {"phase": "Running", "collector": {"kind": "StdOut", "state": "Done", "lines": 0}}
    out = derive(trial(STDOUT, read), complete_job(), [done_pod(message)], NOW)
    assert out.phase == "Succeeded" and out.status["objective"] == 0.99


def test_file_finishes_from_the_files_tail_and_keeps_its_points():
    message = "epoch=1 val_accuracy=0.5\nepoch=2 val_accuracy=0.8 loss=0.1\nepoch=3 val_accuracy=x"
    t = trial(FILE)
    out = derive(t, complete_job(), [done_pod(message)], NOW)
    assert out.phase == "Succeeded"
    assert out.status["objective"] == 0.8
    assert out.status["metrics"] == {"val_accuracy": 0.8, "loss": 0.1}
    assert out.status["intermediate"] == [{"step": 1, "value": 0.5}, {"step": 2, "value": 0.8}]
    assert out.status["collector"]["skipped"] == {"malformed": 1}
    patch = status_patch(t["status"], out.status)
    assert patch["intermediate"] == out.status["intermediate"]


def test_file_without_metrics_fails_with_no_metrics():
    out = derive(trial(FILE), complete_job(), [done_pod("just words\n")], NOW)
    assert out.phase == "Failed" and out.status["reason"] == "NoMetrics"
    assert "/workspace/metrics.txt" in out.status["message"]


def test_a_pruned_stdout_trial_gets_a_complete_status():
    t = trial(STDOUT, {"phase": "Running", "startTime": T0})
    status = pruned_by_collector(t, 4, 0.25, NOW)
    assert status["phase"] == "Pruned" and status["objective"] == 0.25
    assert status["durationSeconds"] == 120.0
    assert {c["type"]: c["status"] for c in status["conditions"]}["Pruned"] == "True"
