"""The HTTP endpoint (aiohttp) in front of ``ReportService``.

Runs inside the operator's event loop (see ``handlers``) or on its own
(``python -m thunderbolt.reports --port 8081``) for tests and benchmarks. Stateless
apart from caches: any number of replicas may serve the same Trials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from thunderbolt.api.report_schema import MAX_BODY_BYTES, ROUTE, ErrorReply
from thunderbolt.reports.errors import NotFound, Rejected, TooLarge
from thunderbolt.reports.service import ReportService, ServiceConfig
from thunderbolt.reports.store import TrialStore
from thunderbolt.settings import DEFAULT_REPORT_WRITE_DELAY

log = logging.getLogger(__name__)
SERVICE_KEY: web.AppKey[ReportService] = web.AppKey("service", ReportService)
# What the operator and ``python -m thunderbolt.reports`` use unless told otherwise
# (THUNDERBOLT_REPORT_WRITE_DELAY / --write-delay); see ``writer`` for the trade-off.
DEFAULT_WRITE_DELAY = DEFAULT_REPORT_WRITE_DELAY


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=json.dumps)


def _error(exc: Rejected) -> web.Response:
    return _json(exc.status, ErrorReply(error=exc.code, message=exc.message).model_dump())


async def _report(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        return _error(TooLarge(f"report bodies are limited to {MAX_BODY_BYTES} bytes"))
    try:
        body = await request.content.read(MAX_BODY_BYTES + 1)
    except (asyncio.IncompleteReadError, ConnectionError):
        return _error(TooLarge("incomplete body"))
    status, reply, headers = await service.handle(
        request.match_info["namespace"],
        request.match_info["trial"],
        authorization=request.headers.get("Authorization"),
        content_type=request.headers.get("Content-Type"),
        body=body,
        source=request.remote,
    )
    return _json(status, reply, headers)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own 404/405 as the same JSON error shape as every other rejection."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(NotFound("no such endpoint"))
        code = exc.reason.lower().replace(" ", "_")
        return _json(exc.status, ErrorReply(error=code, message=exc.reason).model_dump())


def make_app(service: ReportService, *, expose_metrics: bool = False) -> web.Application:
    """``expose_metrics``: serve /metrics here too (standalone; the operator has its own port)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[_errors_as_json])
    app[SERVICE_KEY] = service
    app.router.add_post(ROUTE, _report)
    app.router.add_get("/healthz", _healthz)
    if expose_metrics:
        app.router.add_get("/metrics", _metrics)

    async def _lifecycle(app: web.Application) -> Any:
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(_lifecycle)
    return app


class ReportServer:
    """Start/stop the endpoint inside an already running event loop."""

    def __init__(
        self,
        store: TrialStore,
        *,
        host: str = "0.0.0.0",
        port: int = 8081,
        config: ServiceConfig | None = None,
        expose_metrics: bool = False,
    ) -> None:
        self.service = ReportService(store, config)
        self.expose_metrics = expose_metrics
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._runner = web.AppRunner(
            make_app(self.service, expose_metrics=self.expose_metrics), access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("report endpoint listening on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint alone against the cluster in KUBECONFIG (tests, benchmarks)."""
    parser = argparse.ArgumentParser(prog="python -m thunderbolt.reports")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context", help="kubeconfig context (default: its current one)")
    parser.add_argument("--rate", type=float, default=ServiceConfig.rate)
    parser.add_argument("--burst", type=float, default=ServiceConfig.burst)
    parser.add_argument(
        "--write-delay",
        type=float,
        default=DEFAULT_WRITE_DELAY,
        help="seconds a report may wait to be written (0: acknowledge after writing)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from kubernetes import config as kube_config

    from thunderbolt.reports.store import KubeStore

    if args.kubeconfig or args.context:
        kube_config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    else:
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            kube_config.load_kube_config()

    async def serve() -> None:
        server = ReportServer(
            KubeStore(),
            host=args.host,
            port=args.port,
            config=ServiceConfig(rate=args.rate, burst=args.burst, write_delay=args.write_delay),
            expose_metrics=True,
        )
        port = await server.start()
        print(f"thunderbolt reports: listening on {args.host}:{port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0
