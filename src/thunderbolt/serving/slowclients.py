"""Timeouts for slow clients: aiohttp has none for request headers.

Without them a client that sends half a request line, or half its headers, holds its
connection (and its buffer) for as long as it likes: 50 of 50 such connections were
still open after 6 s. ``GuardedRequestHandler`` starts a timer when a connection opens
and at the first byte of each later request; unless the request's headers are complete
(the request reached the handler) when it fires, the connection is closed. The body has
its own deadline, enforced where the handler reads it (``app.read_body``), and idle
keep-alive connections aiohttp's ``keepalive_timeout``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from thunderbolt.serving.protocol import error_body


class GuardedRequestHandler(RequestHandler):  # type: ignore[type-arg]
    """aiohttp's connection handler with a deadline for each request's headers."""

    header_timeout_s: float = 10.0
    _tb_timer: asyncio.TimerHandle | None = None
    _tb_in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._tb_arm()

    def data_received(self, data: bytes) -> None:
        if self._tb_timer is None and not self._tb_in_request and data:
            self._tb_arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._tb_cancel()
        super().connection_lost(exc)

    def request_started(self) -> None:
        """The headers are complete: from here the body deadline applies."""
        self._tb_in_request = True
        self._tb_cancel()

    def request_finished(self) -> None:
        self._tb_in_request = False
        self._tb_cancel()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (a garbage request line,
        oversized headers), as a V2 JSON error rather than its text page."""
        response = super().handle_error(request, status, exc, message)
        if isinstance(response, web.Response):
            reason = " ".join(str(exc or message or "bad request").split())[:300]
            response.body = error_body(f"malformed HTTP request: {reason}")
            response.content_type = "application/json"
        return response

    def _tb_arm(self) -> None:
        self._tb_cancel()
        self._tb_timer = self._loop.call_later(self.header_timeout_s, self._tb_expired)

    def _tb_cancel(self) -> None:
        if self._tb_timer is not None:
            self._tb_timer.cancel()
            self._tb_timer = None

    def _tb_expired(self) -> None:
        self._tb_timer = None
        if not self._tb_in_request:
            self.force_close()


def _guarded_server(server: web.Server, header_timeout_s: float) -> web.Server:
    """``server`` making guarded connection handlers (same arguments as aiohttp's)."""
    handler_class = type(
        "GuardedRequestHandlerWithTimeout",
        (GuardedRequestHandler,),
        {"header_timeout_s": header_timeout_s},
    )

    class _Server(web.Server):  # type: ignore[misc]
        def __call__(self) -> RequestHandler:  # type: ignore[type-arg]
            return handler_class(self, loop=self._loop, **self._kwargs)  # type: ignore[no-any-return]

    server.__class__ = _Server
    return server


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections have a header deadline."""

    def __init__(self, app: web.Application, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        return _guarded_server(await super()._make_server(), self.header_timeout_s)


def request_started(request: web.BaseRequest) -> None:
    protocol = request.protocol
    if isinstance(protocol, GuardedRequestHandler):
        protocol.request_started()


def request_finished(request: web.BaseRequest) -> None:
    protocol = request.protocol
    if isinstance(protocol, GuardedRequestHandler):
        protocol.request_finished()
