"""Kopf start-up/clean-up handlers: the report endpoint lives in the operator's event loop.

Imported by ``thunderbolt.main``. With several replicas (kopf peering) every replica
serves reports: the Trial is the state, not the replica. The write-behind delay comes
from ``settings.report_write_delay`` (``THUNDERBOLT_REPORT_WRITE_DELAY``).
"""

from __future__ import annotations

from typing import Any

import kopf

from thunderbolt.reports.server import ReportServer
from thunderbolt.reports.service import ServiceConfig
from thunderbolt.reports.store import KubeStore
from thunderbolt.settings import current


@kopf.on.startup()
async def start_report_endpoint(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    settings = current()
    server = ReportServer(
        KubeStore(),
        host=settings.bind_address,
        port=settings.report_port,
        config=ServiceConfig(write_delay=settings.report_write_delay, in_scope=settings.in_scope),
    )
    port = await server.start()
    memo.report_server = server
    logger.info(f"report endpoint listening on {settings.bind_address}:{port}")


@kopf.on.cleanup()
async def stop_report_endpoint(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "report_server", None)
    if isinstance(server, ReportServer):
        await server.stop()
