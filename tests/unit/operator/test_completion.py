"""What an Experiment that ends does to its Trials still running (spec.onComplete)."""

from datetime import UTC, datetime

from operator_specs import spec

from thunderbolt.operator.aggregate import decide, plan
from thunderbolt.operator.completion import REASON, as_stopped, stop_message, to_stop
from thunderbolt.operator.trialstatus import stopped_with_experiment

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
GOAL = {"metric": "val_accuracy", "direction": "maximize", "goal": 0.9}


def t(number, phase="Succeeded", objective=None):
    status = {"phase": phase}
    if objective is not None:
        status["objective"] = objective
    return {
        "metadata": {"name": f"e-{number:03d}"},
        "spec": {"number": number, "parameters": {"x": number}},
        "status": status,
    }


TRIALS = [t(0, objective=0.95), t(1, "Running"), t(2, "Pending"), t(3, "Failed")]


def test_by_default_trials_still_running_are_stopped_when_the_goal_is_reached():
    s = spec(objective=GOAL, maxTrials=10, parallelTrials=3)
    phase, reason, _, _ = decide(s, TRIALS)
    assert (phase, reason) == ("Succeeded", "GoalReached")
    assert s.onComplete == "StopRunning"
    assert to_stop(s, True, TRIALS) == ["e-001", "e-002"]


def test_let_finish_stops_nothing():
    s = spec(objective=GOAL, maxTrials=10, parallelTrials=3, onComplete="LetFinish")
    assert to_stop(s, True, TRIALS) == []


def test_nothing_is_stopped_while_the_experiment_runs():
    s = spec(maxTrials=10, parallelTrials=3)
    assert decide(s, TRIALS)[0] == "Running"
    assert to_stop(s, False, TRIALS) == []


def test_a_spent_failure_budget_stops_the_rest_too():
    s = spec(maxTrials=10, parallelTrials=3, maxFailedTrials=0)
    trials = [t(0, "Failed"), t(1, "Running")]
    assert decide(s, trials)[1] == "FailureBudgetExceeded"
    assert to_stop(s, True, trials) == ["e-001"]


def test_a_stopped_trial_is_pruned_with_a_reason_and_never_counts_as_failed():
    trial = {**t(1, "Running"), "status": {"phase": "Running", "startTime": "2026-01-01T11:00:00Z"}}
    trial["metadata"]["creationTimestamp"] = "2026-01-01T10:59:00Z"
    status = stopped_with_experiment(trial, stop_message("GoalReached"), NOW)
    assert (status["phase"], status["reason"]) == ("Pruned", REASON)
    assert "GoalReached" in status["message"] and "StopRunning" in status["message"]
    assert status["completionTime"] == "2026-01-01T12:00:00Z"
    assert status["durationSeconds"] == 3600.0
    pruned = [c for c in status["conditions"] if c["type"] == "Pruned"][0]
    assert (pruned["status"], pruned["reason"]) == ("True", REASON)
    # the Experiment's status written right after counts it as pruned, still Succeeded
    s = spec(objective=GOAL, maxTrials=10, parallelTrials=3, maxFailedTrials=0)
    after = [TRIALS[0], as_stopped(TRIALS[1]), as_stopped(TRIALS[2])]
    result = plan({"metadata": {"name": "e", "generation": 1}}, s, after, NOW)
    assert (result.phase, result.reason, result.create) == ("Succeeded", "GoalReached", [])
    assert result.status["trials"]["pruned"] == 2
    assert result.status["trials"]["running"] == result.status["trials"]["pending"] == 0
