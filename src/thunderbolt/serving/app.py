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

from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import thunderbolt
from thunderbolt.serving import slowclients
from thunderbolt.serving.batching import Batcher
from thunderbolt.serving.memory import (
    RETRY_AFTER_S,
    BudgetExceeded,
    Lease,
    MemoryBudget,
    json_decode_cost,
    output_bytes,
    tensor_cost,
)
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.mirror import Mirror
from thunderbolt.serving.model import ModelRunError, OnnxModel
from thunderbolt.serving.protocol import (
    EncodedResponse,
    InferError,
    InferRequest,
    encode_infer_response_parts,
    error_body,
    parse_infer_request,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OFFLOAD_BYTES = 256 * 1024  # bodies/results above this are (de)coded in a worker thread
STREAM_PIECE = 1024 * 1024
CONTENT_ENCODINGS = {
    "identity",
    "",
    "gzip",
    "x-gzip",
    "deflate",
}  # what aiohttp decodes  # largest single write of a streamed response


@dataclasses.dataclass
class ServingState:
    """Everything the handlers share; the model fields are set once loading succeeds."""

    model_name: str
    model_version: str
    metrics: ServingMetrics
    max_body_bytes: int = 16 * 1024 * 1024
    body_timeout_s: float = 30.0
    # Bytes all in-flight requests may hold (set once the model is loaded; unbounded
    # until then, when inference is refused anyway).
    budget: MemoryBudget = dataclasses.field(default_factory=lambda: MemoryBudget(None))
    model: OnnxModel | None = None
    batcher: Batcher | None = None
    draining: bool = False
    inflight: int = 0
    idle: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    not_ready_reason: str = "model is loading"
    # With several workers on one port: whether every one of them has loaded the model, so
    # the pod turns ready only when no connection can land on a worker still loading.
    peers_ready: Callable[[], bool] = lambda: True
    mirror: Mirror | None = None  # a Shadow strategy: answered requests go to the candidate too
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
    response = web.Response(
        status=status, body=error_body(message), content_type="application/json"
    )
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@web.middleware
async def v2_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    slowclients.request_started(request)  # headers complete: the header deadline is met
    try:
        return await handler(request)
    except web.HTTPException as exc:  # routing: unknown path, wrong method, too large
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason if exc.text is None else exc.text.strip())
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal server error")
    finally:
        slowclients.request_finished(request)


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


async def infer(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    started = time.perf_counter()
    state.inflight += 1
    code = 500
    try:
        with state.budget.lease() as lease:  # released once the answer is written
            response = await _infer(request, state, lease)
            code = response.status
            return response
    finally:
        state.inflight -= 1
        if not state.inflight:
            state.idle.set()
        if request.match_info["name"] == state.model_name:
            state.count(code, time.perf_counter() - started)


# Bytes per second an upload earns beyond ``body_timeout_s``: 16 MiB may take 256 s more
# at this rate, while a slow-loris trickle of a few bytes a second earns nothing useful.
MIN_BODY_RATE = 64 * 1024


async def read_body(request: web.Request, state: ServingState, lease: Lease) -> bytearray:
    """The whole body, into one buffer reserved from the memory budget before it fills:
    sized by ``Content-Length`` up front, or chunk by chunk when it is not known (chunked
    or compressed bodies). Raises ``InferError`` 413 above ``max_body_bytes``,
    ``BudgetExceeded``, ``TimeoutError`` when the body takes longer than
    ``body_timeout_s`` plus one second per ``MIN_BODY_RATE`` bytes received (a slow
    but honest upload of a large body finishes; a trickle does not), ``ConnectionError``
    when the client hangs up."""
    limit = state.max_body_bytes
    too_large = InferError(413, f"request body larger than {limit} bytes")
    length = request.content_length
    if length is not None and length > limit:
        raise too_large
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in CONTENT_ENCODINGS:
        raise InferError(
            415, f"Content-Encoding {encoding[:40]!r} not supported: use gzip or deflate"
        )
    encoded = encoding != "identity"
    started = asyncio.get_running_loop().time()

    def extend(deadline: asyncio.Timeout, received: int) -> None:
        deadline.reschedule(started + state.body_timeout_s + received / MIN_BODY_RATE)

    async with asyncio.timeout(state.body_timeout_s) as deadline:
        if length is not None and not encoded:
            lease.resize(length, "the request body")
            body = bytearray(length)
            view, filled = memoryview(body), 0
            while filled < length:
                chunk = await request.content.readany()
                if not chunk:
                    raise ConnectionError("body ended early")
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
                extend(deadline, filled)
            return body
        body = bytearray()
        while chunk := await request.content.readany():
            if len(body) + len(chunk) > limit:
                raise too_large
            lease.grow(len(chunk), "the request body")
            body += chunk
            extend(deadline, len(body))
        return body


async def _answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response``, then close the connection at once: aiohttp would otherwise keep
    reading the rest of an unread body for its lingering time."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _refusal(exc: BudgetExceeded) -> web.Response:
    if exc.status == 503:
        log.info("memory budget: %s", exc.message)
    return _error(exc.status, exc.message)


async def _infer(request: web.Request, state: ServingState, lease: Lease) -> web.StreamResponse:
    try:
        _check_model(request)
        if state.model is None or state.batcher is None:
            return _error(503, f"model {state.model_name!r} is not ready")
        model = state.model
        with state.batcher.arrival():
            try:
                body = await read_body(request, state, lease)
            except TimeoutError:
                message = f"request body not received within {state.body_timeout_s:g} s"
                return await _answer_and_close(request, _error(408, message))
            except RequestPayloadError as exc:  # e.g. a corrupt gzip/deflate stream
                reason = " ".join(str(exc).split())
                message = f"request body cannot be decoded: {reason}"
                return await _answer_and_close(request, _error(400, message))
            except (ConnectionError, ClientPayloadError):  # the client hung up mid-body
                return _error(499, "client closed the connection")
            header_length = request.headers.get("Inference-Header-Content-Length")
            json_end = len(body)
            if header_length is not None and header_length.isdigit():
                json_end = min(json_end, int(header_length))
            lease.resize(len(body) + json_decode_cost(body, json_end), "decoding this request")
            parse = functools.partial(
                parse_infer_request, body, header_length, model.inputs, model.outputs
            )
            # Decoding megabytes of JSON would stall every other request on the event loop.
            parsed = parse() if len(body) < OFFLOAD_BYTES else await asyncio.to_thread(parse)
            out = output_bytes((s.shape for s in model.outputs), parsed.rows)
            lease.resize(len(body) + tensor_cost(parsed.inputs.values(), out), "this request")
        results = await state.batcher.infer(parsed)
        if state.mirror is not None:  # after stable's answer exists: the client never waits
            state.mirror.offer(body, request.headers, results)
    except InferError as exc:
        return _error(exc.status, exc.message)
    except BudgetExceeded as exc:
        return _refusal(exc)
    except ModelRunError as exc:
        log.warning("inference failed: %s", exc)
        return _error(500, str(exc))
    return await _respond(request, state, parsed, results)


async def _respond(
    request: web.Request, state: ServingState, parsed: InferRequest, results: dict[str, Any]
) -> web.StreamResponse:
    encode = functools.partial(
        encode_infer_response_parts, state.model_name, state.model_version, parsed, results
    )
    size = sum(r.nbytes for r in results.values())
    try:
        encoded = encode() if size < OFFLOAD_BYTES else await asyncio.to_thread(encode)
    except InferError as exc:  # e.g. a non-finite output that JSON cannot carry
        return _error(exc.status, exc.message)
    headers = {}
    if encoded.header_length is not None:
        headers["Inference-Header-Content-Length"] = str(encoded.header_length)
    content_type = (
        "application/json" if encoded.header_length is None else "application/octet-stream"
    )
    if size < OFFLOAD_BYTES:
        return web.Response(body=encoded.join(), content_type=content_type, headers=headers)
    return await _stream(request, encoded, content_type, headers)


async def _stream(
    request: web.Request, encoded: EncodedResponse, content_type: str, headers: dict[str, str]
) -> web.StreamResponse:
    """A large body piece by piece (each produced in a worker thread): never the whole
    text in memory at once. JSON of unknown length goes out chunked."""
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    if encoded.length is not None:
        response.content_length = encoded.length
    await response.prepare(request)
    while (piece := await asyncio.to_thread(next, encoded.parts, None)) is not None:
        view = memoryview(piece)
        for start in range(0, len(view), STREAM_PIECE):
            await response.write(view[start : start + STREAM_PIECE])
    await response.write_eof()
    return response


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(_state(request).metrics.exposition)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_app(state: ServingState) -> web.Application:
    app = web.Application(middlewares=[v2_errors], client_max_size=state.max_body_bytes)
    # (inference bodies are read by ``read_body``, against the memory budget)
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
