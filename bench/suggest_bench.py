"""Cost of a suggestion in the operator's search code vs a bare Optuna ask/tell loop.

For studies with 10, 100 and 1000 (``--sizes``) finished trials, each step does what
happens when a Trial finishes:

  * operator: ``Search.observe(the records not told yet)`` (the newly finished one), then
    ``Search.suggest(next number)`` (fresh seeded sampler, ``study.ask``), as
    ``thunderbolt.operator.experiments.reconcile`` calls them;
  * bare Optuna: ``study.tell(previous, value)`` then ``study.ask(distributions)`` on a
    study with Optuna's own sampler class (for TPE: ``optuna.samplers.TPESampler``, not
    the operator's ``HistoryTPESampler``, which proposes the same but reads each
    finished trial once), with the same settings and the same finished trials.

Also printed: the one-off cost of rebuilding the study from the Trials after an
operator restart. Pure CPU, no cluster; times are CPU time of this process
(``time.process_time``), so a busy machine skews them less than wall-clock time.

    .venv/bin/python bench/suggest_bench.py [--sampler tpe] [--sizes 10,100,1000] [--steps 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings

import optuna

from thunderbolt.api.experiment import parse_spec
from thunderbolt.operator.search import Search, make_sampler, sampler_defaults, seed_for
from thunderbolt.optuna_bridge import TrialRecord

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_for(sampler: str):
    return parse_spec(
        {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": sampler, "seed": 7},
            "maxTrials": 10000,
            "parallelTrials": 1,
            "parameters": [
                {"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                {"name": "hidden_dim", "type": "int", "low": 16, "high": 128, "step": 16},
                {"name": "num_layers", "type": "int", "low": 1, "high": 3},
                {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5},
                {"name": "activation", "type": "categorical", "choices": ["relu", "gelu", "silu"]},
                {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
            ],
            "trialTemplate": {"image": "x", "dataset": {"uri": "builtin://iris"}},
        }
    )


def objective(params: dict) -> float:
    return (
        1.0
        - abs(params["learning_rate"] - 0.01) * 5
        - abs(params["dropout"] - 0.2)
        + 0.001 * params["hidden_dim"]
        + (0.02 if params["spectral_norm"] else 0.0)
    )


def history(spec, size: int) -> list[TrialRecord]:
    """``size`` finished trials from a random search (same for both contenders)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    records = []
    dists = Search(spec, "h").distributions
    for number in range(size):
        trial = study.ask(dists)
        value = objective(trial.params)
        study.tell(trial, value)
        records.append(TrialRecord(number, dict(trial.params), "Succeeded", value))
    return records


def bench_operator(spec, records: list[TrialRecord], steps: int) -> tuple[float, float]:
    start = time.process_time()
    search = Search(spec, "operator")
    search.observe(records)
    rebuild = time.process_time() - start
    records = list(records)
    number = len(records)
    params = search.suggest(number)
    times = []
    for _ in range(steps):
        records.append(TrialRecord(number, params, "Succeeded", objective(params)))
        number += 1
        t0 = time.process_time()
        search.observe(r for r in records if r.number not in search.told)  # as reconcile does
        params = search.suggest(number)
        times.append(time.process_time() - t0)
    return statistics.median(times), rebuild


def optunas_own(spec) -> optuna.samplers.BaseSampler:
    """The stock Optuna sampler with the settings the operator would give its own."""
    if spec.algorithm.name != "tpe":
        return make_sampler(spec, seed_for(spec, 0))
    kwargs = sampler_defaults(spec) | dict(spec.algorithm.settings)
    kwargs.pop("balanced_startup", None)
    return optuna.samplers.TPESampler(seed=seed_for(spec, 0), **kwargs)


def bench_bare(spec, records: list[TrialRecord], steps: int) -> float:
    search = Search(spec, "dists")
    dists = search.distributions
    study = optuna.create_study(direction="maximize", sampler=optunas_own(spec))
    for rec in records:
        study.add_trial(
            optuna.trial.create_trial(
                params=dict(rec.parameters), distributions=dists, value=rec.objective
            )
        )
    trial = study.ask(dists)
    times = []
    for _ in range(steps):
        value = objective(trial.params)
        t0 = time.process_time()
        study.tell(trial, value)
        trial = study.ask(dists)
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    random.seed(0)
    spec = spec_for(args.sampler)
    print(f"sampler={args.sampler}, {args.steps} steps per size, median CPU ms per suggestion")
    print(
        f"{'finished':>9} {'operator ms':>12} {'bare optuna ms':>15} {'ratio':>7} {'rebuild ms':>11}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        records = history(spec, size)
        op, rebuild = bench_operator(spec, records, args.steps)
        bare = bench_bare(spec, records, args.steps)
        print(
            f"{size:>9} {op * 1000:>12.2f} {bare * 1000:>15.2f} {op / bare:>7.2f}"
            f" {rebuild * 1000:>11.1f}"
        )


if __name__ == "__main__":
    main()
