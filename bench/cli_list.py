"""How fast the CLI reads an Experiment's Trials, at 2 000 and 10 000 Trials, on the real
API server.

Creates one Experiment and N Trial objects directly in a fresh namespace (as the
operator's ``build_trial`` makes them, with a finished status as the operator writes it:
phase, objective, metrics, a 50-point curve, conditions, split), then times, in this
process and as the real ``thunderbolt`` commands:

* ``full LIST``: what ``leaderboard``/``compare`` did before: every Trial of the
  namespace from etcd, decoded by the kubernetes client;
* ``label LIST, watch cache``: what they did next (and still do with ``whole=True``,
  e.g. ``validate``, or on a cluster whose CRD predates the columns):
  ``thunderbolt.io/experiment=NAME``,
  ``resourceVersion=0`` (the API server answers from its watch cache) and the bytes
  parsed straight into dicts;
* ``Table, compact Trials``: what they do now: the API server's Table of the same
  Trials (printer columns only, no objects; ``api/trial_columns.py`` makes the columns
  the views read) rebuilt into compact Trials by ``cli/trial_reads.selected_trials``;
* ``thunderbolt leaderboard/get trials/compare`` as subprocesses (Python start-up
  included), with ratios to the first size.

Nothing here runs the operator (no pods, no Jobs). Applies the repository's CRDs first.
Needs `make cluster`; run under the cluster lock:

    flock /work/cluster.lock env PYTHONPATH=src .venv/bin/python bench/cli_list.py \\
        [--sizes 2000,10000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, config  # noqa: E402

from tests.fixtures.crds import install_crds  # noqa: E402
from thunderbolt.api.experiment import parse_spec  # noqa: E402
from thunderbolt.api.meta import EXPERIMENT_LABEL  # noqa: E402
from thunderbolt.api.trial_columns import has_all_columns  # noqa: E402
from thunderbolt.cli.kube import Kube  # noqa: E402
from thunderbolt.cli.trial_reads import selected_trials  # noqa: E402
from thunderbolt.operator.builders import build_trial  # noqa: E402

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
KUBECONFIG = REPO / ".cluster/kubeconfig"
CONTEXT = "thunderbolt-local"
NAME = "big"


def experiment_body(n: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": NAME},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": "random", "seed": 1},
            "maxTrials": n,
            "parallelTrials": 1,
            "parameters": [
                {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
                {"name": "width", "type": "categorical", "choices": [8, 16, 32]},
            ],
            "trialTemplate": {
                "image": "localhost/thunderbolt-base:bookworm",
                "dataset": {"uri": "builtin://iris"},
                "epochs": 50,
            },
        },
    }


def finished_status(number: int, x: float) -> dict[str, Any]:
    value = 1 - (x - 0.3) ** 2
    return {
        "phase": "Succeeded",
        "objective": value,
        "metrics": {"val_accuracy": value, "val_loss": x, "epochs": 50},
        "intermediate": [{"step": s, "value": value * s / 50} for s in range(1, 51)],
        "durationSeconds": 12.5,
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:00:12Z",
        "jobName": f"{NAME}-{number:05d}",
        "split": {"seed": 1, "validationHash": "0123456789abcdef"},
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "Completed",
                "message": "trainer exited 0",
                "lastTransitionTime": "2026-01-01T00:00:12Z",
            }
        ],
    }


def fill(custom: Any, ns: str, exp: dict[str, Any], start: int, stop: int) -> float:
    """Trials ``start..stop-1`` created with a finished status; returns seconds taken."""
    spec = parse_spec(exp["spec"])

    def one(i: int) -> None:
        x = (i * 7919 % 1000) / 1000
        body = build_trial(exp, spec, i, {"x": x, "width": [8, 16, 32][i % 3]})
        for attempt in range(5):
            try:
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, "trials", body)
                break
            except client.ApiException as exc:
                if exc.status == 409:
                    break
                time.sleep(1 + attempt)
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, "trials", body["metadata"]["name"],
            {"status": finished_status(i, x)},
        )  # fmt: skip

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(start, stop)))
    return time.monotonic() - began


def timed(func: Any, reps: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        began = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def full_list(custom: Any, ns: str) -> int:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "trials")["items"]
    return len(
        [t for t in items if (t["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL) == NAME]
    )


def cached_list(custom: Any, ns: str) -> tuple[int, int]:
    resp = custom.list_namespaced_custom_object(
        GROUP, VERSION, ns, "trials", label_selector=f"{EXPERIMENT_LABEL}={NAME}",
        resource_version="0", _preload_content=False,
    )  # fmt: skip
    data = resp.data
    return len(json.loads(data)["items"]), len(data)


def compact(api: client.ApiClient, ns: str) -> int:
    """The CLI's read: the Table, rebuilt into compact Trials."""
    trials = selected_trials(Kube(api, ns), f"{EXPERIMENT_LABEL}={NAME}")
    assert not any("jobName" in t["status"] for t in trials), "whole Trials: CRD too old?"
    return len(trials)


def table_bytes(api: client.ApiClient, ns: str) -> int:
    table = Kube(api, ns).table("trials", f"{EXPERIMENT_LABEL}={NAME}")
    assert has_all_columns(table), "the Trial CRD lacks the views' columns"
    return len(json.dumps(table))


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".cluster/bin/kubectl"), f"--kubeconfig={KUBECONFIG}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def cli(ns: str, *args: str) -> float:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    main = "import sys; from thunderbolt.cli import main; sys.exit(main(sys.argv[1:]))"
    kube = ["-n", ns, "--kubeconfig", str(KUBECONFIG), "--context", CONTEXT]
    cmd = [sys.executable, "-c", main, *args, *kube]
    times = []
    for _ in range(3):
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        times.append(time.perf_counter() - began)
        if proc.returncode != 0:
            raise RuntimeError(f"{args}: {proc.stderr[-500:]}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--keep", action="store_true", help="keep the namespace")
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    api = config.new_client_from_config(config_file=str(KUBECONFIG), context=CONTEXT)
    install_crds(kubectl)
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    ns = f"bench-cli-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    results: list[dict[str, Any]] = []
    try:
        exp = custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, "experiments", experiment_body(sizes[-1])
        )
        have = 0
        for n in sizes:
            took = fill(custom, ns, exp, have, n)
            print(f"created Trials {have}..{n - 1} in {took:.0f} s", flush=True)
            have = n
            row: dict[str, Any] = {"n": n}
            row["full_s"], count = timed(lambda: full_list(custom, ns))
            assert count == n, count
            row["cached_s"], (count, row["cached_bytes"]) = timed(lambda: cached_list(custom, ns))
            assert count == n, count
            row["table_s"], count = timed(lambda: compact(api, ns))
            row["table_bytes"] = table_bytes(api, ns)
            assert count == n, count
            row["leaderboard_s"] = cli(ns, "leaderboard", NAME, "--top", "10")
            row["get_s"] = cli(ns, "get", "trials", "--experiment", NAME)
            row["compare_s"] = cli(ns, "compare", NAME, "--by", "width")
            row["get_experiments_s"] = cli(ns, "get", "experiments")  # start-up + one GET
            results.append(row)
            print(
                f"N={n}: full LIST {row['full_s']:.2f} s; label LIST from the watch cache"
                f" {row['cached_s']:.2f} s ({row['cached_bytes'] / 2**20:.1f} MiB); Table, compact"
                f" {row['table_s']:.2f} s ({row['table_bytes'] / 2**20:.1f} MiB);"
                f" thunderbolt leaderboard {row['leaderboard_s']:.2f} s, get trials"
                f" {row['get_s']:.2f} s, compare {row['compare_s']:.2f} s (get experiments,"
                f" i.e. start-up and one request: {row['get_experiments_s']:.2f} s)",
                flush=True,
            )
        if len(results) > 1:
            a, b = results[0], results[-1]
            print(f"ratios N={b['n']} / N={a['n']}:")
            for key in ("full_s", "cached_s", "table_s", "leaderboard_s", "get_s", "compare_s"):
                print(f"  {key:<14} {b[key] / a[key]:.2f}x")
    finally:
        if not args.keep:
            core.delete_namespace(ns)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
