"""A queue of keys to reconcile, each waiting at most once: controller-runtime's
workqueue in small.

Trial, Job and pod events each asked for their Experiment's reconcile straight away, in
Kopf's handler threads, so a burst was worked off event by event in arrival order: ten
Trials of one Experiment finishing together meant ten reconciles of it, and with 100
Experiments starting at once some waited a minute (docs/operator.md, "Concurrent
Experiments"). Here an event only adds its Experiment's key:

* a key already waiting is not added again (ten events, one reconcile);
* a key is never worked on by two workers at once; one added while it is worked on is
  worked on once more afterwards (the event may have come after the reconcile read);
* keys are served first in, first out, so each waiting Experiment gets its turn before
  any gets a second one: no Experiment waits behind another's burst.

The work function handles its own errors; an exception is logged and the key dropped (the
periodic resync adds every unsettled Experiment again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


class KeyQueue(Generic[K]):
    def __init__(
        self,
        work: Callable[[K], None],
        workers: int,
        name: str = "reconcile",
        observe_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._work = work
        self._observe_wait = observe_wait
        self._since: dict[K, float] = {}  # the waiting keys, with when each was queued
        self._workers = workers
        self._name = name
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._busy: set[K] = set()
        self._again: set[K] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.added = 0  # add() calls
        self.coalesced = 0  # ... that found their key already waiting or due again

    def add(self, key: K) -> None:
        with self._cond:
            self.added += 1
            if key in self._since or key in self._again:
                self.coalesced += 1
            elif key in self._busy:
                self._again.add(key)
            else:
                self._enqueue(key)
                self._cond.notify()

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def start(self, workers: int | None = None) -> None:
        """Run the worker threads (``workers``: how many, if not the constructor's)."""
        with self._cond:
            self._workers = workers or self._workers
            self._stopping = False
            while len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let running work finish; what still waits is dropped (the next start resyncs)."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._since.clear()
            self._again.clear()
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until nothing waits or runs (tests); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _enqueue(self, key: K) -> None:  # holding the lock
        self._since[key] = time.monotonic()
        self._queue.append(key)

    def _next(self) -> K | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._stopping)
            if self._stopping:
                return None
            key = self._queue.popleft()
            self._busy.add(key)
            waited = time.monotonic() - self._since.pop(key)
        if self._observe_wait is not None:
            self._observe_wait(waited)
        return key

    def _done(self, key: K) -> None:
        with self._cond:
            self._busy.discard(key)
            if key in self._again and not self._stopping:
                self._again.discard(key)
                self._enqueue(key)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            key = self._next()
            if key is None:
                return
            try:
                self._work(key)
            except Exception:
                log.exception("%s of %s failed", self._name, key)
            finally:
                self._done(key)
