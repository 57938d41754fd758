"""The aiohttp application: V2 endpoints, /metrics, and V2 error bodies for every failure.

Handlers only route and translate: decoding lives in ``protocol``, running in
``batching``. A middleware turns aiohttp's own 404/405/413 into ``{"error": ...}``
bodies, so a V2 client always gets an error it can show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import thunderbolt
from thunderbolt.serving.batching import Batcher
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.model import ModelRunError, OnnxModel
from thunderbolt.serving.protocol import (
    InferError,
    encode_infer_response,
    error_body,
    parse_infer_request,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OFFLOAD_BYTES = 256 * 1024  # bodies/results above this are (de)coded in a worker thread


@dataclasses.dataclass
class ServingState:
    """Everything the handlers share; the model fields are set once loading succeeds."""

    model_name: str
    model_version: str
    metrics: ServingMetrics
    max_body_bytes: int = 16 * 1024 * 1024
    model: OnnxModel | None = None
    batcher: Batcher | None = None
    draining: bool = False
    inflight: int = 0
    idle: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    not_ready_reason: str = "model is loading"
    # With several workers on one port: whether every one of them has loaded the model, so
    # the pod turns ready only when no connection can land on a worker still loading.
    peers_ready: Callable[[], bool] = lambda: True
    _by_code: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False)
    _duration: Any = dataclasses.field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.draining and self.peers_ready()

    def count(self, code: int, seconds: float) -> None:
        """Record one inference request of the served model (label children cached: the
        ``labels()`` lookups were a visible share of a small model's request)."""
        counter = self._by_code.get(code)
        if counter is None:
            counter = self._by_code[code] = self.metrics.requests.labels(self.model_name, str(code))
        counter.inc()
        if self._duration is None:
            self._duration = self.metrics.duration.labels(self.model_name)
        self._duration.observe(seconds)

    def serve(self, model: OnnxModel, batcher: Batcher) -> None:
        self.model, self.batcher = model, batcher
        self.metrics.ready.labels(self.model_name).set(1)

    async def drained(self) -> None:
        """Returns once no inference request is in flight."""
        while self.inflight:
            self.idle.clear()
            await self.idle.wait()


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=json.dumps(document), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=error_body(message), content_type="application/json")


@web.middleware
async def v2_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:  # routing: unknown path, wrong method, too large
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason if exc.text is None else exc.text.strip())
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal server error")


STATE: web.AppKey[ServingState] = web.AppKey("state", ServingState)


def _state(request: web.Request) -> ServingState:
    return request.app[STATE]


def _check_model(request: web.Request) -> ServingState:
    state = _state(request)
    name = request.match_info["name"]
    version = request.match_info.get("version")
    if name != state.model_name:
        raise InferError(404, f"unknown model {name!r}; this server serves {state.model_name!r}")
    if version is not None and version != state.model_version:
        raise InferError(
            404, f"unknown version {version!r} of {name!r}; serving version {state.model_version!r}"
        )
    return state


async def live(request: web.Request) -> web.Response:
    return _json(200, {"live": True})


async def ready(request: web.Request) -> web.Response:
    state = _state(request)
    if state.ready:
        return _json(200, {"ready": True})
    reason = "shutting down" if state.draining else state.not_ready_reason
    if state.model is not None and not state.draining:
        reason = "waiting for the other worker processes to load the model"
    return _json(503, {"ready": False, "error": reason})


async def server_metadata(request: web.Request) -> web.Response:
    return _json(
        200,
        {
            "name": "thunderbolt",
            "version": thunderbolt.__version__,
            "extensions": ["binary_tensor_data"],
        },
    )


async def model_metadata(request: web.Request) -> web.Response:
    try:
        state = _check_model(request)
    except InferError as exc:
        return _error(exc.status, exc.message)
    if state.model is None:
        return _error(503, f"model {state.model_name!r} is not ready: {state.not_ready_reason}")
    return _json(
        200,
        {
            "name": state.model_name,
            "versions": [state.model_version],
            "platform": "onnxruntime_onnx",
            "inputs": [s.as_metadata() for s in state.model.inputs],
            "outputs": [s.as_metadata() for s in state.model.outputs],
        },
    )


async def model_ready(request: web.Request) -> web.Response:
    try:
        state = _check_model(request)
    except InferError as exc:
        return _error(exc.status, exc.message)
    if not state.ready:
        return _json(503, {"name": state.model_name, "ready": False})
    return _json(200, {"name": state.model_name, "ready": True})


async def infer(request: web.Request) -> web.Response:
    state = _state(request)
    started = time.perf_counter()
    state.inflight += 1
    code = 500
    try:
        response = await _infer(request, state)
        code = response.status
        return response
    finally:
        state.inflight -= 1
        if not state.inflight:
            state.idle.set()
        if request.match_info["name"] == state.model_name:
            state.count(code, time.perf_counter() - started)


async def _infer(request: web.Request, state: ServingState) -> web.Response:
    try:
        _check_model(request)
        if state.model is None or state.batcher is None:
            return _error(503, f"model {state.model_name!r} is not ready")
        with state.batcher.arrival():
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _error(413, f"request body larger than {state.max_body_bytes} bytes")
            except ConnectionError:  # the client hung up mid-body; nobody will read an answer
                return _error(499, "client closed the connection")
            args = (body, request.headers.get("Inference-Header-Content-Length"))
            parse = functools.partial(
                parse_infer_request, *args, state.model.inputs, state.model.outputs
            )
            # Decoding megabytes of JSON would stall every other request on the event loop.
            parsed = parse() if len(body) < OFFLOAD_BYTES else await asyncio.to_thread(parse)
        results = await state.batcher.infer(parsed)
    except InferError as exc:
        return _error(exc.status, exc.message)
    except ModelRunError as exc:
        log.warning("inference failed: %s", exc)
        return _error(500, str(exc))
    encode = functools.partial(
        encode_infer_response, state.model_name, state.model_version, parsed, results
    )
    size = sum(r.nbytes for r in results.values())
    try:
        out, header_length = encode() if size < OFFLOAD_BYTES else await asyncio.to_thread(encode)
    except InferError as exc:  # e.g. a non-finite output that JSON cannot carry
        return _error(exc.status, exc.message)
    if header_length is None:
        return web.Response(body=out, content_type="application/json")
    return web.Response(
        body=out,
        content_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(_state(request).metrics.exposition)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(state: ServingState) -> web.Application:
    app = web.Application(middlewares=[v2_errors], client_max_size=state.max_body_bytes)
    app[STATE] = state
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/metrics", metrics)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.router.add_get(base, model_metadata)
        app.router.add_get(base + "/ready", model_ready)
        app.router.add_post(base + "/infer", infer)
    return app
