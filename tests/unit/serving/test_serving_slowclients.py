"""Slow clients: half-sent headers and bodies are cut off, complete requests are not.

The real aiohttp application and connection handler on a real socket, with short
deadlines; the model is the small linear one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from tests.unit.serving import onnx_models
from thunderbolt.serving.app import ServingState, build_app
from thunderbolt.serving.batching import Batcher, BatchingConfig
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.model import OnnxModel
from thunderbolt.serving.slowclients import GuardedAppRunner

HEADER_S, BODY_S = 0.4, 0.6
BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
).encode()
HEAD = (
    "POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(BODY)}\r\n\r\n"
).encode()


async def _server() -> AsyncIterator[int]:
    model = OnnxModel(onnx_models.linear_model())
    state = ServingState("iris", "1", ServingMetrics())
    state.body_timeout_s = BODY_S
    state.serve(model, Batcher(model, BatchingConfig()))
    runner = GuardedAppRunner(build_app(state), header_timeout_s=HEADER_S, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _run(scenario: Callable[[int], Coroutine[Any, Any, Any]]) -> Any:
    async def main() -> Any:
        servers = _server()
        port = await anext(servers)
        try:
            return await scenario(port)
        finally:
            await servers.aclose()

    return asyncio.run(main())


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return time.monotonic() - started, data


def test_half_sent_headers_are_closed_after_the_header_timeout() -> None:
    async def scenario(port: int) -> list[tuple[float, bytes]]:
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for i, (_, writer) in enumerate(conns):
            writer.write(HEAD[: 10 + i])  # a request line or headers, never finished
        return await asyncio.gather(*(_closed_after(r, 5) for r, _ in conns))

    results = _run(scenario)
    assert all(data == b"" for _, data in results)
    assert all(HEADER_S * 0.8 <= took < HEADER_S + 1.5 for took, _ in results), results


def test_a_silent_connection_is_closed_too() -> None:
    async def scenario(port: int) -> tuple[float, bytes]:
        reader, _ = await asyncio.open_connection("127.0.0.1", port)
        return await _closed_after(reader, 5)

    took, data = _run(scenario)
    assert data == b"" and took < HEADER_S + 1.5


def test_trickled_headers_do_not_reset_the_deadline() -> None:
    async def scenario(port: int) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        for byte in HEAD[:30]:
            if reader.at_eof():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(HEADER_S / 8)
        took, data = await _closed_after(reader, 5)
        return time.monotonic() - started, data

    took, data = _run(scenario)
    assert data == b"" and took < HEADER_S + 1.5


def test_a_half_sent_body_gets_408_and_is_closed() -> None:
    async def scenario(port: int) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEAD + BODY[:10])
        return await _closed_after(reader, 5)

    took, data = _run(scenario)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"not received within" in data
    assert BODY_S * 0.8 <= took < BODY_S + 1.5


def test_a_large_body_sent_steadily_past_the_timeout_is_answered() -> None:
    """The deadline grows with what arrives (MIN_BODY_RATE): an honest slow upload of a
    large body finishes although it takes longer than the body timeout itself."""
    from thunderbolt.serving.app import MIN_BODY_RATE

    padded = BODY[:-1] + b" " * (4 * MIN_BODY_RATE) + b"}"  # 256 KiB of valid JSON
    head = HEAD.replace(
        f"Content-Length: {len(BODY)}".encode(), f"Content-Length: {len(padded)}".encode()
    )

    async def scenario(port: int) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(head)
        for i in range(0, len(padded), len(padded) // 8):  # 8 pieces over ~2.5 x BODY_S
            writer.write(padded[i : i + len(padded) // 8])
            await writer.drain()
            await asyncio.sleep(BODY_S * 2.5 / 8)
        data = await asyncio.wait_for(reader.readuntil(b"}"), 10)
        return time.monotonic() - started, data

    took, data = _run(scenario)
    assert took > BODY_S and data.startswith(b"HTTP/1.1 200"), (took, data[:200])


def test_kept_alive_connections_serve_request_after_request() -> None:
    async def scenario(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for _ in range(3):
            writer.write(HEAD + BODY)
            answers.append(await reader.readuntil(b"\r\n\r\n"))
            length = int(answers[-1].split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            await asyncio.sleep(HEADER_S * 1.5)  # idle between requests: not a header delay
        writer.close()
        return answers

    answers = _run(scenario)
    assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
