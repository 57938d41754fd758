"""Kopf start-up/clean-up handlers: the report endpoint lives in the operator's event loop.

Listed in ``thunderbolt.operator.main.HANDLER_MODULES``. With several replicas (kopf
peering) every replica serves reports: the Trial is the state, not the replica.
"""

from __future__ import annotations

from typing import Any

import kopf

from thunderbolt.operator.settings import OperatorSettings, current
from thunderbolt.reports.server import ReportServer
from thunderbolt.reports.store import KubeStore


def _settings(memo: Any) -> OperatorSettings:
    settings = getattr(memo, "settings", None)
    return settings if isinstance(settings, OperatorSettings) else current()


@kopf.on.startup()
async def start_report_endpoint(memo: kopf.Memo, logger: Any, **_: Any) -> None:
    settings = _settings(memo)
    server = ReportServer(KubeStore(), host=settings.bind_address, port=settings.report_port)
    port = await server.start()
    memo.report_server = server
    logger.info(f"report endpoint listening on {settings.bind_address}:{port}")


@kopf.on.cleanup()
async def stop_report_endpoint(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "report_server", None)
    if isinstance(server, ReportServer):
        await server.stop()
