"""Fixtures for the dashboard's browser tests: real cluster, real server, real Chromium.

- ``dashboard(namespace)`` starts the dashboard in this process (its own event loop in a
  thread) with the test cluster's credentials, watching the test's namespace;
- ``browser`` is Debian's /usr/bin/chromium (THUNDERBOLT_CHROMIUM overrides) driven by
  Playwright; no browser is ever downloaded;
- ``shots`` saves screenshots as artifacts (THUNDERBOLT_ARTIFACTS, default
  /tmp/thunderbolt-artifacts/dashboard) and, with THUNDERBOLT_UPDATE_DOC_IMAGES=1, into
  docs/images/dashboard/ too.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.crds import crds  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("THUNDERBOLT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = (
    pathlib.Path(os.environ.get("THUNDERBOLT_ARTIFACTS", "/tmp/thunderbolt-artifacts"))
    / "dashboard"
)
DOC_IMAGES = REPO / "docs" / "images" / "dashboard"


@dataclass
class Running:
    url: str
    dashboard: Any
    watchers: list[Any]


@pytest.fixture
def dashboard(kube_api, namespace, crds) -> Iterator[Running]:  # noqa: F811
    from thunderbolt.dashboard.run import start

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, dash, watchers = asyncio.run_coroutine_threadsafe(
        start(kube_api, [namespace], "127.0.0.1", 0, allow_actions=False), loop
    ).result(30)
    port = runner.addresses[0][1]
    yield Running(f"http://127.0.0.1:{port}", dash, watchers)
    for w in watchers:
        w.stop()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not pathlib.Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: `make install` (hack/install.sh) installs Debian's chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    # The page's Content-Security-Policy is bypassed: Playwright's polling needs eval, and
    # the injection test then proves that escaping alone keeps markup inert (the CSP is a
    # second wall, checked in tests/unit/dashboard).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def shots() -> Callable[[Any, str], pathlib.Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(pg: Any, name: str) -> pathlib.Path:
        path = ARTIFACTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        if os.environ.get("THUNDERBOLT_UPDATE_DOC_IMAGES") == "1":
            DOC_IMAGES.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(DOC_IMAGES / f"{name}.png"), full_page=False)
        return path

    return save
