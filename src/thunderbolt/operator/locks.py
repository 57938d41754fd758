"""One lock per key (an Experiment's or a Trial's namespace/name).

Kopf runs sync handlers in a thread pool; two events for one object must not reconcile
it at the same time, while different objects go in parallel.
"""

from __future__ import annotations

import threading


class KeyedLocks:
    """Locks made on first use, kept until ``forget`` (the object was deleted)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, key: str) -> None:
        """The object is gone; a sync still holding the lock finishes harmlessly."""
        with self._guard:
            self._locks.pop(key, None)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)
