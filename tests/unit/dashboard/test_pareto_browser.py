"""The Pareto front on the Experiment page, drawn by the real front end in Chromium.

The store holds API-shaped dicts (what the watches would put there), served over real
HTTP on a loopback port; Debian's Chromium (THUNDERBOLT_CHROMIUM overrides) renders the
page through Playwright. The page must show the same front as `thunderbolt compare`.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from objects import NS, experiment, trial

from thunderbolt.cli.compare import goals_of, pareto_points, pareto_table
from thunderbolt.dashboard.server import Dashboard, make_app
from thunderbolt.dashboard.store import Store

CHROMIUM = os.environ.get("THUNDERBOLT_CHROMIUM", "/usr/bin/chromium")
OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize"},
    {"metric": "latency_ms", "direction": "minimize"},
]
# (accuracy, latency): 0, 1, 3 and 5 are the front; 2 and 4 are dominated by 0 and 3
VALUES = [(0.90, 1.0), (0.95, 3.0), (0.88, 2.0), (0.85, 0.5), (0.84, 0.9), (0.97, 6.0)]


def _trials() -> list[dict[str, Any]]:
    out = []
    for i, (acc, lat) in enumerate(VALUES):
        t = trial(i, "Succeeded", acc, i % 2 == 0, durationSeconds=10)
        t["status"]["metrics"] = {"accuracy": acc, "latency_ms": lat}
        out.append(t)
    out.append(trial(len(VALUES), "Running", None, True))
    return out


def _experiment() -> dict[str, Any]:
    exp = experiment()
    exp["spec"].pop("objective")
    exp["spec"]["objectives"] = OBJECTIVES
    return exp


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    store = Store()
    store.replace("experiments", [_experiment()])
    store.replace("trials", _trials())
    store.replace("modeldeployments", [])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(make_app(Dashboard(store=store, kube=None)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not pathlib.Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: `make install` (hack/install.sh) installs Debian's chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda exc: problems.append(str(exc)))
        pg.problems = problems  # type: ignore[attr-defined]
        yield pg
        browser.close()


@pytest.mark.timeout(120)
def test_the_experiment_page_plots_the_front_the_cli_prints(served, page):
    page.goto(f"{served}/ns/{NS}/experiments/iris")
    section = "section[aria-labelledby='s-pareto-front']"
    page.wait_for_selector(f"{section} svg")
    goals = goals_of(_experiment()["spec"])
    printed = pareto_table(pareto_points(_trials(), goals), goals).splitlines()
    cli_front = [line.split()[:4] for line in printed[1:] if line.split()[1:2] == ["*"]]
    rows = page.eval_on_selector_all(
        f"{section} table.pareto tbody tr",
        "rs => rs.map(r => [...r.cells].map(c => c.textContent.trim()))",
    )
    assert [[r[0], "*", r[1], r[2]] for r in rows] == cli_front
    assert [r[0] for r in rows] == ["iris-5", "iris-1", "iris-0", "iris-3"]
    # every succeeded Trial is a dot; the front's are highlighted, the Running one absent
    front = page.eval_on_selector_all(
        f"{section} circle.front", "cs => cs.map(c => c.dataset.trial)"
    )
    rest = page.eval_on_selector_all(
        f"{section} circle:not(.front)", "cs => cs.map(c => c.dataset.trial)"
    )
    assert sorted(front) == ["iris-0", "iris-1", "iris-3", "iris-5"]
    assert sorted(rest) == ["iris-2", "iris-4"]
    # the front is joined by a line through its points, in order of the first objective
    path = page.get_attribute(f"{section} path.line.front", "d") or ""
    assert path.count("L") == 3
    xs = [float(seg.split()[0]) for seg in path.replace("M", "L").split("L")[1:]]
    assert xs == sorted(xs)
    label = page.get_attribute(f"{section} svg", "aria-label") or ""
    assert "4 of 6 trials on the Pareto front" in label
    assert page.problems == []  # type: ignore[attr-defined]
