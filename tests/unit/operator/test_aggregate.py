from datetime import UTC, datetime

from operator_specs import raw, spec

from thunderbolt.operator.aggregate import decide, invalid_status, plan
from thunderbolt.operator.validation import SpecError, validate_experiment

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
EXPERIMENT = {"metadata": {"name": "e", "namespace": "ns", "uid": "u", "generation": 3}}


def t(number, phase="Succeeded", objective=None, duration=60.0, **params):
    status = {"phase": phase}
    if objective is not None:
        status["objective"] = objective
    if phase in ("Succeeded", "Failed", "Pruned"):
        status["durationSeconds"] = duration
        status["completionTime"] = "2026-01-01T11:59:00Z"
    return {
        "metadata": {"name": f"e-{number:03d}"},
        "spec": {"number": number, "parameters": params or {"x": number}},
        "status": status,
    }


def test_a_new_experiment_starts_parallel_trials_numbered_from_zero():
    phase, _, _, create = decide(spec(maxTrials=6, parallelTrials=2), [])
    assert (phase, create) == ("Running", [0, 1])


def test_free_slots_are_filled_with_the_next_numbers():
    trials = [t(0, objective=0.5), t(1, "Running"), t(2, "Pending")]
    assert decide(spec(maxTrials=6, parallelTrials=3), trials)[3] == [3]


def test_never_more_trials_than_max_trials():
    trials = [t(i, objective=0.5) for i in range(4)] + [t(4, "Running")]
    assert decide(spec(maxTrials=5, parallelTrials=3), trials)[3] == []


def test_next_number_follows_the_largest_even_with_gaps():
    trials = [t(0, objective=0.1), t(2, objective=0.2)]
    assert decide(spec(maxTrials=6, parallelTrials=1), trials)[3] == [3]


def test_all_trials_finished_means_succeeded_with_max_trials_reached():
    trials = [t(i, objective=0.1 * i) for i in range(6)]
    phase, reason, _, create = decide(spec(maxTrials=6), trials)
    assert (phase, reason, create) == ("Succeeded", "MaxTrialsReached", [])


def test_goal_reached_ends_the_search_early():
    s = spec(objective={"metric": "val_accuracy", "direction": "maximize", "goal": 0.9})
    phase, reason, message, create = decide(s, [t(0, objective=0.5), t(1, objective=0.93)])
    assert (phase, reason, create) == ("Succeeded", "GoalReached", [])
    assert "e-001" in message


def test_goal_for_minimize_means_at_or_below():
    s = spec(objective={"metric": "val_loss", "direction": "minimize", "goal": 0.2})
    assert decide(s, [t(0, objective=0.3)])[0] == "Running"
    assert decide(s, [t(0, objective=0.2)])[1] == "GoalReached"


def test_more_failures_than_the_budget_fails_the_experiment():
    trials = [t(0, "Failed"), t(1, "Failed"), t(2, "Failed"), t(3, objective=0.5)]
    phase, reason, message, create = decide(spec(maxFailedTrials=2), trials)
    assert (phase, reason, create) == ("Failed", "FailureBudgetExceeded", [])
    assert "3 trials failed" in message


def test_failures_within_the_budget_keep_searching():
    trials = [t(0, "Failed"), t(1, "Failed")]
    assert decide(spec(maxFailedTrials=2, maxTrials=6, parallelTrials=2), trials)[3] == [2, 3]


def test_all_finished_without_a_success_is_a_failure():
    trials = [t(0, "Pruned"), t(1, "Failed")]
    assert decide(spec(maxTrials=2, maxFailedTrials=5), trials)[1] == "NoSuccessfulTrials"


def test_raising_max_trials_continues_a_finished_search():
    trials = [t(i, objective=0.1) for i in range(6)]
    assert decide(spec(maxTrials=6), trials)[0] == "Succeeded"
    phase, _, _, create = decide(spec(maxTrials=8, parallelTrials=2), trials)
    assert (phase, create) == ("Running", [6, 7])


def test_grid_search_ends_when_the_grid_is_exhausted():
    trials = [t(i, objective=0.1) for i in range(4)]
    phase, reason, _, _ = decide(spec(maxTrials=10), trials, grid_size=4)
    assert (phase, reason) == ("Succeeded", "GridExhausted")


def test_status_counts_best_and_leaderboard():
    trials = [
        t(0, objective=0.5),
        t(1, objective=0.9),
        t(2, "Failed"),
        t(3, "Pruned", objective=0.2),
        t(4, objective=0.7),
        t(5, objective=0.6),
        t(6, objective=0.8),
        t(7, objective=0.1),
        t(8, "Running"),
    ]
    p = plan(EXPERIMENT, spec(maxTrials=10, parallelTrials=2, maxFailedTrials=3), trials, NOW)
    s = p.status
    assert p.create == [9]
    assert s["trials"] == {
        "total": 10,
        "pending": 1,
        "running": 1,
        "succeeded": 6,
        "failed": 1,
        "pruned": 1,
    }
    assert s["progress"] == "8/10"
    assert s["bestTrial"]["name"] == "e-001" and s["bestTrial"]["objective"] == 0.9
    assert [e["number"] for e in s["leaderboard"]] == [1, 6, 4, 5, 0]
    assert s["observedGeneration"] == 3
    assert s["phase"] == "Running" and s["completionTime"] is None


def test_minimize_ranks_lowest_first():
    s = spec(objective={"metric": "val_loss", "direction": "minimize"})
    p = plan(EXPERIMENT, s, [t(0, objective=0.5), t(1, objective=0.2)], NOW)
    assert p.status["bestTrial"]["number"] == 1


def test_estimated_completion_uses_mean_duration_and_remaining_waves():
    trials = [t(0, objective=0.1, duration=60), t(1, objective=0.2, duration=120)]
    p = plan(EXPERIMENT, spec(maxTrials=6, parallelTrials=2), trials, NOW)
    # 4 left, 2 at a time -> 2 waves of 90 s after the last completion (11:59:00)
    assert p.status["estimatedCompletionTime"] == "2026-01-01T12:02:00Z"


def test_conditions_are_readable_by_kubectl_wait():
    done = plan(EXPERIMENT, spec(maxTrials=1), [t(0, objective=0.5)], NOW).status
    conditions = {c["type"]: c for c in done["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert conditions["Complete"]["status"] == "True"
    assert conditions["Running"]["status"] == "False"
    assert conditions["Failed"]["status"] == "False"
    assert conditions["Succeeded"]["reason"] == "MaxTrialsReached"
    assert conditions["Succeeded"]["observedGeneration"] == 3
    assert done["completionTime"] == "2026-01-01T12:00:00Z"
    running = plan(EXPERIMENT, spec(), [], NOW).status
    assert {c["type"]: c["status"] for c in running["conditions"]}["Running"] == "True"


def test_completion_time_is_kept_once_set():
    exp = {**EXPERIMENT, "status": {"phase": "Succeeded", "completionTime": "2025-12-31T00:00:00Z"}}
    s = plan(exp, spec(maxTrials=1), [t(0, objective=0.5)], NOW).status
    assert s["completionTime"] == "2025-12-31T00:00:00Z"


def test_invalid_spec_names_the_problem():
    bad = raw(parameters=[{"name": "lr", "type": "float", "low": 0.5, "high": 0.1}])
    try:
        validate_experiment("e", bad)
    except SpecError as exc:
        message = str(exc)
    else:
        raise AssertionError("low > high must be rejected")
    assert "spec.parameters[0]" in message and "greater than high" in message
    s = invalid_status(EXPERIMENT, message, NOW)
    assert s["phase"] == "Failed" and s["reason"] == "InvalidSpec"
    failed = {c["type"]: c for c in s["conditions"]}["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    assert "greater than high" in failed["message"]


def test_names_too_long_for_jobs_are_rejected():
    try:
        validate_experiment("x" * 60, raw())
    except SpecError as exc:
        assert "metadata.name" in str(exc)
    else:
        raise AssertionError("a 60-character name cannot fit trial job names")


def test_unknown_sampler_settings_are_a_spec_error():
    try:
        validate_experiment("e", raw(algorithm={"name": "tpe", "settings": {"bogus": 1}}))
    except SpecError as exc:
        assert "spec.algorithm" in str(exc)
    else:
        raise AssertionError("unknown sampler settings must be rejected")
