"""Every Trial the operator has seen, fed by the watch: no LIST of all Trials per event.

A reconcile used to LIST all of an Experiment's Trials on every Trial event: bytes per
finished Trial grew with N, O(N²) over a search. Now each Experiment is *primed* once
with one LIST (after a start, or when a create finds a Trial the cache did not know),
and from then on follows the watch events and the operator's own creates. For each
Trial the newer ``resourceVersion`` wins, so a late LIST cannot undo an event, and a
deletion seen while a LIST is in flight leaves a tombstone, so that LIST cannot
resurrect it (tombstones go when the LIST is merged: nothing grows after deletions).

Records are compact (the Trial's template, conditions and parameter labels are dropped;
the intermediate curve is kept only for pruned Trials, its last points, which is all the
sampler reads) and their keys are interned (every record repeats ``phase``,
``objective``, the metric names...): ``bench/operator_memory.py`` prints the bytes per
Trial. The Trials stay the source of truth: the cache only decides what to read, and
creates are idempotent (deterministic names, 409 = done).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from thunderbolt.api.meta import EXPERIMENT_LABEL
from thunderbolt.api.trial import FINISHED_PHASES, trial_number

# Last points of a pruned Trial's curve worth keeping (TPE reads the last one).
PRUNED_POINTS = 8
_META_KEYS = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")
_STATUS_DROP = ("conditions", "intermediate", "collector", "message")

ExperimentKey = tuple[str, str]  # (namespace, experiment name)


def _version(obj: Mapping[str, Any]) -> int:
    """resourceVersion as a number (etcd revisions); unknown formats sort first."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _plain(value: Any) -> Any:
    """Plain dicts and lists (Kopf hands out live views of the whole raw body), with
    the keys interned: each JSON-decoded body brings its own copies of them."""
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def compact(trial: Mapping[str, Any]) -> dict[str, Any]:
    """What reconciles read from a Trial, as plain data, and nothing else."""
    meta = trial.get("metadata") or {}
    spec = trial.get("spec") or {}
    status = dict(trial.get("status") or {})
    curve = status.get("intermediate") or []
    for key in _STATUS_DROP:
        status.pop(key, None)
    if status.get("phase") == "Pruned" and curve:
        status["intermediate"] = list(curve[-PRUNED_POINTS:])
    kept = {k: meta[k] for k in _META_KEYS if k in meta}
    # Only what grouping and ownership read (parameter labels repeat spec.parameters).
    labels = meta.get("labels") or {}
    kept["labels"] = (
        {EXPERIMENT_LABEL: labels[EXPERIMENT_LABEL]} if EXPERIMENT_LABEL in labels else {}
    )
    kept["ownerReferences"] = [{"uid": ref.get("uid")} for ref in meta.get("ownerReferences") or []]
    return _plain(
        {
            "metadata": kept,
            "spec": {k: spec[k] for k in ("experiment", "number", "parameters") if k in spec},
            "status": status,
        }
    )


def _key(trial: Mapping[str, Any]) -> ExperimentKey | None:
    meta = trial.get("metadata") or {}
    experiment = (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
    if not experiment or not meta.get("namespace"):
        return None
    return str(meta["namespace"]), str(experiment)


def _phase(record: Mapping[str, Any] | None) -> str | None:
    """The phase a cached record shows (None: no record)."""
    if record is None:
        return None
    return str((record.get("status") or {}).get("phase") or "Pending")


def _owners_of(record: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(ref.get("uid")) for ref in (record.get("metadata") or {}).get("ownerReferences") or []
    )


class _Ordered:
    """One Experiment's records sorted by number, kept in order as records come: a
    changed Trial keeps its place, a new one has the largest number so far and goes at
    the end; anything else (a deletion, a number out of order) sorts again."""

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.items = sorted(records, key=trial_number)  # stable: ties keep the cache's order
        self.index = {str(r["metadata"]["uid"]): i for i, r in enumerate(self.items)}

    def put(self, uid: str, old: Mapping[str, Any] | None, new: dict[str, Any]) -> bool:
        """Whether ``new`` (replacing ``old``) found its place; False: sort again."""
        if old is not None:
            if trial_number(old) != trial_number(new):
                return False
            self.items[self.index[uid]] = new
            return True
        if self.items and trial_number(new) < trial_number(self.items[-1]):
            return False
        self.index[uid] = len(self.items)
        self.items.append(new)
        return True


def _owned_by(trial: Mapping[str, Any], uid: str) -> bool:
    refs = (trial.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


class TrialCache:
    """Compact Trials by Experiment; thread-safe (handlers run in Kopf's executor)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trials: dict[ExperimentKey, dict[str, dict[str, Any]]] = {}
        self._tombstones: dict[ExperimentKey, dict[str, int]] = {}
        self._primed: set[ExperimentKey] = set()
        self._priming: dict[ExperimentKey, int] = {}  # LISTs in flight
        # (namespace, Trial name) -> (resourceVersion, finished?) of the newest Trial of
        # that name seen: a name is reused only after deletion, so the newer wins.
        self._by_name: dict[tuple[str, str], tuple[int, bool]] = {}
        # Per Experiment: its records by number (so a read need not sort 10 000), and
        # how many records each owner set has (so it need not filter when all are one's).
        self._ordered: dict[ExperimentKey, _Ordered] = {}
        self._owners: dict[ExperimentKey, Counter[tuple[str, ...]]] = {}

    def _put(self, key: ExperimentKey, trial: Mapping[str, Any]) -> None:
        uid = str((trial.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        version = _version(trial)
        if version and self._tombstones.get(key, {}).get(uid, -1) >= version:
            return  # deleted after this version was read
        known = self._trials.setdefault(key, {}).get(uid)
        if known is not None and _version(known) > version:
            return
        record = self._trials[key][uid] = compact(trial)
        owners = self._owners.setdefault(key, Counter())
        if known is not None:
            owners[_owners_of(known)] -= 1
        owners[_owners_of(record)] += 1
        ordered = self._ordered.get(key)
        if ordered is not None and not ordered.put(uid, known, record):
            del self._ordered[key]  # out of order: sorted again at the next read

    def _drop(self, key: ExperimentKey, uid: str) -> None:
        known = self._trials.get(key, {}).pop(uid, None)
        if known is not None:
            self._owners[key][_owners_of(known)] -= 1
            self._ordered.pop(key, None)

    def _note_phase(self, event_type: str | None, trial: Mapping[str, Any]) -> None:
        meta = trial.get("metadata") or {}
        name = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = _version(trial)
        if event_type == "DELETED":
            if self._by_name.get(name, (-1, False))[0] <= version:
                self._by_name.pop(name, None)
            return
        if self._by_name.get(name, (-1, False))[0] <= version:
            phase = (trial.get("status") or {}).get("phase")
            self._by_name[name] = (version, phase in FINISHED_PHASES)

    def finished(self, namespace: str, name: str) -> bool:
        """Whether the Trial of that name is known to have finished (phases are final):
        its Job and pod events then have nothing to bring to its status."""
        with self._lock:
            return self._by_name.get((namespace, name), (0, False))[1]

    def observe(self, event_type: str | None, trial: Mapping[str, Any]) -> bool:
        """A watch event (or the operator's own create/read) about one Trial; whether it
        changed the Trial's phase as the cache knows it (a deletion always does), so a
        Trial event reconciles its Experiment only on news."""
        key = _key(trial)
        if key is None:
            return False
        uid = str((trial.get("metadata") or {}).get("uid") or "")
        with self._lock:
            self._note_phase(event_type, trial)
            before = _phase(self._trials.get(key, {}).get(uid))
            if event_type == "DELETED":
                self._drop(key, uid)
                if self._priming.get(key):
                    self._tombstones.setdefault(key, {})[uid] = _version(trial) or 2**62
                return True
            self._put(key, trial)
            return _phase(self._trials.get(key, {}).get(uid)) != before

    def trials(
        self,
        namespace: str,
        experiment: str,
        uid: str,
        lister: Callable[[], Iterable[Mapping[str, Any]]],
        refresh: bool = False,
    ) -> list[dict[str, Any]]:
        """The Experiment's Trials owned by ``uid``; ``lister`` (one LIST) primes it
        the first time, or again when ``refresh`` says the cache missed something."""
        key = (namespace, experiment)
        with self._lock:
            primed = key in self._primed and not refresh
        if not primed:
            with self._lock:
                self._priming[key] = self._priming.get(key, 0) + 1
            listed: list[Mapping[str, Any]] | None = None
            try:
                listed = list(lister())  # outside the lock: events keep flowing meanwhile
            finally:
                with self._lock:
                    if listed is not None:
                        for trial in listed:
                            self._put(key, trial)
                        self._primed.add(key)
                    self._priming[key] -= 1
                    if not self._priming[key]:
                        del self._priming[key]
                        self._tombstones.pop(key, None)
        with self._lock:
            records = self._trials.get(key, {})
            ordered = self._ordered.get(key)
            if ordered is None:
                ordered = self._ordered[key] = _Ordered(records.values())
            if self._owners.get(key, Counter())[(uid,)] == len(records):
                return list(ordered.items)  # all are this Experiment's: a copy, no filter
            return [t for t in ordered.items if _owned_by(t, uid)]

    def forget(self, namespace: str, experiment: str) -> None:
        """The Experiment is gone: drop its Trials (its Trials' DELETED events follow)."""
        key = (namespace, experiment)
        with self._lock:
            gone = self._trials.pop(key, None) or {}
            self._ordered.pop(key, None)
            self._owners.pop(key, None)
            self._tombstones.pop(key, None)
            self._primed.discard(key)
            for trial in gone.values():
                self._by_name.pop((namespace, str(trial["metadata"].get("name"))), None)

    def size(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._trials.values())


TRIALS = TrialCache()
