"""The dashboard server's safety rules, over real HTTP on a loopback port.

The store is filled with API-shaped dicts (what the watches would put there); no
Kubernetes API is involved: every refusal here happens before one would be called.
"""

from __future__ import annotations

import asyncio
import json
import re
from importlib import resources

import aiohttp
import pytest
from aiohttp import web
from objects import NS, experiment, trials

from thunderbolt.dashboard.kube import Kube
from thunderbolt.dashboard.server import CSP, Dashboard, json_for_script, make_app, page_html
from thunderbolt.dashboard.store import Store

EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\u2028\"'&"


def test_json_for_script_cannot_close_the_script_element():
    text = json_for_script({"name": EVIL, "nested": [EVIL]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": EVIL, "nested": [EVIL]}


def test_page_shell_escapes_title_and_attributes():
    text = page_html("trial", f"Trial {EVIL}", {"name": EVIL}, "tok", False, {"x": EVIL})
    assert "<script>alert" not in text and "<img" not in text
    assert "&lt;/script&gt;" in text and 'data-name="&lt;/script&gt;' in text
    # exactly the two script elements of the shell: the JSON island and app.js
    assert len(re.findall(r"<script", text)) == 2


def test_front_end_never_writes_markup():
    js = resources.files("thunderbolt.dashboard").joinpath("static", "app.js").read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in js, sink
    assert "textContent" in js or "createTextNode" in js


async def _serve(dash: Dashboard) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(dash), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _store() -> Store:
    store = Store()
    store.replace("experiments", [experiment()])
    store.replace("trials", trials())
    store.replace("modeldeployments", [])
    return store


def run(coro):
    return asyncio.run(coro)


@pytest.mark.timeout(60)
def test_pages_answer_with_csp_and_refuse_foreign_hosts_and_bad_names():
    async def go():
        runner, url = await _serve(Dashboard(store=_store(), kube=None))
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/ns/{NS}/experiments/iris") as r:
                    assert r.status == 200 and r.headers["Content-Security-Policy"] == CSP
                    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
                async with http.get(f"{url}/", headers={"Host": "evil.example:8765"}) as r:
                    assert r.status == 421
                async with http.get(f"{url}/", headers={"Host": "localhost:8765"}) as r:
                    assert r.status == 200
                bad = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
                async with http.get(f"{url}/ns/{NS}/trials/{bad}") as r:
                    assert r.status == 404 and "script" not in await r.text()
                async with http.get(f"{url}/api/ns/{NS}/experiments/missing") as r:
                    assert r.status == 404
                async with http.get(f"{url}/static/..%2Fserver.py") as r:
                    assert r.status == 404
                async with http.get(f"{url}/api/ns/{NS}/experiments/iris") as r:
                    view = await r.json()
                    assert view["progress"] == "6/8" and len(view["trials"]) == 7
        finally:
            await runner.cleanup()

    run(go())


@pytest.mark.timeout(60)
def test_actions_need_the_flag_the_csrf_token_and_same_origin():
    async def go():
        off = Dashboard(store=_store(), kube=None)
        on = Dashboard(store=_store(), kube=Kube(api_client=None), allow_actions=True)
        path = f"/api/ns/{NS}/experiments/iris/max-trials"
        runner_off, url_off = await _serve(off)
        runner_on, url_on = await _serve(on)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    url_off + path, json={"maxTrials": 20}, headers={"X-CSRF-Token": off.csrf}
                ) as r:
                    assert r.status == 403 and "--allow-actions" in await r.text()
                async with http.post(url_on + path, json={"maxTrials": 20}) as r:
                    assert r.status == 403 and "CSRF" in await r.text()
                async with http.post(
                    url_on + path, json={"maxTrials": 20}, headers={"X-CSRF-Token": "wrong"}
                ) as r:
                    assert r.status == 403
                good = {"X-CSRF-Token": on.csrf}
                async with http.post(
                    url_on + path,
                    json={"maxTrials": 20},
                    headers={**good, "Origin": "http://evil.example"},
                ) as r:
                    assert r.status == 403 and "cross-origin" in await r.text()
                async with http.post(
                    url_on + path,
                    data="maxTrials=20",
                    headers={**good, "Content-Type": "application/x-www-form-urlencoded"},
                ) as r:
                    assert r.status == 415
                async with http.post(url_on + path, json={"maxTrials": 3}, headers=good) as r:
                    assert r.status == 400 and "from 9" in await r.text()  # must raise it
                async with http.post(url_on + path, json={"maxTrials": "lots"}, headers=good) as r:
                    assert r.status == 400
                async with http.post(
                    url_on + path,
                    data="{not json",
                    headers={**good, "Content-Type": "application/json"},
                ) as r:
                    assert r.status == 400
        finally:
            await runner_off.cleanup()
            await runner_on.cleanup()

    run(go())


@pytest.mark.timeout(60)
def test_one_change_reaches_every_open_stream():
    async def go():
        store = _store()
        runner, url = await _serve(Dashboard(store=store, kube=None))
        try:
            async with aiohttp.ClientSession() as http:
                streams = [await http.get(f"{url}/api/stream") for _ in range(3)]
                for s in streams:
                    assert (await s.content.readline()).startswith(b"event: hello")
                    await s.content.readline()
                    await s.content.readline()
                changed = trials()[6]
                changed["status"]["intermediate"].append({"step": 2, "value": 0.8})
                store.apply("trials", "MODIFIED", changed)
                for s in streams:
                    line = await asyncio.wait_for(s.content.readline(), 5)
                    data = json.loads(line.removeprefix(b"data: "))
                    assert data["kind"] == "trials" and data["name"] == "iris-6"
                    assert data["experiment"] == "iris"
                    s.close()
                assert len(store.listeners) <= 3
        finally:
            await runner.cleanup()

    run(go())


@pytest.mark.timeout(60)
def test_decisions_are_checked_before_any_api_call():
    md = {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": NS, "uid": "md-uid"},
        "spec": {"model": {"trialRef": "iris-000"}, "approval": "Manual"},
        "status": {
            "history": [
                {"number": 1, "outcome": "Promoted"},
                {"number": 2, "outcome": "PendingApproval"},
            ]
        },
    }

    async def go():
        store = _store()
        store.replace("modeldeployments", [md])
        on = Dashboard(store=store, kube=Kube(api_client=None), allow_actions=True)
        off = Dashboard(store=store, kube=None)
        path = f"/api/ns/{NS}/modeldeployments/iris/decision"
        runner_on, url_on = await _serve(on)
        runner_off, url_off = await _serve(off)
        good = {"X-CSRF-Token": on.csrf}
        try:
            async with aiohttp.ClientSession() as http:
                body = {"decision": "approve", "reason": "ok"}
                async with http.post(url_off + path, json=body, headers=good) as r:
                    assert r.status == 403 and "--allow-actions" in await r.text()
                async with http.post(url_on + path, json=body) as r:
                    assert r.status == 403 and "CSRF" in await r.text()
                for bad in (
                    {"decision": "promote", "reason": "x"},
                    {"decision": "approve", "reason": "   "},
                    {"decision": "approve", "reason": "x" * 513},
                    {"decision": "reject", "reason": "x", "revision": "two"},
                ):
                    async with http.post(url_on + path, json=bad, headers=good) as r:
                        assert r.status == 400, bad
                # revision 1 already served: decisions are final, refused before the API
                async with http.post(
                    url_on + path, json={**body, "revision": 1}, headers=good
                ) as r:
                    assert r.status == 400 and "not PendingApproval" in (await r.json())["error"]
                async with http.post(
                    url_on + f"/api/ns/{NS}/modeldeployments/nope/decision", json=body, headers=good
                ) as r:
                    assert r.status == 404
        finally:
            await runner_on.cleanup()
            await runner_off.cleanup()

    run(go())
