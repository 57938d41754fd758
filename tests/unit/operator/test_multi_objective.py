"""Several objectives: the spec's rules, the Pareto front, promotion's choice, and a
multi-objective study that survives an operator restart (rebuilt from Trials)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
import pytest
from operator_specs import raw, spec

from thunderbolt import objectives
from thunderbolt.api.experiment import ExperimentStatus, Objective, Select, parse_spec
from thunderbolt.operator import aggregate
from thunderbolt.operator.search import Search
from thunderbolt.optuna_bridge import TrialRecord

GOALS = [
    {"metric": "val_accuracy", "direction": "maximize"},
    {"metric": "latency_p50_ms", "direction": "minimize"},
]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def multi(**changes: Any):
    base = raw(**changes)
    base.pop("objective", None)
    base.setdefault("objectives", GOALS)
    return parse_spec(base)


def trial(number: int, accuracy: float | None, latency: float | None, phase="Succeeded",
          params: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    metrics = {"val_accuracy": accuracy, "val_loss": 0.3}
    if latency is not None:
        metrics["latency_p50_ms"] = latency
    return {
        "metadata": {"name": f"mo-{number:03d}"},
        "spec": {
            "number": number,
            "parameters": params or {"learning_rate": 0.01},
            "objective": GOALS[0],
        },
        "status": {"phase": phase, "objective": accuracy, "metrics": metrics},
    }


# --- the spec ---------------------------------------------------------------------------


def test_objective_and_objectives_are_mutually_exclusive():
    assert multi().goals[1].metric == "latency_p50_ms" and multi().multi_objective
    assert spec().goals == [spec().objective] and not spec().multi_objective
    with pytest.raises(pydantic.ValidationError, match="not both"):
        parse_spec(raw(objectives=GOALS))
    without = raw()
    without.pop("objective")
    with pytest.raises(pydantic.ValidationError, match="set 'objective'"):
        parse_spec(without)
    with pytest.raises(pydantic.ValidationError, match="at least 2"):
        multi(objectives=GOALS[:1])
    with pytest.raises(pydantic.ValidationError, match="each metric once"):
        multi(objectives=[GOALS[0], GOALS[0]])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pruner": {"name": "median"}}, "pruner median cannot be used with several"),
        ({"algorithm": {"name": "cmaes"}}, "cmaes optimizes one objective"),
        ({"objectives": [{**GOALS[0], "goal": 0.9}, GOALS[1]]}, "'goal' is only supported"),
        ({"promote": {"modelDeployment": "md"}}, "needs promote.select"),
        (
            {"promote": {"modelDeployment": "md", "select": {"objective": "val_loss"}}},
            "names \\['val_loss'\\], which are not objectives",
        ),
        (
            {"promote": {"modelDeployment": "md", "select": {"weights": {"x": 1.0}}}},
            "which are not objectives",
        ),
    ],
)
def test_what_several_objectives_cannot_do_is_refused_clearly(changes, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        multi(**changes)


def test_select_rules_are_checked():
    with pytest.raises(pydantic.ValidationError, match="not both"):
        Select.model_validate({"objective": "a", "weights": {"a": 1.0}})
    with pytest.raises(pydantic.ValidationError, match="needs 'max' or 'min'"):
        Select.model_validate({"constraints": [{"metric": "a"}]})
    select = {"objective": "val_accuracy", "constraints": [{"metric": "latency_p50_ms", "max": 2}]}
    assert multi(promote={"modelDeployment": "md", "select": select}).promote.select


# --- front and choice -------------------------------------------------------------------


def test_pareto_front_keeps_exactly_the_non_dominated_succeeded_trials():
    goals = multi().goals
    trials = [
        trial(0, 0.90, 1.0),
        trial(1, 0.95, 3.0),
        trial(2, 0.85, 0.5),
        trial(3, 0.88, 2.0),  # dominated by 0 (less accurate and slower)
        trial(4, 0.99, 0.1, phase="Failed"),  # not succeeded: ignored
        trial(5, 0.99, None),  # no latency: cannot be ranked
        trial(6, 0.90, 1.0),  # equal to 0: neither dominates, both kept
    ]
    front = objectives.pareto_front(trials, goals)
    assert [t["spec"]["number"] for t, _ in front] == [1, 0, 6, 2]
    assert objectives.dominates([0.9, 1.0], [0.88, 2.0], goals)
    assert not objectives.dominates([0.9, 1.0], [0.9, 1.0], goals)
    assert not objectives.dominates([0.95, 3.0], [0.9, 1.0], goals)


def test_choose_by_objective_weights_and_constraint():
    goals = multi().goals
    trials = [trial(0, 0.90, 1.0), trial(1, 0.95, 3.0), trial(2, 0.85, 0.5)]
    number = lambda chosen: chosen["spec"]["number"]  # noqa: E731
    assert number(objectives.choose(trials, goals, None)) == 1
    assert number(objectives.choose(trials, goals, Select(objective="latency_p50_ms"))) == 2
    fast = Select(constraints=[{"metric": "latency_p50_ms", "max": 2.0}])
    assert number(objectives.choose(trials, goals, fast)) == 0  # then best accuracy
    weighted = Select(weights={"val_accuracy": 1.0, "latency_p50_ms": -0.1})
    assert number(objectives.choose(trials, goals, weighted)) == 0  # 0.80 vs 0.65, 0.80
    impossible = Select(constraints=[{"metric": "latency_p50_ms", "max": 0.1}])
    assert objectives.choose(trials, goals, impossible) is None
    # a constraint may name any reported metric, also with one objective
    single = [Objective(metric="val_accuracy")]
    loss = Select(constraints=[{"metric": "val_loss", "min": 0.5}])
    assert objectives.choose(trials, single, loss) is None


def test_status_lists_the_front_and_the_trial_select_picks():
    select = {"constraints": [{"metric": "latency_p50_ms", "max": 2.0}]}
    s = multi(promote={"modelDeployment": "md", "select": select})
    trials = [trial(0, 0.90, 1.0), trial(1, 0.95, 3.0), trial(2, 0.85, 0.5), trial(3, 0.8, 2.5)]
    experiment = {"metadata": {"name": "mo", "generation": 1}, "spec": {}}
    status = aggregate.plan(experiment, s, trials, NOW).status
    assert status["paretoFrontSize"] == 3
    assert [t["name"] for t in status["paretoFront"]] == ["mo-001", "mo-000", "mo-002"]
    assert status["paretoFront"][0]["values"] == {"val_accuracy": 0.95, "latency_p50_ms": 3.0}
    assert status["bestTrial"]["name"] == "mo-000"  # the most accurate under 2 ms
    assert status["leaderboard"][0]["name"] == "mo-001"  # ranked on the first objective
    ExperimentStatus.model_validate(status)  # what the operator writes fits the CRD model
    one = aggregate.plan(experiment, spec(), trials, NOW).status
    assert one["paretoFront"] is None and one["bestTrial"]["name"] == "mo-001"


def test_the_front_in_status_is_bounded():
    trials = [trial(i, 0.5 + i / 100, 0.1 + i / 10) for i in range(30)]  # all non-dominated
    status = aggregate.plan({"metadata": {}}, multi(maxTrials=30), trials, NOW).status
    assert status["paretoFrontSize"] == 30 and len(status["paretoFront"]) == 20
    ExperimentStatus.model_validate(status)


# --- the study, and its rebuild after a restart -----------------------------------------


def score(params: dict[str, Any]) -> tuple[float, float]:
    """A trade-off: a bigger network is more accurate and slower."""
    accuracy = 0.7 + 0.002 * params["hidden_dim"] - abs(params["learning_rate"] - 0.01)
    return accuracy, 0.05 * params["hidden_dim"] + (0.5 if params["spectral_norm"] else 0.0)


def run(search: Search, goals, start: int, stop: int, trials: list[dict[str, Any]]):
    for number in range(start, stop):
        params = search.suggest(number)
        accuracy, latency = score(params)
        trials.append(trial(number, accuracy, latency, params=params))
        search.observe(TrialRecord.from_trial(t, goals) for t in trials)
    return trials


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "random"])
def test_a_rebuilt_multi_objective_study_proposes_what_the_old_one_would_have(sampler):
    s = multi(algorithm={"name": sampler, "seed": 3}, maxTrials=12, parallelTrials=1)
    uninterrupted = run(Search(s, "mo"), s.goals, 0, 12, [])
    # the operator restarts after 7 trials: a fresh Search is rebuilt from the Trials
    rebuilt = Search(s, "mo")
    assert rebuilt.observe(TrialRecord.from_trial(t, s.goals) for t in uninterrupted[:7]) == list(
        range(7)
    )
    assert rebuilt.study.directions[1].name == "MINIMIZE"
    assert all(len(t.values) == 2 for t in rebuilt.study.get_trials(deepcopy=False))
    resumed = run(rebuilt, s.goals, 7, 12, list(uninterrupted[:7]))
    assert [t["spec"]["parameters"] for t in resumed] == [
        t["spec"]["parameters"] for t in uninterrupted
    ]
    # it searched (NSGA-II's crossover may repeat a parent's parameters)
    assert len({str(t["spec"]["parameters"]) for t in resumed}) >= 8
    if sampler == "nsga2":  # generations follow trial numbers: population 12 // 4 = 3
        key = "_NSGAIISampler:generation"
        generations = [t.system_attrs[key] for t in rebuilt.study.get_trials(deepcopy=False)]
        assert generations == [n // 4 for n in range(12)]


def test_a_success_missing_an_objective_counts_as_failed():
    s = multi()
    params = {"learning_rate": 0.01, "hidden_dim": 32, "activation": "relu", "spectral_norm": False}
    records = [
        TrialRecord.from_trial(trial(0, 0.9, None, params=params), s.goals),
        TrialRecord.from_trial(trial(1, 0.9, 1.5, params=params), s.goals),
    ]
    assert records[0].values is None and records[0].state.name == "FAIL"
    assert records[1].values == (0.9, 1.5) and records[1].state.name == "COMPLETE"
    search = Search(s, "mo")
    assert search.observe([TrialRecord(n, params, "Running") for n in (0, 1)]) == []
    assert search.observe(records) == [0, 1]
    states = sorted(t.state.name for t in search.study.get_trials(deepcopy=False))
    assert states == ["COMPLETE", "FAIL"]
    assert [t.values for t in search.study.best_trials] == [[0.9, 1.5]]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_top_few_are_the_head_of_the_full_ranking_ties_included(direction):
    """plan() takes only the leaderboard's top with a heap; it must equal the sort's head
    (ties broken by the lower number), with failures and missing values left out."""
    import random

    rng = random.Random(7)
    goals = [Objective(metric="val_accuracy", direction=direction)]
    trials = [
        trial(n, rng.choice([0.5, 0.7, 0.9, None, float("nan")]) if n % 7 else 0.9, None,
              phase="Failed" if n % 11 == 0 else "Succeeded")
        for n in range(300)
    ]  # fmt: skip
    rng.shuffle(trials)
    full = objectives.scored(trials, goals)
    for top in (1, 5, 50):
        head = objectives.scored(trials, goals, top)
        assert [t["spec"]["number"] for t, _ in head] == [
            t["spec"]["number"] for t, _ in full[:top]
        ]
    assert len(full) > 50 and all(v[0] == v[0] for _, v in full)  # no NaN ranked
