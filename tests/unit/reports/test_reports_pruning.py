"""Pruning decisions rebuilt from Trial records match what a live Optuna study decides."""

from __future__ import annotations

import optuna
import pytest

from thunderbolt.api.experiment import Pruner
from thunderbolt.reports.pruning import PruneRecord, record_from_trial, should_prune

CURVE = {s: 0.5 + 0.04 * s for s in range(1, 11)}  # a healthy learning curve (maximize)


def completed(number: int, scale: float = 1.0, epochs: int = 10) -> PruneRecord:
    values = {s: CURVE[s] * scale for s in range(1, epochs + 1)}
    return PruneRecord(number, "complete", values[epochs], values)


def running(number: int, values: dict[int, float]) -> PruneRecord:
    return PruneRecord(number, "running", None, values)


def decide(config: Pruner, trials, trial, direction="maximize", epochs=10) -> bool:
    return should_prune(
        config,
        direction=direction,
        study_name="ns/exp/uid",
        max_resource=epochs,
        trials=trials,
        trial=trial,
    )


MEDIAN = Pruner(name="median", startupTrials=3, warmupSteps=2)


def test_median_prunes_a_clearly_worse_trial_after_startup_and_warmup():
    done = [completed(i) for i in range(3)]
    bad = {s: 0.1 for s in range(1, 4)}
    assert decide(MEDIAN, done, running(3, bad))
    good = {s: CURVE[s] + 0.01 for s in range(1, 4)}
    assert not decide(MEDIAN, done, running(3, good))


def test_median_waits_for_warmup_steps():
    done = [completed(i) for i in range(3)]
    # Optuna's n_warmup_steps=2: steps below 2 are warm-up
    assert not decide(MEDIAN, done, running(3, {1: 0.0}))
    assert decide(MEDIAN, done, running(3, {1: 0.0, 2: 0.0}))


def test_median_waits_for_startup_trials():
    two_done = [completed(0), completed(1), running(2, {1: 0.9})]
    assert not decide(MEDIAN, two_done, running(3, {s: 0.0 for s in range(1, 6)}))


def test_pruned_and_failed_trials_do_not_count_as_startup_trials():
    others = [
        completed(0),
        completed(1),
        PruneRecord(2, "pruned", None, {1: 0.9, 2: 0.9, 3: 0.9}),
        PruneRecord(4, "failed", None, {}),
    ]
    assert not decide(MEDIAN, others, running(3, {s: 0.0 for s in range(1, 6)}))


def test_minimize_direction_prunes_the_larger_values():
    losses = {s: 1.0 / s for s in range(1, 11)}
    done = [PruneRecord(i, "complete", losses[10], losses) for i in range(3)]
    assert decide(MEDIAN, done, running(3, {1: 9.0, 2: 9.0, 3: 9.0}), direction="minimize")
    assert not decide(MEDIAN, done, running(3, {1: 0.5, 2: 0.2, 3: 0.1}), direction="minimize")
    # the same low values are clearly bad when maximizing
    assert decide(MEDIAN, done, running(3, {1: 0.01, 2: 0.01, 3: 0.01}), direction="maximize")


def test_none_never_prunes():
    done = [completed(i) for i in range(5)]
    assert not decide(Pruner(name="none"), done, running(5, {s: -1e9 for s in range(1, 10)}))


def test_trial_without_values_is_never_pruned():
    assert not decide(MEDIAN, [completed(i) for i in range(3)], running(3, {}))


def test_records_from_trial_objects():
    obj = {
        "spec": {"number": 7},
        "status": {
            "phase": "Succeeded",
            "objective": 0.9,
            "intermediate": [{"step": 1, "value": 0.5}, {"step": 2, "value": 1}],
        },
    }
    assert record_from_trial(obj) == PruneRecord(7, "complete", 0.9, {1: 0.5, 2: 1.0})
    obj["status"].pop("objective")
    assert record_from_trial(obj).state == "failed"  # a success without objective ranks nothing
    assert record_from_trial({"spec": {"number": 1}}).state == "running"  # Pending
    assert (
        record_from_trial({"spec": {"number": 1}, "status": {"phase": "Pruned"}}).state == "pruned"
    )


def _live_run(pruner: optuna.pruners.BasePruner, curves, direction, study_name):
    """A real Optuna study, sequential: the reference our rebuilt decisions must match."""
    study = optuna.create_study(study_name=study_name, direction=direction, pruner=pruner)
    decisions: list[list[bool]] = []
    for curve in curves:
        trial = study.ask()
        steps: list[bool] = []
        pruned = False
        for step, value in curve.items():
            trial.report(value, step)
            steps.append(trial.should_prune())
            if steps[-1]:
                pruned = True
                break
        decisions.append(steps)
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, list(curve.values())[-1])
    return decisions


def _rebuilt_run(config: Pruner, curves, direction, study_name, epochs):
    """The same sequence, but every decision made from records only (as the endpoint does)."""
    finished: list[PruneRecord] = []
    decisions: list[list[bool]] = []
    for number, curve in enumerate(curves):
        seen: dict[int, float] = {}
        steps: list[bool] = []
        for step, value in curve.items():
            seen[step] = value
            steps.append(
                should_prune(
                    config,
                    direction=direction,
                    study_name=study_name,
                    max_resource=epochs,
                    trials=finished,
                    trial=PruneRecord(number, "running", None, dict(seen)),
                )
            )
            if steps[-1]:
                break
        decisions.append(steps)
        state = "pruned" if steps and steps[-1] else "complete"
        value = list(curve.values())[-1] if state == "complete" else None
        finished.append(PruneRecord(number, state, value, dict(seen)))
    return decisions


def _curves(n: int, epochs: int, seed: int):
    import random

    rng = random.Random(seed)
    curves = []
    for _ in range(n):
        quality = rng.uniform(0.2, 1.0)
        curves.append({s: quality * (1 - 0.5 ** s) + rng.uniform(-0.02, 0.02) for s in range(1, epochs + 1)})  # fmt: skip
    return curves


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_hyperband_rebuilt_from_records_matches_a_live_study(direction):
    epochs = 27
    config = Pruner(name="hyperband", minResource=1, reductionFactor=3)
    curves = _curves(24, epochs, seed=3)
    live = _live_run(
        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3),
        curves,
        direction,
        "ns/exp/uid",
    )
    rebuilt = _rebuilt_run(config, curves, direction, "ns/exp/uid", epochs)
    assert rebuilt == live
    assert any(d and d[-1] for d in live), "the scenario should prune something"


def test_median_rebuilt_from_records_matches_a_live_study():
    epochs = 12
    curves = _curves(15, epochs, seed=11)
    live = _live_run(
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
        curves,
        "maximize",
        "ns/exp/uid",
    )
    rebuilt = _rebuilt_run(MEDIAN, curves, "maximize", "ns/exp/uid", epochs)
    assert rebuilt == live
    assert any(d and d[-1] for d in live)


def test_hyperband_prunes_a_clearly_worse_trial():
    config = Pruner(name="hyperband", minResource=1, reductionFactor=3)
    done = [completed(i) for i in range(12)]
    worse = [
        decide(config, done, running(n, {s: 0.01 for s in range(1, 10)})) for n in range(12, 24)
    ]
    better = [
        decide(config, done, running(n, {s: 2.0 for s in range(1, 10)})) for n in range(12, 24)
    ]
    assert any(worse)
    assert not any(better)
