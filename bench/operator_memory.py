"""The operator's memory per Trial, in process: where it goes and whether it is bounded.

``bench/scale.py`` saw the operator's RSS grow by ~48 KB per finished Trial on the
cluster. This bench feeds N simulated Trials through the operator's own in-memory code
paths, exactly as the handlers call them, without a cluster:

* each Trial's watch events go to ``TrialCache.observe`` (ADDED with the full Trial as
  ``builders.build_trial`` makes it; MODIFIED Running; MODIFIED Succeeded with a
  500-point curve, conditions and metrics, as the report endpoint and status sync write
  them), which also keeps the phase the Trial-event handler compares with;
* every ``--parallel`` finished Trials, one reconcile's in-memory part: the cache read,
  ``Search.observe`` of the untold Trials (Optuna ``tell``), ``aggregate.plan`` with the
  Experiment's kept ``FinishedTally``, and
  ``Search.suggest`` for the successors (Optuna ``ask``), plus the per-Trial status-sync
  lock ``trials.sync`` takes.

Each size runs in a fresh interpreter. It prints the bytes still allocated per Trial
(tracemalloc, after ``gc.collect``) broken down by owner (Trial cache, Optuna study,
locks/phases), the RSS growth per Trial, and what is left after the Experiment is
deleted (``experiment_deleted``'s forgets), with the ratio 10 000 vs 1 000.

    PYTHONPATH=src .venv/bin/python bench/operator_memory.py [--sizes 1000,10000]
        [--sampler random|tpe] [--parallel 10]

Not measured here (not ours): Kopf's per-object state, the kubernetes client and
aiohttp buffers; see docs/operator.md for the cluster figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


_OWNERS = (
    ("thunderbolt/operator/trialcache", "trial cache"),
    ("/optuna/", "optuna study"),
    ("thunderbolt/operator/locks", "locks, phases"),
    ("thunderbolt/operator/handlers", "locks, phases"),
    ("thunderbolt/operator/search", "search (ours)"),
    ("thunderbolt/operator/tally", "finished tally"),
    ("thunderbolt/validation/across_trials", "finished tally"),
    ("<frozen importlib", "imports (once)"),
    ("json/decoder", "trial cache (strings)"),
    ("/copy.py", "optuna study"),
    ("/copyreg.py", "optuna study"),
    ("thunderbolt/operator/builders", "Trial bodies"),
)


def _owner(frames: Any) -> str:
    """The innermost frame that names an owner (copy.deepcopy inside Optuna: Optuna)."""
    for frame in reversed(list(frames)):
        for part, owner in _OWNERS:
            if part in frame.filename:
                return owner
    return "other"


def _churn_bodies(trial: dict[str, Any]) -> list[bytes]:
    """What one Trial's status syncs read (the Trial, its Job, its pods), as the API
    server sends them: decoded and dropped by each sync in Kopf's worker threads."""
    full = json.loads(json.dumps(trial))
    full["status"] = {
        "phase": "Running",
        "intermediate": [{"step": s, "value": s / 500} for s in range(500)],
        "conditions": [{"type": "Running", "status": "True", "message": "x" * 200}],
    }
    job = {
        "metadata": {"name": trial["metadata"]["name"], "labels": trial["metadata"]["labels"],
                     "managedFields": [{"fieldsV1": {f"f:{i}": {} for i in range(80)}}]},
        "spec": {"template": {"spec": {"containers": [{"env": [
            {"name": f"E{i}", "value": "v" * 40} for i in range(30)]}]}}},
        "status": {"active": 1},
    }  # fmt: skip
    pods = {"items": [job | {"status": {"phase": "Running", "conditions": [{}] * 5}}]}
    return [json.dumps(x).encode() for x in (full, job, pods)]


def _sync_like(bodies: list[bytes]) -> int:
    decoded = [json.loads(b) for b in bodies]  # as the kubernetes client does
    return len(json.dumps({"status": decoded[0]["status"]}))  # the patch it builds


def one_size(
    n: int, sampler: str, parallel: int, traced: bool, churn: bool = False
) -> dict[str, Any]:
    """Runs in a fresh interpreter: N Trials through cache, search and plan."""
    from thunderbolt.api.experiment import parse_spec
    from thunderbolt.api.meta import now_utc
    from thunderbolt.operator import aggregate, experiments, trials
    from thunderbolt.operator.builders import build_trial, trial_name
    from thunderbolt.operator.search import StudyCache
    from thunderbolt.operator.tally import FinishedTally
    from thunderbolt.operator.trialcache import TrialCache
    from thunderbolt.optuna_bridge import TrialRecord

    body = {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "e", "namespace": "ns", "uid": "E" * 36, "generation": 1},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": sampler, "seed": 1},
            "maxTrials": n,
            "parallelTrials": parallel,
            "maxFailedTrials": n,
            "parameters": [
                {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
                {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                {"name": "width", "type": "categorical", "choices": [8, 16, 32]},
            ],
            "trialTemplate": {
                "image": "thunderbolt-trainer:0.1.0",
                "dataset": {"uri": "builtin://iris"},
                "epochs": 500,
            },
        },
    }
    spec = parse_spec(body["spec"])
    cache, studies, tally = TrialCache(), StudyCache(), FinishedTally(spec)
    name = experiments.study_name(body)
    version = [0]

    def event(kind: str, trial: dict[str, Any]) -> None:
        version[0] += 1
        trial["metadata"]["resourceVersion"] = str(version[0])
        cache.observe(kind, json.loads(json.dumps(trial)))  # decoded, as from the watch

    def finish(trial: dict[str, Any]) -> None:
        x = float(trial["spec"]["parameters"]["x"])
        curve = [{"step": s, "value": x * s / 500} for s in range(1, 501)]
        trial["status"] = {"phase": "Running", "intermediate": curve[:250]}
        event("MODIFIED", trial)
        trial["status"] = {
            "phase": "Succeeded",
            "objective": 1 - (x - 0.3) ** 2,
            "metrics": {"val_accuracy": 1 - (x - 0.3) ** 2, "val_loss": x, "epochs": 500},
            "intermediate": curve,
            "durationSeconds": 1.0,
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:00:01Z",
            "conditions": [
                {"type": "Succeeded", "status": "True", "reason": "Completed", "message": "ok"}
            ],
            "jobName": trial["metadata"]["name"],
        }
        event("MODIFIED", trial)
        trials._lock(f"ns/{trial['metadata']['name']}")  # the status sync's lock

    def reconcile() -> list[dict[str, Any]]:
        existing = cache.trials("ns", "e", body["metadata"]["uid"], list)
        search, _ = studies.get(body["metadata"]["uid"], spec, name)
        search.observe(
            TrialRecord.from_trial(t, spec.goals)
            for t in existing
            if int(t["spec"]["number"]) not in search.told
        )
        plan = aggregate.plan(body, spec, existing, now_utc(), None, tally)
        created = []
        for number in plan.create:
            trial = build_trial(body, spec, number, search.suggest(number))
            trial["metadata"]["uid"] = f"{number:08d}-0000-0000-0000-000000000000"
            event("ADDED", trial)
            created.append(trial)
        return created

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(16)  # Kopf's handler threads (execution.max_workers)

    gc.collect()
    if traced:
        tracemalloc.start(8 if n <= 1000 else 1)  # deep tracebacks cost minutes at 10 000
    rss0 = rss_kb()
    began = time.process_time()
    running = reconcile()
    done = 0
    while running:
        for trial in running:
            if churn:  # ~6 status syncs per Trial, each in some worker thread
                bodies = _churn_bodies(trial)
                list(pool.map(_sync_like, [bodies] * 6))
            finish(trial)
        done += len(running)
        running = reconcile()
    cpu = time.process_time() - began
    gc.collect()
    out: dict[str, Any] = {"n": done, "cpu_s": cpu, "rss_kb": rss_kb() - rss0}
    if traced:
        snapshot = tracemalloc.take_snapshot()
        owners: dict[str, int] = {}
        for stat in snapshot.statistics("traceback"):
            owner = _owner(stat.traceback)
            owners[owner] = owners.get(owner, 0) + stat.size
        out["owners"] = owners
        out["traced"] = sum(owners.values())
        out["top"] = [(str(s.traceback[0]), s.size) for s in snapshot.statistics("lineno")[:12]]
    # The Experiment is deleted: what experiment_deleted and the Trials' DELETED do.
    studies.forget(body["metadata"]["uid"])
    cache.forget("ns", "e")
    tally.sync([])  # as TALLIES.forget leaves it: nothing folded
    for number in range(done):  # the Trials' DELETED events (garbage collection)
        trials.forget("ns", trial_name("e", number), f"{number:08d}-0000-0000-0000-000000000000")
    out["locks_left"] = len(trials._lock)
    gc.collect()
    out["rss_after_delete_kb"] = rss_kb() - rss0
    if traced:
        out["traced_after_delete"] = tracemalloc.get_traced_memory()[0]
    return out


def run_child(
    n: int, sampler: str, parallel: int, traced: bool, churn: bool = False, arenas: str = ""
) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    env.pop("MALLOC_ARENA_MAX", None)
    if arenas:
        env["MALLOC_ARENA_MAX"] = arenas
    args = [sys.executable, __file__, "--child", str(n), "--sampler", sampler]
    args += ["--parallel", str(parallel)] + (["--traced"] if traced else [])
    args += ["--churn"] if churn else []
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--child", type=int)
    parser.add_argument("--traced", action="store_true")
    parser.add_argument("--churn", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.child:
        out = one_size(args.child, args.sampler, args.parallel, args.traced, args.churn)
        print(json.dumps(out))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    for n in sizes:
        plain = run_child(n, args.sampler, args.parallel, traced=False)
        traced = run_child(n, args.sampler, args.parallel, traced=True)
        results.append({"n": n, "plain": plain, "traced": traced})
        print(f"\n== N = {n} Trials ({args.sampler}, {args.parallel} in parallel) ==")
        print(f"  CPU {plain['cpu_s']:.1f} s ({plain['cpu_s'] / n * 1000:.2f} ms per Trial)")
        print(
            f"  RSS growth {plain['rss_kb'] / 1024:.1f} MB = {plain['rss_kb'] * 1024 / n:,.0f} B"
            f" per Trial; after deleting the Experiment {plain['rss_after_delete_kb'] / 1024:.1f}"
            " MB (freed memory stays with the allocator)"
        )
        print(
            f"  allocated (tracemalloc) {traced['traced'] / 2**20:.1f} MiB"
            f" = {traced['traced'] / n:,.0f} B per Trial; after deleting the Experiment"
            f" {traced['traced_after_delete'] / 2**20:.2f} MiB"
        )
        for owner, size in sorted(traced["owners"].items(), key=lambda kv: -kv[1]):
            print(f"    {owner:<16} {size / n:>8,.0f} B per Trial")
        print("  largest allocation sites:")
        for where, size in traced["top"][:8]:
            print(f"    {size / n:>8,.0f} B/Trial  {where.replace(str(REPO) + '/', '')}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        per = [r["traced"]["traced"] / r["n"] for r in (first, last)]
        rss = [r["plain"]["rss_kb"] * 1024 / r["n"] for r in (first, last)]
        print(
            f"\nper Trial at N = {last['n']} vs {first['n']}: allocated {per[1]:,.0f} vs"
            f" {per[0]:,.0f} B ({per[1] / per[0]:.2f}x), RSS {rss[1]:,.0f} vs {rss[0]:,.0f} B"
            f" ({rss[1] / rss[0]:.2f}x)"
        )
        print(
            f"operator RSS at 10 000 Trials: ~{117 + 33 + rss[1] * 10_000 / 2**20:.0f} MB"
            " (117 MB at start and 33 MB of warm-up: bench/scale.py at N = 100) + Kopf's"
            " per-object memory (~0.8 KB per object)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
