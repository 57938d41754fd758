"""The reconcile queue: a key waits at most once, is never worked on twice at once, is
worked on again when added meanwhile, and keys take turns (no Experiment starves)."""

from __future__ import annotations

import threading
import time

from thunderbolt.operator.workqueue import KeyQueue


class Recorder:
    def __init__(self, hold: dict[str, threading.Event] | None = None) -> None:
        self.done: list[str] = []
        self.running: set[str] = set()
        self.overlaps = 0
        self.hold = hold or {}
        self.lock = threading.Lock()

    def __call__(self, key: str) -> None:
        with self.lock:
            if key in self.running:
                self.overlaps += 1
            self.running.add(key)
        if key in self.hold:
            assert self.hold[key].wait(10)
        time.sleep(0.005)
        with self.lock:
            self.running.discard(key)
            self.done.append(key)


def test_a_burst_of_adds_for_one_key_is_one_reconcile() -> None:
    work = Recorder()
    queue = KeyQueue(work, workers=2)
    for _ in range(10):
        queue.add("ns/a")
    queue.add("ns/b")
    assert queue.depth() == 2
    queue.start()
    try:
        assert queue.drain(10)
    finally:
        queue.stop()
    assert sorted(work.done) == ["ns/a", "ns/b"]
    assert (queue.added, queue.coalesced) == (11, 9)


def test_an_add_while_running_runs_once_more_afterwards_never_at_once() -> None:
    gate = threading.Event()
    work = Recorder(hold={"ns/a": gate})
    waits: list[float] = []
    queue = KeyQueue(work, workers=4, observe_wait=waits.append)
    queue.start()
    try:
        queue.add("ns/a")
        deadline = time.monotonic() + 5
        while "ns/a" not in work.running and time.monotonic() < deadline:
            time.sleep(0.005)
        assert "ns/a" in work.running
        for _ in range(3):  # events that came after the running reconcile read
            queue.add("ns/a")
        assert queue.depth() == 0  # not queued beside the running one: four idle workers
        gate.set()
        assert queue.drain(10)
    finally:
        queue.stop()
    assert work.done == ["ns/a", "ns/a"] and work.overlaps == 0
    assert len(waits) == 2 and all(w >= 0 for w in waits)


def test_experiments_take_turns_under_a_burst() -> None:
    """One worker; 'busy' keeps getting events while 99 others wait: each of the others
    is served before 'busy' is served again (first in, first out by key). The first run
    of 'busy' holds the worker until the burst is in, so a slow test machine cannot let
    the worker empty the queue between the adds."""
    order: list[str] = []
    running, release = threading.Event(), threading.Event()

    def work(key: str) -> None:
        order.append(key)
        if len(order) == 1:
            running.set()
            release.wait(10)

    queue: KeyQueue[str] = KeyQueue(work, workers=1)
    queue.add("busy")
    for i in range(99):
        queue.add(f"e{i:02d}")
        queue.add("busy")  # already waiting: coalesced, keeps its place
    queue.start()
    try:
        assert running.wait(10)
        for _ in range(5):
            queue.add("busy")  # while it runs: once more, after those already waiting
        release.set()
        assert queue.drain(10)
    finally:
        release.set()
        queue.stop()
    assert order == ["busy", *(f"e{i:02d}" for i in range(99)), "busy"]


def test_a_failing_reconcile_is_logged_and_the_queue_goes_on(caplog) -> None:
    done: list[str] = []

    def work(key: str) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        done.append(key)

    queue = KeyQueue(work, workers=1)
    queue.add("bad")
    queue.add("good")
    queue.start()
    try:
        assert queue.drain(10)
    finally:
        queue.stop()
    assert done == ["good"]
    assert "reconcile of bad failed" in caplog.text


def test_stop_drops_what_waits() -> None:
    gate = threading.Event()
    work = Recorder(hold={"a": gate})
    queue = KeyQueue(work, workers=1)
    queue.start()
    queue.add("a")
    queue.add("b")
    threading.Timer(0.2, gate.set).start()
    queue.stop()
    assert "b" not in work.done and queue.depth() == 0
