"""One evaluation protocol per Experiment: the split seed, and sampler defaults by budget."""

from __future__ import annotations

import json

import pytest
from operator_specs import spec

from thunderbolt.operator.builders import build_trial, trainer_config
from thunderbolt.operator.search import (
    Search,
    make_sampler,
    sampler_defaults,
    split_seed,
    startup_trials,
    trial_seed,
)
from thunderbolt.operator.trialstatus import derive
from thunderbolt.reports.service import report_steps
from thunderbolt.settings import OperatorSettings


def experiment(uid="uid-1"):
    return {"kind": "Experiment", "metadata": {"name": "e", "namespace": "ns", "uid": uid}}


def test_every_trial_gets_the_experiments_split_seed_and_its_own_model_seed():
    s = spec()
    trials = [build_trial(experiment(), s, n, {"learning_rate": 0.01}) for n in range(4)]
    assert {t["spec"]["splitSeed"] for t in trials} == {7}  # algorithm.seed
    assert [t["spec"]["seed"] for t in trials] == [trial_seed(s, n) for n in range(4)]
    assert len({t["spec"]["seed"] for t in trials}) == 4


def test_split_seed_prefers_validation_seed_then_algorithm_seed_then_the_uid():
    assert split_seed(spec(**{"trialTemplate.validation": {"seed": 42}}), "u") == 42
    assert split_seed(spec(), "u") == 7
    unseeded = spec(algorithm={"name": "tpe"})
    assert split_seed(unseeded, "uid-a") == split_seed(unseeded, "uid-a")
    assert split_seed(unseeded, "uid-a") != split_seed(unseeded, "uid-b")
    assert 0 <= split_seed(unseeded, "uid-a") < 2**31 - 1


def test_trainer_config_carries_split_seed_and_folds():
    s = spec(**{"trialTemplate.validation": {"folds": 5}})
    obj = build_trial(experiment(), s, 3, {"learning_rate": 0.01})
    obj["metadata"]["uid"] = "t"
    config = trainer_config(obj, OperatorSettings(), with_report=False)
    assert (config.splitSeed, config.folds, config.seed) == (7, 5, 10)
    holdout = trainer_config(build_trial(experiment(), spec(), 0, {}), OperatorSettings(), False)
    assert holdout.folds is None


def test_fold_steps_size_hyperband():
    assert spec(**{"trialTemplate.validation": {"folds": 4}}).trialTemplate.report_steps == 20
    assert spec().trialTemplate.report_steps == 5
    assert report_steps({"epochs": 5, "validation": {"folds": 4}}) == 20
    assert report_steps({"epochs": 5}) == 5


def test_split_identity_and_fold_std_are_copied_onto_the_trial_status():
    message = json.dumps(
        {
            "status": "Succeeded",
            "objective": 0.9,
            "objectiveStd": 0.02,
            "split": {"seed": 7, "validationHash": "0123456789abcdef", "folds": 5},
        }
    )
    trial = {
        "metadata": {"name": "e-001", "namespace": "ns"},
        "spec": {"number": 1, "objective": {"metric": "val_accuracy"}, "template": {}},
        "status": {},
    }
    pod = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}],
        },
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
    }
    job = {
        "metadata": {"name": "e-001"},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    status = derive(trial, job, [pod]).status
    assert status["split"] == {"seed": 7, "validationHash": "0123456789abcdef", "folds": 5}
    assert status["objectiveStd"] == 0.02 and status["objective"] == 0.9


@pytest.mark.parametrize(
    ("budget", "dims", "expected"),
    [(6, 6, 3), (10, 6, 3), (10, 2, 3), (20, 6, 6), (30, 6, 9), (40, 6, 10), (1000, 6, 10),
     (20, 20, 10), (4, 1, 2), (2, 6, 1), (1, 1, 1)],
)  # fmt: skip
def test_startup_trials_scale_with_the_budget_and_the_parameters(budget, dims, expected):
    assert startup_trials(budget, dims) == expected


def test_sampler_defaults_are_applied_and_settings_override_them():
    tpe = make_sampler(spec(maxTrials=20), seed=1)
    assert tpe._n_startup_trials == startup_trials(20, 4) == 6
    overridden = make_sampler(spec(maxTrials=20, algorithm={"name": "tpe", "seed": 1,
                                                           "settings": {"n_startup_trials": 7}}), 1)  # fmt: skip
    assert overridden._n_startup_trials == 7
    gp = sampler_defaults(spec(maxTrials=30, algorithm={"name": "gp"}))
    assert gp == {"n_startup_trials": 9}
    cma = sampler_defaults(spec(maxTrials=20, algorithm={"name": "cmaes"}))
    assert cma["popsize"] == 4  # a fifth of 20, floor 4: several generations fit
    assert "popsize" not in sampler_defaults(spec(maxTrials=500, algorithm={"name": "cmaes"}))
    assert sampler_defaults(spec(algorithm={"name": "random"})) == {}


def test_tpe_guides_after_its_startup_trials_and_is_reproducible():
    """Past the sized startup, TPE's proposals leave random search's sequence."""

    def run(name):
        s = spec(maxTrials=10, parallelTrials=1, algorithm={"name": name, "seed": 3})
        search = Search(s, name)
        records = []
        from thunderbolt.operator.search import TrialRecord

        for n in range(6):
            p = search.suggest(n)
            records.append(TrialRecord(n, p, "Succeeded", -abs(p["learning_rate"] - 0.01)))
            search.observe(records)
        return [r.parameters for r in records]

    tpe, rnd = run("tpe"), run("random")
    startup = startup_trials(10, 4)
    numeric = ("learning_rate", "hidden_dim")
    # the same seeded random start for numeric parameters; categoricals spread evenly
    assert [{k: p[k] for k in numeric} for p in tpe[:startup]] == [
        {k: p[k] for k in numeric} for p in rnd[:startup]
    ]
    assert sorted(p["activation"] for p in tpe[:startup]) == ["gelu", "relu", "silu"]
    assert sorted(p["spectral_norm"] for p in tpe[:startup]) in (
        [False, False, True],
        [False, True, True],
    )
    assert tpe[startup:] != rnd[startup:]
    assert run("tpe") == tpe


def test_tpe_startup_without_balancing_is_random_search():
    def run(name, settings):
        s = spec(
            maxTrials=20,
            parallelTrials=1,
            algorithm={"name": name, "seed": 4, "settings": settings},
        )
        search = Search(s, name)
        return [search.suggest(n) for n in range(6)]

    plain = run("tpe", {"balanced_startup": False})
    assert plain == run("random", {})
    balanced = run("tpe", {})
    for name, choices in (
        ("activation", ["gelu", "relu", "silu"]),
        ("spectral_norm", [False, True]),
    ):
        counts = [sum(p[name] == c for p in balanced) for c in choices]
        assert max(counts) - min(counts) == 0, (name, counts)  # 6 startup trials: 2+2+2, 3+3
