"""One shared ApiClient vs one per call: what the operator pays per API request.

The kubernetes client builds a new ``ApiClient`` (a new urllib3 pool, so a new TCP
connection and TLS handshake) for every ``CustomObjectsApi()``/``CoreV1Api()`` made
without one, which is how ``operator/kube.py`` makes each call. ``kubeclient.load_config``
now registers one shared client (``share_default_client``). This bench runs the same
requests both ways against the real API server, each way in a fresh interpreter:

* a chain of 10 sequential GETs (the operator's path from a finished Trial to its
  successor's Job is about ten requests one after the other): p50/p95 of the chain;
* 16 threads (Kopf's handler threads) making ``--calls`` GETs in all: CPU per request
  and the process's RSS growth.

    PYTHONPATH=src .venv/bin/python bench/kube_client_reuse.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KUBECONFIG = REPO / ".cluster/kubeconfig"
CONTEXT = "thunderbolt-local"


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(shared: bool, calls: int) -> dict[str, Any]:
    from kubernetes import client, config

    from thunderbolt.kubeclient import share_default_client

    config.load_kube_config(config_file=str(KUBECONFIG), context=CONTEXT)
    if shared:
        share_default_client()

    def get(_: int = 0) -> None:  # as operator/kube.py calls: a new XxxApi() each time
        json.loads(client.CoreV1Api().read_namespace("default", _preload_content=False).data)

    get()  # warm: imports, first connection
    chains = []
    for _ in range(30):
        began = time.perf_counter()
        for _ in range(10):
            get()
        chains.append(time.perf_counter() - began)
    rss0, cpu0, wall0 = rss_kb(), time.process_time(), time.perf_counter()

    def worker(_: int) -> None:  # one task per thread: no queue of futures to grow RSS
        for _ in range(calls // 16):
            get()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(worker, range(16)))
    calls = calls // 16 * 16
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    q = statistics.quantiles(chains, n=20)
    return {
        "chain_p50_ms": statistics.median(chains) * 1000,
        "chain_p95_ms": q[18] * 1000,
        "cpu_ms_per_call": cpu / calls * 1000,
        "calls_per_s": calls / wall,
        "rss_growth_kb": rss_kb() - rss0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--child", choices=["shared", "per-call"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "shared", args.calls)))
        return 0
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    out = {}
    for mode in ("per-call", "shared"):
        cmd = [sys.executable, __file__, "--child", mode, "--calls", str(args.calls)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = out["per-call"], out["shared"]
    print(f"{'':<34}{'client per call':>16}{'shared client':>16}{'ratio':>8}")
    for key, label in (
        ("chain_p50_ms", "10 sequential GETs, p50 (ms)"),
        ("chain_p95_ms", "10 sequential GETs, p95 (ms)"),
        ("cpu_ms_per_call", "CPU per request (ms)"),
        ("calls_per_s", "requests/s, 16 threads"),
        ("rss_growth_kb", f"RSS growth over {args.calls} (KB)"),
    ):
        ratio = b[key] / a[key] if a[key] else float("nan")
        print(f"{label:<34}{a[key]:>16.1f}{b[key]:>16.1f}{ratio:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
