"""The dashboard's HTTP server (aiohttp): page shells, JSON view models, live changes.

Safety, by default:
- pages are static shells; every cluster string reaches the browser as JSON and is put
  into the page with ``textContent``/SVG attributes (never markup), and a strict
  Content-Security-Policy forbids inline scripts and event handlers as a second wall;
- on a loopback address only ``Host: localhost|127.0.0.1|[::1]`` is served (no DNS
  rebinding from a web page);
- write actions answer 403 unless the server was started with ``--allow-actions``, and
  then need the per-server CSRF token in ``X-CSRF-Token`` and a same-origin request.
Paths name objects by DNS-1123 names; anything else is a 404 that echoes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from thunderbolt.dashboard import views
from thunderbolt.dashboard.importance import param_importance
from thunderbolt.dashboard.kube import ActionRefused, Kube
from thunderbolt.dashboard.store import Store

log = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
}
KEEPALIVE_SECONDS = 15.0
MAX_BODY = 4096


def json_for_script(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, no
    ``<!--``, no line separators that end a JS string."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def page_html(
    page: str, title: str, params: dict[str, str], csrf: str, actions: bool, initial: Any
) -> str:
    """The shell every page shares; ``title`` and ``params`` are escaped here."""
    attrs = "".join(
        f' data-{html.escape(k, quote=True)}="{html.escape(v, quote=True)}"'
        for k, v in params.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{html.escape(csrf, quote=True)}">
<meta name="actions" content="{"on" if actions else "off"}">
<title>{html.escape(title)} · Thunderbolt</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body data-page="{html.escape(page, quote=True)}"{attrs}>
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><a href="/" class="brand">Thunderbolt</a> <a href="/">Experiments</a> <a href="/deployments">Deployments</a></nav>
<span id="live" class="live" role="status" aria-live="polite">connecting…</span></header>
<main id="main" tabindex="-1"><h1 id="title">{html.escape(title)}</h1><div id="content">Loading…</div></main>
<script type="application/json" id="initial">{json_for_script(initial)}</script>
<script src="/static/app.js"></script>
</body>
</html>
"""


@dataclass
class Dashboard:
    store: Store
    kube: Kube | None
    allow_actions: bool = False
    loopback: bool = True
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    clock: Any = None  # () -> datetime; tests pin it
    _cache: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _importance: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def now(self) -> dt.datetime:
        return self.clock() if self.clock else dt.datetime.now(dt.UTC)

    # -- view models --

    def list_view(self, selector: str = "") -> dict[str, Any]:
        return {
            "kind": "experiments",
            "selector": selector,
            "synced": sorted(self.store.synced),
            "experiments": views.experiments_list(
                self.store.all("experiments"), self.store.all("trials"), self.now(), selector
            ),
        }

    def deployments_view(self) -> dict[str, Any]:
        rows = []
        for md in self.store.all("modeldeployments"):
            v = views.deployment_view(md, [], self.now())
            rows.append({k: v[k] for k in ("namespace", "name", "phase", "strategy", "endpoint")}
                        | {"revision": (v["current"] or {}).get("number")})  # fmt: skip
        return {
            "kind": "deployments",
            "deployments": sorted(rows, key=lambda r: (r["namespace"], r["name"])),
        }

    def experiment_view(self, namespace: str, name: str) -> dict[str, Any] | None:
        experiment = self.store.get("experiments", namespace, name)
        if experiment is None:
            return None
        cached = self._cache.get((namespace, name))
        if cached and cached[0] == self.store.version:
            return cached[1]
        promote = (experiment.get("spec") or {}).get("promote") or {}
        target = promote.get("modelDeployment")
        deployment = self.store.get("modeldeployments", namespace, target) if target else None
        view = views.experiment_view(
            experiment, self.store.trials_of(namespace, name), deployment, self.now()
        )
        view["maxTrials"] = (experiment.get("spec") or {}).get("maxTrials")
        self._cache[(namespace, name)] = (self.store.version, view)
        return view

    def importance(self, namespace: str, name: str) -> dict[str, Any] | None:
        experiment = self.store.get("experiments", namespace, name)
        if experiment is None:
            return None
        trials = self.store.trials_of(namespace, name)
        done = sum(1 for t in trials if (t.get("status") or {}).get("phase") == "Succeeded")
        cached = self._importance.get((namespace, name))
        if cached and cached[0] == done:
            return cached[1]
        result = param_importance(experiment, trials)
        self._importance[(namespace, name)] = (done, result)
        return result

    async def trial_view(self, namespace: str, name: str) -> dict[str, Any] | None:
        trial = self.store.get("trials", namespace, name)
        if trial is None:
            return None
        events: list[dict[str, Any]] = []
        log_tail = None
        if self.kube is not None:
            events, log_tail = await asyncio.gather(
                asyncio.to_thread(self.kube.events, "trials", namespace, name),
                asyncio.to_thread(self.kube.log_tail, namespace, trial),
            )
        return views.trial_view(trial, events, log_tail, self.now())

    async def deployment_view(self, namespace: str, name: str) -> dict[str, Any] | None:
        md = self.store.get("modeldeployments", namespace, name)
        if md is None:
            return None
        events: list[dict[str, Any]] = []
        figures = None
        if self.kube is not None:
            events, figures = await asyncio.gather(
                asyncio.to_thread(self.kube.events, "modeldeployments", namespace, name),
                asyncio.to_thread(self.kube.canary_figures, md),
            )
        view = views.deployment_view(md, events, self.now())
        view["figures"] = figures
        return view


KEY: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)


def _dash(request: web.Request) -> Dashboard:
    return request.app[KEY]


def _names(request: web.Request) -> tuple[str, str]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if not NAME.match(namespace) or not NAME.match(name) or len(namespace) > 63:
        raise web.HTTPNotFound(text="not found")
    return namespace, name


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":"), allow_nan=False),
        status=status,
        content_type="application/json",
    )


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Host check (DNS rebinding), security headers on every answer, no 5xx details."""
    dash = _dash(request)
    if dash.loopback:
        host = (
            (request.host or "").rsplit(":", 1)[0]
            if not request.host.startswith("[")
            else request.host.split("]")[0] + "]"
        )
        if host not in LOOPBACK_HOSTS:
            return web.Response(status=421, text="misdirected request: use http://127.0.0.1")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = web.Response(
            status=exc.status, text=exc.text or exc.reason, content_type=exc.content_type
        )
        for name in ("Allow", "Location"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    except Exception:  # noqa: BLE001 -- logged here; the page gets no internals
        log.exception("dashboard: %s %s", request.method, request.path)
        response = web.Response(status=503, text="the dashboard could not answer; see its log")
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _page(
    request: web.Request, page: str, title: str, params: dict[str, str], initial: Any
) -> web.Response:
    dash = _dash(request)
    text = page_html(page, title, params, dash.csrf, dash.allow_actions, initial)
    return web.Response(text=text, content_type="text/html")


async def index(request: web.Request) -> web.Response:
    selector = request.query.get("selector", "")[:512]
    return _page(
        request,
        "experiments",
        "Experiments",
        {"selector": selector},
        _dash(request).list_view(selector),
    )


async def deployments_page(request: web.Request) -> web.Response:
    return _page(request, "deployments", "Deployments", {}, _dash(request).deployments_view())


async def experiment_page(request: web.Request) -> web.Response:
    namespace, name = _names(request)
    view = _dash(request).experiment_view(namespace, name)
    if view is None:
        raise web.HTTPNotFound(text="experiment not found")
    return _page(
        request, "experiment", f"Experiment {name}", {"namespace": namespace, "name": name}, view
    )


async def trial_page(request: web.Request) -> web.Response:
    namespace, name = _names(request)
    view = await _dash(request).trial_view(namespace, name)
    if view is None:
        raise web.HTTPNotFound(text="trial not found")
    return _page(request, "trial", f"Trial {name}", {"namespace": namespace, "name": name}, view)


async def deployment_page(request: web.Request) -> web.Response:
    namespace, name = _names(request)
    view = await _dash(request).deployment_view(namespace, name)
    if view is None:
        raise web.HTTPNotFound(text="modeldeployment not found")
    return _page(
        request,
        "modeldeployment",
        f"ModelDeployment {name}",
        {"namespace": namespace, "name": name},
        view,
    )


async def api_experiments(request: web.Request) -> web.Response:
    return _json(_dash(request).list_view(request.query.get("selector", "")[:512]))


async def api_deployments(request: web.Request) -> web.Response:
    return _json(_dash(request).deployments_view())


async def api_experiment(request: web.Request) -> web.Response:
    view = _dash(request).experiment_view(*_names(request))
    if view is None:
        raise web.HTTPNotFound(text="experiment not found")
    return _json(view)


async def api_importance(request: web.Request) -> web.Response:
    dash = _dash(request)
    namespace, name = _names(request)
    result = await asyncio.to_thread(dash.importance, namespace, name)
    if result is None:
        raise web.HTTPNotFound(text="experiment not found")
    return _json(result)


async def api_trial(request: web.Request) -> web.Response:
    view = await _dash(request).trial_view(*_names(request))
    if view is None:
        raise web.HTTPNotFound(text="trial not found")
    return _json(view)


async def api_deployment(request: web.Request) -> web.Response:
    view = await _dash(request).deployment_view(*_names(request))
    if view is None:
        raise web.HTTPNotFound(text="modeldeployment not found")
    return _json(view)


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one line per change the shared watches saw."""
    dash = _dash(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP,
        }
    )
    await response.prepare(request)
    queue = dash.store.listen()
    try:
        await response.write(b"event: hello\ndata: {}\n\n")
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            change = dict(change, sent=time.time())
            await response.write(f"data: {json.dumps(change)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        dash.store.unlisten(queue)
    return response


async def _action_body(request: web.Request) -> dict[str, Any]:
    """Refuse unless actions are on, the CSRF token matches and the request is same-origin."""
    dash = _dash(request)
    if not dash.allow_actions or dash.kube is None:
        raise web.HTTPForbidden(text="actions are off: start the dashboard with --allow-actions")
    token = request.headers.get("X-CSRF-Token", "")
    if not hmac.compare_digest(token.encode(), dash.csrf.encode()):
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        raise web.HTTPForbidden(text="cross-origin request refused")
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY, actual_size=request.content_length or 0
        )
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="the body is not JSON") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def _int_field(
    body: dict[str, Any], key: str, low: int, high: int, optional: bool = False
) -> int | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{key} must be an integer from {low} to {high}")
    return value


def _stored(request: web.Request, kind: str) -> tuple[str, str, dict[str, Any]]:
    """The object an action names, from the watch-fed store; 404 when it is not there."""
    namespace, name = _names(request)
    obj = _dash(request).store.get(kind, namespace, name)
    if obj is None:
        raise web.HTTPNotFound(text=f"{kind[:-1]} not found")
    return namespace, name, obj


REFUSALS: dict[int, type[web.HTTPClientError]] = {
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
}


async def _perform(write: Callable[..., Any], *args: Any) -> Any:
    """Runs a write with the caller's credentials off the event loop; a refusal is 4xx."""
    try:
        return await asyncio.to_thread(write, *args)
    except ActionRefused as exc:
        refusal = REFUSALS.get(exc.status, web.HTTPBadRequest)
        raise refusal(
            text=json.dumps({"error": str(exc)}), content_type="application/json"
        ) from exc


async def action_max_trials(request: web.Request) -> web.Response:
    body = await _action_body(request)
    namespace, name, experiment = _stored(request, "experiments")
    current = int((experiment.get("spec") or {}).get("maxTrials") or 0)
    value = _int_field(body, "maxTrials", current + 1, 100000)
    kube = _dash(request).kube
    assert value is not None and kube is not None
    await _perform(kube.set_max_trials, namespace, name, value)
    return _json({"ok": True, "maxTrials": value})


async def action_decision(request: web.Request) -> web.Response:
    """Approve or reject the revision waiting for approval (``spec.approval: Manual``)."""
    body = await _action_body(request)
    namespace, name, md = _stored(request, "modeldeployments")
    decision = body.get("decision")
    if decision not in ("approve", "reject"):
        raise web.HTTPBadRequest(text="decision must be 'approve' or 'reject'")
    reason = body.get("reason")
    if not isinstance(reason, str) or not 0 < len(" ".join(reason.split())) <= 512:
        raise web.HTTPBadRequest(text="reason must be 1 to 512 characters")
    revision = _int_field(body, "revision", 1, 10**9, optional=True)
    kube = _dash(request).kube
    assert kube is not None
    reason = " ".join(reason.split())
    number = await _perform(kube.decide, namespace, name, md, decision, revision, reason)
    return _json({"ok": True, "revision": number, "decision": decision})


async def action_rollback(request: web.Request) -> web.Response:
    body = await _action_body(request)
    namespace, name, md = _stored(request, "modeldeployments")
    to = _int_field(body, "revision", 1, 10**9, optional=True)
    kube = _dash(request).kube
    assert kube is not None
    target = await _perform(kube.rollback, namespace, name, md, to)
    return _json({"ok": True, "rollbackTo": target})


async def static(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if not re.fullmatch(r"[a-z0-9_-]+\.[a-z]+", name) or suffix not in STATIC_TYPES:
        raise web.HTTPNotFound(text="not found")
    resource = resources.files("thunderbolt.dashboard").joinpath("static", name)
    if not resource.is_file():
        raise web.HTTPNotFound(text="not found")
    return web.Response(body=resource.read_bytes(), content_type=STATIC_TYPES[suffix])


async def healthz(request: web.Request) -> web.Response:
    return _json({"synced": sorted(_dash(request).store.synced)})


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


def make_app(dashboard: Dashboard) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[KEY] = dashboard
    ns_name = "/ns/{namespace}/{kind}/{name}"
    app.router.add_get("/", index)
    app.router.add_get("/deployments", deployments_page)
    app.router.add_get(ns_name.replace("{kind}", "experiments"), experiment_page)
    app.router.add_get(ns_name.replace("{kind}", "trials"), trial_page)
    app.router.add_get(ns_name.replace("{kind}", "modeldeployments"), deployment_page)
    app.router.add_get("/api/experiments", api_experiments)
    app.router.add_get("/api/deployments", api_deployments)
    app.router.add_get("/api" + ns_name.replace("{kind}", "experiments"), api_experiment)
    app.router.add_get(
        "/api" + ns_name.replace("{kind}", "experiments") + "/importance", api_importance
    )
    app.router.add_get("/api" + ns_name.replace("{kind}", "trials"), api_trial)
    app.router.add_get("/api" + ns_name.replace("{kind}", "modeldeployments"), api_deployment)
    app.router.add_post(
        "/api" + ns_name.replace("{kind}", "experiments") + "/max-trials", action_max_trials
    )
    app.router.add_post(
        "/api" + ns_name.replace("{kind}", "modeldeployments") + "/rollback", action_rollback
    )
    app.router.add_post(
        "/api" + ns_name.replace("{kind}", "modeldeployments") + "/decision", action_decision
    )
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/static/{file}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/favicon.ico", no_content)
    return app
