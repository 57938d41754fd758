"""The tally a reconcile keeps of an Experiment's finished Trials gives exactly what a
fold from scratch gives, after any sequence of Trials starting, finishing, changing
and going; and the validation summary equals the straightforward one it replaced."""

from __future__ import annotations

import collections
import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from operator_specs import raw

from thunderbolt.api.experiment import parse_spec
from thunderbolt.api.validation_summary import MAX_EXPERIMENT_FINDINGS, MAX_RECOMMENDATIONS
from thunderbolt.operator import aggregate, validation_digest
from thunderbolt.operator.tally import FinishedTally, Tallies
from thunderbolt.validation.across_trials import ValidationTally, summarize
from thunderbolt.validation.recommend import experiment_recommendations

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {"name": "width", "type": "int", "low": 8, "high": 64},
]
KINDS = ["class_imbalance", "label_noise", "duplicate_rows", "drift"]
ACTIONS = ["rebalance", "relabel", "dedupe", "lower_learning_rate"]


def _raw(kind: str) -> dict[str, Any]:
    changes: dict[str, Any] = {"parameters": SPACE, "maxTrials": 60, "maxFailedTrials": 60}
    if kind == "minimize":
        changes["objective"] = {"metric": "val_loss", "direction": "minimize"}
    base = raw(**changes)
    if kind in ("multi", "select"):
        base.pop("objective", None)
        base["objectives"] = [
            {"metric": "val_accuracy", "direction": "maximize"},
            {"metric": "latency_p50_ms", "direction": "minimize"},
        ]
    if kind == "select":
        base["promote"] = {"modelDeployment": "md", "select": {"objective": "val_accuracy",
                                      "constraints": [{"metric": "latency_p50_ms", "max": 5.0}]}}  # fmt: skip
    return base


def _spec(kind: str) -> Any:
    return parse_spec(_raw(kind))


def _validation(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.2:
        return None
    recs = [
        {"action": a, "finding": "k", "text": f"do {a}"}
        for a in rng.sample(ACTIONS, rng.randint(0, 2))
    ]
    return {
        "verdict": rng.choice(["pass", "warn", "fail", "other"]),
        "findings": [{"kind": k, "message": "m"} for k in rng.sample(KINDS, rng.randint(0, 2))],
        "recommendations": recs,
    }


def _trial(rng: random.Random, number: int, version: int, phase: str) -> dict[str, Any]:
    # few distinct values, so ties in the ranking are common
    value = rng.choice([0.5, 0.6, 0.7, 0.7, 0.8, 0.9, float("nan")])
    status: dict[str, Any] = {"phase": phase}
    if phase in ("Succeeded", "Failed", "Pruned"):
        status.update(
            objective=value,
            metrics={"val_accuracy": value, "val_loss": value,
                     "latency_p50_ms": rng.choice([1.0, 4.0, 9.0])},
            durationSeconds=rng.choice([0.1, 0.2, 1.3, None]),
            completionTime=f"2026-01-01T00:{rng.randint(0, 59):02d}:00Z",
        )  # fmt: skip
        validation = _validation(rng)
        if validation is not None:
            status["validation"] = validation
    return {
        "metadata": {"name": f"e-{number:03d}", "uid": f"uid-{number}",
                     "resourceVersion": str(version)},
        "spec": {"number": number,
                 "parameters": {"lr": 10 ** rng.uniform(-4, -1), "width": rng.randint(8, 64)}},
        "status": status,
    }  # fmt: skip


def _steps(rng: random.Random, count: int) -> list[list[dict[str, Any]]]:
    """Snapshots of one Experiment's Trials (sorted by number, as the cache gives them)
    as Trials start, finish, get a late status change, and are deleted."""
    trials: dict[int, dict[str, Any]] = {}
    version, snapshots = 0, []
    for _ in range(count):
        version += 1
        move = rng.random()
        if move < 0.3 or not trials:
            number = max(trials, default=-1) + 1
            trials[number] = _trial(rng, number, version, rng.choice(["Pending", "Running"]))
        elif move < 0.7:
            number = rng.choice(list(trials))
            phase = rng.choice(["Succeeded", "Succeeded", "Failed", "Pruned", "Running"])
            trials[number] = _trial(rng, number, version, phase)
        elif move < 0.85:  # a finished Trial's status patched again (same content)
            number = rng.choice(list(trials))
            again = dict(trials[number])
            again["metadata"] = {**again["metadata"], "resourceVersion": str(version)}
            trials[number] = again
        else:
            del trials[rng.choice(list(trials))]
        snapshots.append([trials[n] for n in sorted(trials)])
    return snapshots


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (a Trial whose objective is NaN appears in both)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("kind", ["maximize", "minimize", "multi", "select"])
@pytest.mark.parametrize("seed", range(6))
def test_a_kept_tally_plans_what_a_fresh_one_plans(kind: str, seed: int) -> None:
    spec, rng = _spec(kind), random.Random(seed)
    experiment = {"metadata": {"generation": 1}, "spec": _raw(kind)}
    tally = FinishedTally(spec)
    for trials in _steps(rng, 120):
        kept = aggregate.plan(experiment, spec, trials, NOW, None, tally)
        fresh = aggregate.plan(experiment, spec, trials, NOW)
        assert _same(kept.status, fresh.status) and kept.create == fresh.create
        with_kept = validation_digest.with_summary({}, experiment, tally.validation)
        assert with_kept == validation_digest.with_summary({}, experiment, trials)
    assert tally.finished == sum(
        (t["status"]["phase"] in ("Succeeded", "Failed", "Pruned")) for t in trials
    )


def test_the_fold_is_what_the_trials_say() -> None:
    """Not only kept == fresh: the figures themselves, counted by hand."""
    spec = _spec("maximize")
    trials = [_trial(random.Random(n), n, n + 1, "Succeeded") for n in range(5)]
    for n, value in enumerate([0.7, 0.9, 0.9, 0.1, 0.5]):
        trials[n]["status"].update(objective=value, durationSeconds=float(n + 1),
                                   completionTime=f"2026-01-01T00:0{n}:00Z")  # fmt: skip
    trials[3]["status"]["phase"] = "Failed"
    trials.append(_trial(random.Random(9), 7, 9, "Running"))
    view = aggregate.Tallied.of(spec, trials)
    counts = view.counts()
    assert counts["succeeded"] == 4 and counts["failed"] == 1 and counts["running"] == 1
    assert counts["total"] == 6 and view.next_number() == 8
    assert [t["spec"]["number"] for t, _ in view.ranked()] == [1, 2, 0, 4]  # ties: number
    assert view.tally.duration == pytest.approx(15.0) and view.tally.timed == 5
    assert view.tally.latest_completion == "2026-01-01T00:04:00Z"
    trials.pop(4)  # the latest one goes
    view = aggregate.Tallied.of(spec, trials, view.tally)
    assert view.tally.latest_completion == "2026-01-01T00:03:00Z"
    assert [t["spec"]["number"] for t, _ in view.ranked()] == [1, 2, 0]


def test_other_objectives_get_a_new_tally() -> None:
    tallies = Tallies()
    first = tallies.get("uid", _spec("maximize"))
    assert tallies.get("uid", _spec("maximize")) is first
    assert tallies.get("uid", _spec("minimize")) is not first
    tallies.forget("uid")
    assert tallies.get("uid", _spec("maximize")) is not first


# --- the validation summary against the straightforward fold it replaced ----------------


def _reference(spec: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """summarize as it was written before the tally: one pass in Trial order."""
    counts = {"passed": 0, "warned": 0, "failed": 0, "unchecked": 0}
    field = {"pass": "passed", "warn": "warned", "fail": "failed"}
    kinds: collections.Counter[str] = collections.Counter()
    actions: collections.Counter[str] = collections.Counter()
    first: dict[str, dict[str, Any]] = {}
    scored = []
    for trial in trials:
        status = trial.get("status") or {}
        if status.get("phase") not in ("Succeeded", "Failed", "Pruned"):
            continue
        validation = status.get("validation") or {}
        counts[field.get(str(validation.get("verdict")), "unchecked")] += 1
        kinds.update({str(f.get("kind")) for f in validation.get("findings") or []})
        for rec in validation.get("recommendations") or []:
            actions[str(rec["action"])] += 1
            first.setdefault(str(rec["action"]), dict(rec))
        value = status.get("objective")
        if status.get("phase") == "Succeeded" and value is not None and math.isfinite(value):
            scored.append((trial["spec"]["parameters"], value))
    maximize = (spec.get("objective") or {}).get("direction", "maximize") == "maximize"
    ranges = experiment_recommendations(spec.get("parameters") or [], scored, maximize=maximize)
    recs = [{"action": r.action, "finding": r.finding, "text": r.text[:256]} for r in ranges]
    order = {a: i for i, a in enumerate(first)}
    for action in sorted(actions, key=lambda a: (-actions[a], order[a])):
        if all(r["action"] != action for r in recs):
            recs.append(first[action])
    findings = [
        {"kind": k, "trials": n} for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {
        **counts,
        "findings": findings[:MAX_EXPERIMENT_FINDINGS],
        "recommendations": recs[:MAX_RECOMMENDATIONS],
    }


@pytest.mark.parametrize("seed", range(10))
def test_the_validation_summary_is_the_straightforward_one(seed: int) -> None:
    rng = random.Random(seed)
    spec = raw(parameters=SPACE)
    if seed % 2:
        spec["objective"] = {"metric": "val_loss", "direction": "minimize"}
    trials = [_trial(rng, n, n + 1, rng.choice(["Succeeded", "Failed", "Pruned", "Running"]))
              for n in range(rng.randint(0, 40))]  # fmt: skip
    if seed % 3 == 0:  # the best trials crowd one end of lr: the ranges advise widening it
        for t in trials:
            t["spec"]["parameters"]["lr"] = 1.05e-4
    expected = _reference(spec, trials)
    assert summarize(spec, trials) == expected
    # the same with Trials added in another order, some added twice and some removed
    tally = ValidationTally(maximize=not seed % 2)
    for t in rng.sample(trials, len(trials)):
        tally.add(t["metadata"]["uid"], t)
    for t in trials[::3]:
        tally.add(t["metadata"]["uid"], t)  # a second add replaces the first
    for t in trials[1::4]:
        tally.remove(t["metadata"]["uid"])
    tally.remove("never-added")
    for t in trials[1::4]:
        tally.add(t["metadata"]["uid"], t)
    assert tally.summary(SPACE) == expected
