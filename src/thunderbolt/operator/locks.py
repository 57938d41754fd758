"""One lock per key (an Experiment's or a Trial's namespace/name).

Kopf runs sync handlers in a thread pool; two events for one object must not reconcile
it at the same time, while different objects go in parallel.
"""

from __future__ import annotations

import threading


class KeyedLocks:
    """Locks made on first use and kept (a few bytes per object the operator has seen)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())
