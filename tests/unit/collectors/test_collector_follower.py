"""The StdOut follower over a real ReportService (MemoryStore): lines become points on
the Trial, a dropped stream resumes without double counting, pruning stops it, a flood
is read at a bounded rate with a bounded inbox."""

from __future__ import annotations

import asyncio
import threading

from thunderbolt.api.collector import MetricsCollector
from thunderbolt.collectors.stdout import (
    FollowConfig,
    Follower,
    Inbox,
    LineSplitter,
    RateGate,
    batch_report,
    collector_status,
)
from thunderbolt.metric_lines import MAX_LINE_CHARS, LineParser, Sample
from thunderbolt.reports.service import ReportService
from thunderbolt.reports.store import MemoryStore

NS = "team"


class FakeLog:
    """A log that grows between connections; each ``open`` returns it from the start."""

    def __init__(self, connections, finished_after=None):
        self.connections = list(connections)
        self.opens = 0
        self.closed = threading.Event()
        self.finished_after = finished_after or len(self.connections)

    def open(self):
        data = self.connections[min(self.opens, len(self.connections) - 1)]
        self.opens += 1
        if isinstance(data, Exception):
            raise data
        return [data[i : i + 7] for i in range(0, len(data), 7)]  # odd chunk boundaries

    def close(self):
        self.closed.set()

    def finished(self):
        return self.opens >= self.finished_after


def world(pruner=None, intermediate=None):
    store = MemoryStore()
    store.put(
        "experiments",
        {
            "metadata": {"name": "exp", "namespace": NS, "uid": "exp-uid"},
            "spec": {
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "pruner": pruner or {"name": "none"},
                "trialTemplate": {"epochs": 10},
            },
        },
    )
    status = {"phase": "Running"}
    if intermediate:
        status["intermediate"] = [{"step": s, "value": v} for s, v in intermediate]
    trial = store.put(
        "trials",
        {
            "metadata": {
                "name": "exp-001",
                "namespace": NS,
                "labels": {"thunderbolt.io/experiment": "exp"},
            },
            "spec": {
                "experiment": "exp",
                "number": 1,
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "template": {"epochs": 10},
            },
            "status": status,
        },
    )
    return store, ReportService(store), trial["metadata"]["uid"]


def follow(source, service, uid, start_after=0, config=None):
    async def go():
        await service.start()

        async def submit(report):
            return await service.collect(NS, "exp-001", report, owner_uid=uid)

        follower = Follower(
            source,
            LineParser("val_accuracy", MetricsCollector(kind="StdOut")),
            submit,
            start_after=start_after,
            config=config or FollowConfig(reconnect_seconds=0.01),
        )
        await asyncio.wait_for(follower.run(), 10)
        await service.stop()
        return follower

    return asyncio.run(go())


def points(store):
    trial = asyncio.run(store.get_trial(NS, "exp-001"))
    return [(p["step"], p["value"]) for p in trial["status"].get("intermediate", [])]


def test_lines_become_points_and_the_status_says_what_was_read():
    store, service, uid = world()
    log = b"starting\nepoch=1 val_accuracy=0.5 loss=1\nval_accuracy=nan\nepoch=2 val_accuracy=0.6"
    follower = follow(FakeLog([log]), service, uid)
    assert points(store) == [(1, 0.5), (2, 0.6)]
    status = collector_status(follower)
    assert status == {
        "kind": "StdOut",
        "state": "Done",
        "lines": 4,
        "reports": 2,
        "skipped": {"nonFinite": 1},
        "lastStep": 2,
        "lastMetrics": {"val_accuracy": 0.6},
    }


def test_a_dropped_stream_is_reopened_and_nothing_is_counted_twice():
    store, service, uid = world()
    first = b"val_accuracy=0.1\nval_accuracy=0.2\n"
    second = first + b"val_accuracy=0.3\n"
    follower = follow(FakeLog([first, ConnectionError("reset"), second]), service, uid)
    assert points(store) == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert follower.parser.lines == 3 and follower.parser.reports == 3


def test_a_restarted_follower_sends_only_steps_after_those_on_record():
    store, service, uid = world(intermediate=[(1, 0.1), (2, 0.2)])
    log = b"val_accuracy=0.1\nval_accuracy=0.2\nval_accuracy=0.3\n"
    follow(FakeLog([log]), service, uid, start_after=2)
    assert points(store) == [(1, 0.1), (2, 0.2), (3, 0.3)]


def test_the_pruner_stops_the_follower():
    store, service, uid = world(pruner={"name": "median", "startupTrials": 1, "warmupSteps": 0})
    for n in range(2, 5):  # finished peers that did much better
        store.put(
            "trials",
            {
                "metadata": {
                    "name": f"exp-00{n}",
                    "namespace": NS,
                    "labels": {"thunderbolt.io/experiment": "exp"},
                },
                "spec": {"experiment": "exp", "number": n, "objective": {"metric": "val_accuracy"}},
                "status": {
                    "phase": "Succeeded",
                    "objective": 0.9,
                    "intermediate": [{"step": s, "value": 0.9} for s in range(1, 6)],
                },
            },
        )
    log = b"".join(b"val_accuracy=0.1\n" for _ in range(5))
    # a container that never ends: only the pruner's verdict ends the follower
    follower = follow(FakeLog([log], finished_after=10**9), service, uid)
    assert follower.pruned_at is not None
    assert follower.pruned_at.value == 0.1
    assert follower.source.closed.is_set()
    assert points(store)[-1] == (follower.pruned_at.step, 0.1)


def test_a_finished_trial_ends_the_follower():
    store, service, uid = world()
    trial = asyncio.run(store.get_trial(NS, "exp-001"))
    asyncio.run(
        store.patch_trial_status(
            NS, "exp-001", {"phase": "Failed"}, trial["metadata"]["resourceVersion"]
        )
    )
    follower = follow(FakeLog([b"val_accuracy=0.5\n"]), service, uid)
    assert follower.finished_early


def test_splitter_holds_at_most_one_bounded_partial_line():
    s = LineSplitter()
    assert list(s.feed(b"a=1\nb=")) == ["a=1"]
    assert list(s.feed(b"2\r\n")) == ["b=2"]
    long = b"x" * (MAX_LINE_CHARS * 3)
    assert list(s.feed(long)) == []
    assert len(s._partial) == MAX_LINE_CHARS + 1
    (line,) = list(s.feed(b"tail\nnext"))
    assert len(line) == MAX_LINE_CHARS + 1  # the parser counts it as tooLong
    assert list(s.flush()) == ["next"]


def test_rate_gate_paces_a_flood():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    gate = RateGate(100.0, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(110):
        gate.wait()
    assert now[0] == __import__("pytest").approx(1.0, rel=0.02)  # burst 10, then 100/s


def test_inbox_is_bounded_and_a_batch_carries_the_rest_as_backlog():
    inbox = Inbox(limit=3)
    for step in range(1, 6):
        inbox.put(Sample(step, step / 10, {"val_accuracy": step / 10}))
    assert inbox.dropped == 2
    batch = inbox.take()
    report = batch_report(batch)
    assert report.step == 5 and report.value == 0.5
    assert [(p.step, p.value) for p in report.backlog] == [(3, 0.3), (4, 0.4)]
    inbox.put(Sample(6, 0.6, {"val_accuracy": 0.6}))
    inbox.put_back(batch)
    assert [s.step for s in inbox.take()] == [4, 5, 6] and inbox.dropped == 3


def test_which_pods_have_output_and_which_have_ended():
    from thunderbolt.collectors.handlers import container_exited, has_output

    def pod(phase, state, name="trainer"):
        return {"status": {"phase": phase, "containerStatuses": [{"name": name, "state": state}]}}

    assert not has_output(pod("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert has_output(pod("Running", {"running": {}}))
    assert has_output(pod("Succeeded", {"terminated": {"exitCode": 0}}))
    assert not has_output(pod("Running", {"running": {}}, name="sidecar"))
    assert not container_exited(pod("Running", {"running": {}}))
    assert container_exited(pod("Running", {"terminated": {"exitCode": 1}}))  # sidecar left
    assert container_exited(pod("Failed", {}))
