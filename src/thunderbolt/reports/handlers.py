"""Kopf start-up/clean-up handlers: the report endpoint lives in the operator's event loop.

Listed in ``thunderbolt.operator.main.HANDLER_MODULES``. With several replicas (kopf
peering) every replica serves reports: the Trial is the state, not the replica.
``THUNDERBOLT_REPORT_WRITE_DELAY`` (seconds, default 0.2; 0 = write before answering)
sets the write-behind delay.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

from thunderbolt.operator.settings import OperatorSettings, current
from thunderbolt.reports.server import DEFAULT_WRITE_DELAY, ReportServer
from thunderbolt.reports.service import ServiceConfig
from thunderbolt.reports.store import KubeStore


def _settings(memo: Any) -> OperatorSettings:
    settings = getattr(memo, "settings", None)
    return settings if isinstance(settings, OperatorSettings) else current()


@kopf.on.startup()
async def start_report_endpoint(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    settings = _settings(memo)
    delay = float(os.environ.get("THUNDERBOLT_REPORT_WRITE_DELAY") or DEFAULT_WRITE_DELAY)
    server = ReportServer(
        KubeStore(),
        host=settings.bind_address,
        port=settings.report_port,
        config=ServiceConfig(write_delay=delay),
    )
    port = await server.start()
    memo.report_server = server
    logger.info(f"report endpoint listening on {settings.bind_address}:{port}")


@kopf.on.cleanup()
async def stop_report_endpoint(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "report_server", None)
    if isinstance(server, ReportServer):
        await server.stop()
