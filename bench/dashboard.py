"""Dashboard speed: the Experiment page with 1000 Trials, the list with 10 000 Trials in 50
Experiments. Prints the view-model build time, the server's response time, the time to
first render in headless Chromium (Debian's /usr/bin/chromium through Playwright), the
server's memory, and the API requests the page views made.

    PYTHONPATH=src .venv/bin/python bench/dashboard.py [--trials 1000] [--no-browser]

Synthetic Trials (as the API returns them) go straight into the dashboard's store: the
watches are what a cluster would feed it, and a page view never asks the API server for
Experiments or Trials (printed as "API requests per page view").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import resource
import statistics
import sys
import time
from typing import Any

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
PARAMETERS = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {"name": "hidden", "type": "int", "low": 8, "high": 256},
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5},
    {"name": "spectral_norm", "type": "categorical", "choices": [True, False]},
    {"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd", "adamw"]},
]


def experiment(name: str, namespace: str, max_trials: int) -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {
            "name": name, "namespace": namespace, "uid": f"uid-{name}",
            "labels": {"app": "bench"}, "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": {
            "maxTrials": max_trials, "parallelTrials": 4,
            "objective": {"metric": "accuracy", "direction": "maximize"},
            "algorithm": {"name": "tpe"}, "parameters": PARAMETERS,
        },
        "status": {"phase": "Running", "startTime": "2026-01-01T10:00:00Z"},
    }  # fmt: skip


def trial(exp: str, namespace: str, number: int, rng: random.Random) -> dict[str, Any]:
    params = {
        "lr": 10 ** rng.uniform(-4, -1),
        "hidden": rng.randint(8, 256),
        "dropout": rng.uniform(0, 0.5),
        "spectral_norm": rng.random() < 0.5,
        "optimizer": rng.choice(["adam", "sgd", "adamw"]),
    }
    quality = 1 - abs(math.log10(params["lr"]) + 2.5) / 3 + 0.03 * params["spectral_norm"]
    phase = rng.choices(["Succeeded", "Failed", "Pruned", "Running"], [85, 3, 10, 2])[0]
    objective = round(min(0.99, max(0.3, 0.6 + 0.35 * quality + rng.gauss(0, 0.02))), 5)
    status: dict[str, Any] = {
        "phase": phase,
        "intermediate": [
            {"step": s, "value": round(objective * (1 - math.exp(-(s + 1) / 3)), 5)}
            for s in range(10)
        ],
        "startTime": "2026-01-01T10:00:00Z",
    }
    if phase == "Succeeded":
        status |= {"objective": objective, "durationSeconds": rng.uniform(30, 300)}
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Trial",
        "metadata": {
            "name": f"{exp}-{number:05d}", "namespace": namespace,
            "labels": {"thunderbolt.io/experiment": exp},
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": {
            "experiment": exp, "number": number, "parameters": params,
            "objective": {"metric": "accuracy", "direction": "maximize"},
        },
        "status": status,
    }  # fmt: skip


def fill(store: Any, experiments: int, trials_each: int, seed: int = 0, ns: str = "bench") -> None:
    rng = random.Random(seed)
    exps, trials = [], []
    for i in range(experiments):
        name = f"exp-{i:03d}"
        exps.append(experiment(name, ns, trials_each))
        trials += [trial(name, ns, n, rng) for n in range(trials_each)]
    store.replace("experiments", exps)
    store.replace("trials", trials)
    store.replace("modeldeployments", [])


def timed(func: Any, repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def serve(dash: Any) -> tuple[Any, int]:
    from aiohttp import web

    from thunderbolt.dashboard.server import make_app

    runner = web.AppRunner(make_app(dash), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def browser_times(port: int, paths: dict[str, str], chromium: str) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {k: [] for k in paths}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        for _ in range(4):
            for label, path in paths.items():
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}{path}", wait_until="commit")
                page.wait_for_function("document.body.dataset.rendered >= 1")
                out[label].append(time.perf_counter() - start)
        browser.close()
    return {k: v[1:] for k, v in out.items()}  # the first visit warms the browser up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--experiments", type=int, default=50, help="for the list page")
    parser.add_argument("--list-trials", type=int, default=10000)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from thunderbolt.dashboard import views
    from thunderbolt.dashboard.importance import param_importance
    from thunderbolt.dashboard.server import Dashboard, page_html
    from thunderbolt.dashboard.store import Store

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    base_rss = rss_mib()
    big = Store()
    fill(big, 1, args.trials)
    exp = big.get("experiments", "bench", "exp-000")
    trials = big.trials_of("bench", "exp-000")
    build, view = timed(lambda: views.experiment_view(exp, trials, None, NOW))
    body = json.dumps(view)
    shell, _ = timed(lambda: page_html("experiment", "x", {}, "t", False, view))
    imp, result = timed(lambda: param_importance(exp, trials), repeat=1)
    print(f"experiment page, {args.trials} trials: view model {build * 1000:.1f} ms, "
          f"JSON {len(body) / 1024:.0f} KiB, page shell {shell * 1000:.1f} ms, "
          f"importance ({result['evaluator']}) {imp * 1000:.0f} ms")  # fmt: skip

    wide = Store()
    per = args.list_trials // args.experiments
    fill(wide, args.experiments, per, seed=1, ns="bench-list")
    lst, rows = timed(
        lambda: views.experiments_list(wide.all("experiments"), wide.all("trials"), NOW)
    )
    print(f"list page, {len(rows)} experiments x {per} trials: view model {lst * 1000:.1f} ms")
    print(f"server memory with both stores ({args.trials + args.list_trials} Trials): "
          f"{rss_mib() - base_rss:.0f} MiB over a {base_rss:.0f} MiB start")  # fmt: skip

    async def run_server() -> None:
        import aiohttp

        dash = Dashboard(store=big, kube=None, clock=lambda: NOW)
        for kind in ("experiments", "trials", "modeldeployments"):
            big.objects[kind].update(wide.objects[kind])
        big.by_experiment.update(wide.by_experiment)
        runner, port = await serve(dash)
        try:
            async with aiohttp.ClientSession() as http:
                for label, path in (
                    ("experiment page", "/ns/bench/experiments/exp-000"),
                    ("list page", "/"),
                ):
                    times = []
                    for i in range(6):
                        big.version += 1  # a change since the last view: rebuilt, not cached
                        start = time.perf_counter()
                        async with http.get(f"http://127.0.0.1:{port}{path}") as r:
                            await r.read()
                        if i:
                            times.append(time.perf_counter() - start)
                    print(
                        f"server response, {label}: median {statistics.median(times) * 1000:.1f} ms"
                    )
            if not args.no_browser:
                # baseline in the same run: the (empty) deployments page, the same shell and JS
                paths = {"experiment page": "/ns/bench/experiments/exp-000", "list page": "/",
                         "baseline (empty page)": "/deployments"}  # fmt: skip
                got = await asyncio.to_thread(browser_times, port, paths, args.chromium)
                base = statistics.median(got["baseline (empty page)"])
                for label, times in got.items():
                    print(f"time to first render in chromium, {label}: median "
                          f"{statistics.median(times) * 1000:.0f} ms (target < 1000 ms), "
                          f"{statistics.median(times) / base:.1f}x the empty page")  # fmt: skip
        finally:
            await runner.cleanup()

    asyncio.run(run_server())
    print("API requests per page view for Experiments/Trials: 0 "
          "(pages read the store fed by 3 shared watches; Trial pages add 3: Events, pods, log)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
