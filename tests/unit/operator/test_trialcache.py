"""The watch-fed Trial cache (operator/trialcache.py): one LIST per Experiment, then events."""

from __future__ import annotations

import threading
from typing import Any

from thunderbolt.api.meta import EXPERIMENT_LABEL
from thunderbolt.operator.trialcache import PRUNED_POINTS, TrialCache, compact

UID = "exp-uid"


def trial(number: int, rv: int, phase: str = "Running", owner: str = UID, **status: Any):
    return {
        "metadata": {
            "name": f"e-{number:03d}",
            "namespace": "ns",
            "uid": f"t{number}",
            "resourceVersion": str(rv),
            "labels": {EXPERIMENT_LABEL: "e"},
            "ownerReferences": [{"kind": "Experiment", "uid": owner, "controller": True}],
        },
        "spec": {"experiment": "e", "number": number, "parameters": {"x": 0.5}, "template": {}},
        "status": {"phase": phase, **status},
    }


class Lister:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items, self.calls = list(items), 0

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        return list(self.items)


def test_one_list_primes_then_events_keep_it_current():
    cache, lister = TrialCache(), Lister(trial(0, 10), trial(1, 11))
    assert [t["metadata"]["name"] for t in cache.trials("ns", "e", UID, lister)] == [
        "e-000",
        "e-001",
    ]
    cache.observe("MODIFIED", trial(1, 12, "Succeeded", objective=0.9))
    cache.observe("ADDED", trial(2, 13))
    got = cache.trials("ns", "e", UID, lister)
    assert lister.calls == 1  # no LIST per event
    assert [t["status"]["phase"] for t in got] == ["Running", "Succeeded", "Running"]
    assert got[1]["status"]["objective"] == 0.9


def test_an_older_version_never_replaces_a_newer_one():
    cache = TrialCache()
    cache.observe("MODIFIED", trial(0, 20, "Succeeded", objective=1.0))
    stale = Lister(trial(0, 5, "Running"))  # a LIST answered before that event
    (only,) = cache.trials("ns", "e", UID, stale)
    assert only["status"]["phase"] == "Succeeded"


def test_a_deletion_during_a_list_is_not_resurrected_and_leaves_nothing_behind():
    cache = TrialCache()

    def slow_list() -> list[dict[str, Any]]:
        cache.observe("DELETED", trial(1, 30))  # arrives while the LIST is in flight
        return [trial(0, 10), trial(1, 11)]

    got = cache.trials("ns", "e", UID, slow_list)
    assert [t["metadata"]["name"] for t in got] == ["e-000"]
    assert cache._tombstones == {} and cache._priming == {}
    cache.observe("DELETED", trial(0, 31))  # no LIST in flight: no tombstone kept
    assert cache._tombstones == {} and cache.size() == 0


def test_refresh_lists_again_and_a_failed_list_primes_nothing():
    cache = TrialCache()
    lister = Lister(trial(0, 1))
    cache.trials("ns", "e", UID, lister)
    lister.items.append(trial(1, 2))
    assert len(cache.trials("ns", "e", UID, lister, refresh=True)) == 2
    assert lister.calls == 2

    def failing() -> list[dict[str, Any]]:
        raise RuntimeError("api down")

    other = TrialCache()
    try:
        other.trials("ns", "e", UID, failing)
    except RuntimeError:
        pass
    assert len(other.trials("ns", "e", UID, Lister(trial(0, 1)))) == 1  # still unprimed


def test_trials_of_another_experiment_with_the_same_name_are_filtered_by_owner():
    cache = TrialCache()
    got = cache.trials("ns", "e", UID, Lister(trial(0, 1), trial(1, 2, owner="old-uid")))
    assert [t["metadata"]["name"] for t in got] == ["e-000"]
    cache.forget("ns", "e")
    assert cache.size() == 0


def test_records_are_compact_plain_data():
    curve = [{"step": i, "value": i / 100} for i in range(500)]
    big = trial(0, 1, "Pruned", intermediate=curve, conditions=[{"type": "X"}] * 5)
    record = compact(big)
    assert "template" not in record["spec"] and "conditions" not in record["status"]
    assert record["status"]["intermediate"] == curve[-PRUNED_POINTS:]
    done = compact(trial(1, 2, "Succeeded", objective=0.5, intermediate=curve))
    assert "intermediate" not in done["status"] and done["status"]["objective"] == 0.5
    assert type(record["metadata"]["labels"]) is dict


def test_concurrent_events_and_reads_do_not_break():
    cache = TrialCache()
    cache.trials("ns", "e", UID, Lister())
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 500):
                cache.observe("ADDED", trial(i, i + 1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 500,)) for k in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        cache.trials("ns", "e", UID, Lister())
    for t in threads:
        t.join()
    assert not errors and len(cache.trials("ns", "e", UID, Lister())) == 2000


def test_finished_by_name_follows_the_newest_trial_of_that_name():
    cache = TrialCache()
    assert not cache.finished("ns", "e-000")  # never seen: sync it
    cache.observe("ADDED", trial(0, 10))
    assert not cache.finished("ns", "e-000")
    cache.observe("MODIFIED", trial(0, 12, "Succeeded", objective=0.5))
    assert cache.finished("ns", "e-000")
    cache.observe("MODIFIED", trial(0, 11, "Running"))  # late and older: ignored
    assert cache.finished("ns", "e-000")
    cache.observe("DELETED", trial(0, 13, "Succeeded"))
    assert not cache.finished("ns", "e-000")
    # The name comes back for a new Trial (created after the deletion, so a newer
    # version); an old Trial's event processed late cannot mark the new one finished.
    reborn = trial(0, 20)
    reborn["metadata"]["uid"] = "t0-again"
    cache.observe("ADDED", reborn)
    cache.observe("MODIFIED", trial(0, 12, "Succeeded", objective=0.5))
    assert not cache.finished("ns", "e-000")
    cache.observe(
        "MODIFIED",
        trial(0, 21, "Pruned") | {"metadata": reborn["metadata"] | {"resourceVersion": "21"}},
    )
    assert cache.finished("ns", "e-000")
    cache.forget("ns", "e")  # the Experiment is gone: nothing kept per name
    assert not cache.finished("ns", "e-000") and not cache._by_name


def test_observe_says_whether_the_phase_is_news():
    """The Trial-event handler reconciles only on news: a replayed or late event, or the
    watch echo of a status the sync already fed in, is not."""
    cache = TrialCache()
    assert cache.observe("ADDED", trial(0, 10, "Pending"))  # a new Trial
    assert not cache.observe("MODIFIED", trial(0, 11, "Pending"))  # same phase
    assert cache.observe("MODIFIED", trial(0, 12, "Running"))
    assert cache.observe("MODIFIED", trial(0, 14, "Succeeded"))  # fed by the status sync
    assert not cache.observe("MODIFIED", trial(0, 14, "Succeeded"))  # its watch echo
    assert not cache.observe("MODIFIED", trial(0, 13, "Running"))  # older: ignored
    assert cache.finished("ns", "e-000")
    assert cache.observe("DELETED", trial(0, 15, "Succeeded"))
    assert cache.observe(None, trial(0, 16, "Succeeded"))  # a replay after a restart
    assert not cache.observe("ADDED", {"metadata": {"name": "x"}})  # no Experiment label


def test_reads_keep_number_order_through_any_events():
    """The kept order (appends, in-place changes, re-sorts) gives what filtering and
    sorting every record gives, with another Experiment of the same name mixed in."""
    import random

    rng = random.Random(5)
    cache, rv, live = TrialCache(), 0, {}  # number -> the Trial as last sent
    cache.trials("ns", "e", UID, list)  # primed empty
    for _ in range(600):
        rv += 1
        move, number = rng.random(), rng.randrange(40)
        owner = UID if rng.random() < 0.9 else "old-uid"
        if move < 0.15 and live:
            gone = live.pop(rng.choice(list(live)))
            meta = {**gone["metadata"], "resourceVersion": str(rv)}
            cache.observe("DELETED", {**gone, "metadata": meta})
            continue
        if move < 0.5 and live:  # a known Trial changes (its number never does)
            number = rng.choice(list(live))
            owner = live[number]["metadata"]["ownerReferences"][0]["uid"]
        body = trial(number, rv, rng.choice(["Running", "Succeeded"]), owner=owner)
        live[number] = body
        cache.observe("MODIFIED", body)
        ours = {n: t for n, t in live.items() if t["metadata"]["ownerReferences"][0]["uid"] == UID}
        got = cache.trials("ns", "e", UID, list)
        assert [t["spec"]["number"] for t in got] == sorted(ours)
        assert [t["metadata"]["resourceVersion"] for t in got] == [
            ours[n]["metadata"]["resourceVersion"] for n in sorted(ours)
        ]
    assert cache.trials("ns", "e", UID, list) is not cache.trials("ns", "e", UID, list)  # copies
