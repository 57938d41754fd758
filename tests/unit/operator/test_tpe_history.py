"""HistoryTPESampler proposes exactly what Optuna's TPESampler proposes, while reading
each finished trial once (tpe_history.py)."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from thunderbolt.operator.tpe_history import FinishedTrials, HistoryTPESampler

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "width": IntDistribution(16, 128, step=16),
    "act": CategoricalDistribution(["relu", "gelu", "silu"]),
    "sn": CategoricalDistribution([False, True]),
}


def _params(rng: random.Random) -> dict[str, Any]:
    return {
        "lr": 10 ** rng.uniform(-4, -1),
        "dropout": rng.uniform(0, 0.5),
        "width": rng.choice(range(16, 129, 16)),
        "act": rng.choice(["relu", "gelu", "silu"]),
        "sn": rng.choice([False, True]),
    }


def _history(rng: random.Random, size: int) -> list[optuna.trial.FrozenTrial]:
    """Complete trials with tied values, pruned ones (with, without and with NaN
    intermediate values), failed and running ones, some missing a parameter."""
    out = []
    for _ in range(size):
        params = _params(rng)
        if rng.random() < 0.1:
            params.pop("sn")
        dists = {k: SPACE[k] for k in params}
        kind = rng.random()
        if kind < 0.6:
            value = round(rng.random(), 1)  # few distinct values: many ties
            out.append(create_trial(params=params, distributions=dists, value=value))
        elif kind < 0.8:
            steps = {s: rng.random() for s in range(rng.randint(0, 4))}
            if steps and rng.random() < 0.2:
                steps[max(steps)] = math.nan
            out.append(
                create_trial(
                    state=TrialState.PRUNED,
                    params=params,
                    distributions=dists,
                    intermediate_values=steps,
                )
            )
        elif kind < 0.9:
            out.append(create_trial(state=TrialState.FAIL, params=params, distributions=dists))
        else:
            out.append(create_trial(state=TrialState.RUNNING, params=params, distributions=dists))
    return out


def _study(direction: str, history: list[optuna.trial.FrozenTrial]) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for trial in history:
        study.add_trial(trial)
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize("multivariate", [True, False])
@pytest.mark.parametrize("constant_liar", [True, False])
@pytest.mark.parametrize("size", [3, 40, 300])
def test_proposals_equal_optunas(
    direction: str, multivariate: bool, constant_liar: bool, size: int
) -> None:
    rng = random.Random(f"{direction}{multivariate}{constant_liar}{size}")
    history = _history(rng, size)
    ours, theirs = _study(direction, history), _study(direction, history)
    settings = {"multivariate": multivariate, "constant_liar": constant_liar}
    settings["n_startup_trials"] = 2
    previous: optuna.samplers.BaseSampler | None = None
    proposals = []
    running: list[tuple[optuna.Trial, optuna.Trial]] = []
    for step in range(12):
        seed = 1000 + step
        mine = HistoryTPESampler(seed=seed, **settings)
        if previous is not None:
            mine.take_history(previous)  # as the operator hands it on
        previous = ours.sampler = mine
        theirs.sampler = optuna.samplers.TPESampler(seed=seed, **settings)
        a, b = ours.ask(SPACE), theirs.ask(SPACE)
        assert a.params == b.params, f"step {step}"
        proposals.append(a.params)
        if step % 3 == 2:
            running.append((a, b))  # left running: constant liar sees it
            continue
        value = round(rng.random(), 1)
        ours.tell(a, value)
        theirs.tell(b, value)
        if step % 3 == 1 and len(running) > 1:  # one left running earlier finishes now
            a, b = running.pop(0)
            value = round(rng.random(), 1)
            ours.tell(a, value)
            theirs.tell(b, value)
    assert isinstance(previous, HistoryTPESampler) and previous.history is not None
    # the table read each finished trial once, however many suggestions read it
    finished = [t for t in ours.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(previous.history._params) == len(finished)
    assert len({tuple(sorted(map(str, p.values()))) for p in proposals}) > 1  # not constant


def test_the_split_matches_optunas_order_on_ties_and_pruned_trials() -> None:
    from optuna.samplers._tpe.sampler import _split_trials

    rng = random.Random(5)
    history = _history(rng, 200)
    for direction in ("maximize", "minimize"):
        study = _study(direction, history)
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        trials = study.get_trials(deepcopy=False, states=states)
        table = FinishedTrials(maximize=direction == "maximize")
        rows = table.rows(trials)
        for n_below in (0, 5, 25, 150, 400):
            below, above = table.split(rows, n_below)
            want_below, want_above = _split_trials(study, trials, n_below)
            assert [trials[i].number for i in below] == [t.number for t in want_below]
            assert [trials[i].number for i in above] == [t.number for t in want_above]


def test_several_objectives_use_optunas_own_code() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    twin = optuna.create_study(directions=["maximize", "minimize"])
    rng = random.Random(3)
    for _ in range(30):
        params = _params(rng)
        values = [rng.random(), rng.random()]
        for s in (study, twin):
            s.add_trial(create_trial(params=params, distributions=SPACE, values=values))
    study.sampler = HistoryTPESampler(seed=4, n_startup_trials=2)
    twin.sampler = optuna.samplers.TPESampler(seed=4, n_startup_trials=2)
    assert study.ask(SPACE).params == twin.ask(SPACE).params
    assert study.sampler.history is None  # the table is for one objective only
