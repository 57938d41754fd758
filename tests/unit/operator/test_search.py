import math

import pytest
from operator_specs import spec

from thunderbolt.operator.search import Search, StudyCache, search_space_size
from thunderbolt.optuna_bridge import TrialRecord

SAMPLERS = ["tpe", "random", "grid", "cmaes", "gp"]


def spec_for(sampler: str, **changes):
    if sampler == "grid":
        params = [
            {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
            {"name": "n", "type": "int", "low": 1, "high": 3},
            {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
        ]
    else:
        params = [
            {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
            {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            {"name": "n", "type": "int", "low": 1, "high": 8},
            {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
        ]
    algorithm = {"name": sampler, "seed": 11}
    if sampler == "tpe":
        algorithm["settings"] = {"n_startup_trials": 3}
    if sampler == "gp":
        algorithm["settings"] = {"n_startup_trials": 3}
    return spec(parameters=params, algorithm=algorithm, parallelTrials=1, **changes)


def objective(params) -> float:
    return -((params["x"] - 0.3) ** 2) + 0.1 * params["n"] + (0.2 if params["spectral_norm"] else 0)


def run_sequential(search: Search, start: int, stop: int, records: list[TrialRecord]):
    for number in range(start, stop):
        params = search.suggest(number)
        records.append(TrialRecord(number, params, "Succeeded", objective(params)))
        search.observe(records)
    return records


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_gives_the_same_parameter_sequence(sampler):
    steps = 4 if sampler in ("gp", "cmaes") else 6  # past n_startup_trials=3, but quick
    first = run_sequential(Search(spec_for(sampler), "a"), 0, steps, [])
    second = run_sequential(Search(spec_for(sampler), "b"), 0, steps, [])
    assert [r.parameters for r in first] == [r.parameters for r in second]
    assert all(math.isfinite(r.objective) for r in first)


def test_different_seeds_give_different_parameters():
    a = run_sequential(Search(spec_for("random"), "a"), 0, 3, [])
    other = spec_for("random", **{"algorithm.seed": 12})
    b = run_sequential(Search(other, "b"), 0, 3, [])
    assert [r.parameters for r in a] != [r.parameters for r in b]


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_a_rebuilt_study_proposes_what_the_old_one_would_have(sampler):
    uninterrupted = run_sequential(Search(spec_for(sampler), "s"), 0, 8, [])
    before_restart = uninterrupted[:4]
    rebuilt = Search(spec_for(sampler), "s")
    rebuilt.observe(before_restart)
    resumed = run_sequential(rebuilt, 4, 8, list(before_restart))
    assert [r.parameters for r in resumed] == [r.parameters for r in uninterrupted]


def test_rebuild_tells_each_finished_trial_exactly_once():
    records = [
        TrialRecord(0, {"x": 0.1, "lr": 0.01, "n": 2, "spectral_norm": True}, "Succeeded", 0.5),
        TrialRecord(1, {"x": 0.2, "lr": 0.01, "n": 3, "spectral_norm": False}, "Failed"),
        TrialRecord(
            2,
            {"x": 0.3, "lr": 0.02, "n": 1, "spectral_norm": False},
            "Pruned",
            None,
            ((0, 0.1), (1, 0.2)),
        ),
        TrialRecord(3, {"x": 0.4, "lr": 0.03, "n": 1, "spectral_norm": True}, "Running"),
    ]
    search = Search(spec_for("tpe"), "s")
    assert search.observe(records) == [0, 1, 2]
    assert search.observe(records) == []
    trials = search.study.get_trials(deepcopy=False)
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE", "FAIL", "PRUNED", "RUNNING"]
    pruned = next(t for t in trials if t.state.name == "PRUNED")
    assert pruned.intermediate_values == {0: 0.1, 1: 0.2}
    assert pruned.value == 0.2

    finished = TrialRecord(3, records[3].parameters, "Succeeded", 0.9)
    assert search.observe([*records[:3], finished]) == [3]
    assert len(search.study.get_trials(deepcopy=False)) == 4
    assert search.study.best_value == 0.9


def test_observing_is_incremental_not_a_rebuild():
    search = Search(spec_for("random"), "s")
    records = run_sequential(search, 0, 5, [])
    study = search.study
    assert search.observe(records) == []
    assert search.study is study
    assert len(study.get_trials(deepcopy=False)) == 5


def test_asking_twice_for_one_number_returns_the_same_parameters():
    search = Search(spec_for("tpe"), "s")
    assert search.suggest(0) == search.suggest(0)
    assert len(search.study.get_trials(deepcopy=False)) == 1


def test_a_trial_created_by_an_earlier_process_replaces_a_stale_ask():
    search = Search(spec_for("random"), "s")
    asked = search.suggest(0)
    real = {**asked, "x": 0.987654}
    assert search.observe([TrialRecord(0, real, "Succeeded", 1.0)]) == [0]
    complete = [t for t in search.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    assert [t.params["x"] for t in complete] == [0.987654]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_short_search(sampler):
    records = run_sequential(Search(spec_for(sampler), "s"), 0, 5, [])
    assert len(records) == 5


def test_grid_visits_every_point_once_even_across_a_rebuild():
    s = spec_for("grid")
    size = search_space_size(s)
    assert size == 5 * 3 * 2
    first = run_sequential(Search(s, "g"), 0, 10, [])
    rebuilt = Search(s, "g")
    rebuilt.observe(first)
    records = run_sequential(rebuilt, 10, size, list(first))
    seen = {tuple(sorted(r.parameters.items())) for r in records}
    assert len(seen) == size


def test_rdb_storage_does_not_tell_stored_trials_twice(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    s = spec_for("random", **{"algorithm.storage": url})
    first = Search(s, "stored")
    records = run_sequential(first, 0, 3, [])
    running = TrialRecord(3, first.suggest(3), "Running")
    again = Search(s, "stored")
    assert again.observe([*records, running]) == []
    assert again.suggest(3) == running.parameters
    assert len(again.study.get_trials()) == 4


def test_cache_keeps_the_study_across_reconciles_and_rebuilds_on_a_new_search_space():
    cache = StudyCache()
    search, built = cache.get("uid-1", spec_for("tpe"), "s")
    again, built_again = cache.get("uid-1", spec_for("tpe", maxTrials=20), "s")
    assert built and not built_again and again is search
    assert again.spec.maxTrials == 20
    changed, rebuilt = cache.get("uid-1", spec_for("random"), "s")
    assert rebuilt and changed is not search
