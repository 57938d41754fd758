"""Shadow mirroring between real local servers: clients get stable's answers whatever the
candidate does; agreement, failures, timeouts, drops and pauses are counted."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from tests.unit.serving import onnx_models
from thunderbolt.api.serving import MIRROR_HEADER, MirrorConfig
from thunderbolt.serving.app import ServingState, build_app
from thunderbolt.serving.batching import Batcher, BatchingConfig
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.mirror import Mirror, MirrorMetrics, decode_answer, row_agreement
from thunderbolt.serving.model import OnnxModel
from thunderbolt.serving.protocol import InferRequest, RequestedOutput, encode_infer_response

ROWS = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]
BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}
).encode()


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def _state(model_bytes: bytes, version: str) -> ServingState:
    model = OnnxModel(model_bytes)
    state = ServingState("iris", version, ServingMetrics())
    state.serve(model, Batcher(model, BatchingConfig()))
    return state


async def _stable(candidate_url: str, **settings: Any) -> AsyncIterator[tuple[str, ServingState]]:
    state = _state(onnx_models.linear_model(), "1")
    state.mirror = Mirror(
        MirrorConfig(url=candidate_url, **settings),
        "iris",
        MirrorMetrics(state.metrics.registry),
        random.Random(1),
    )
    runner, url = await _start(build_app(state))
    try:
        yield url, state
    finally:
        await state.mirror.close()
        await runner.cleanup()


def _mirrored(state: ServingState, result: str, candidate: str = "2") -> float:
    value = state.metrics.registry.get_sample_value(
        "thunderbolt_shadow_mirrored_total",
        {"model": "iris", "candidate": candidate, "result": result},
    )
    return value or 0.0


def _rows(state: ServingState, agree: str, candidate: str = "2") -> float:
    value = state.metrics.registry.get_sample_value(
        "thunderbolt_shadow_rows_total", {"model": "iris", "candidate": candidate, "agree": agree}
    )
    return value or 0.0


async def _ask(url: str, n: int) -> list[tuple[int, Any]]:
    answers = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            async with session.post(f"{url}/v2/models/iris/infer", data=BODY) as resp:
                answers.append((resp.status, await resp.json()))
    return answers


async def _settle(state: ServingState) -> None:
    assert state.mirror is not None
    for _ in range(500):
        if not state.mirror.inflight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("mirrored requests never finished")


def _scenario(
    candidate: web.Application, body: Callable[..., Awaitable[Any]], **settings: Any
) -> Any:
    async def main() -> Any:
        runner, candidate_url = await _start(candidate)
        stables = _stable(candidate_url, **settings)
        url, state = await anext(stables)
        try:
            return await body(url, state, candidate)
        finally:
            await stables.aclose()
            await runner.cleanup()

    return asyncio.run(main())


def test_agreeing_candidate_gets_every_request_and_clients_get_stable_answers():
    candidate_state = _state(onnx_models.linear_model(), "2")
    expected = OnnxModel(onnx_models.linear_model()).run({"input": np.array(ROWS, np.float32)})

    async def body(url: str, state: ServingState, _: web.Application) -> None:
        answers = await _ask(url, 10)
        await _settle(state)
        assert {code for code, _ in answers} == {200}
        assert {a["model_version"] for _, a in answers} == {"1"}  # stable answered
        np.testing.assert_allclose(answers[0][1]["outputs"][0]["data"],
                                   expected["output"].ravel(), rtol=1e-6)  # fmt: skip
        assert _mirrored(state, "answered") == 10
        assert _rows(state, "true") == 20 and _rows(state, "false") == 0
        seen = candidate_state.metrics.registry.get_sample_value(
            "thunderbolt_inference_requests_total", {"model": "iris", "code": "200"}
        )
        assert seen == 10

    _scenario(build_app(candidate_state), body)


def test_disagreeing_and_failing_candidates_are_counted_not_shown():
    other = _state(onnx_models.linear_model(k=2), "3")  # other output shape: never agrees

    async def body(url: str, state: ServingState, _: web.Application) -> None:
        answers = await _ask(url, 4)
        await _settle(state)
        assert {code for code, _ in answers} == {200}
        assert _rows(state, "false", "3") == 8 and _rows(state, "true", "3") == 0

    _scenario(build_app(other), body)

    failing = _state(onnx_models.failing_model(), "4")

    async def body_failing(url: str, state: ServingState, _: web.Application) -> None:
        answers = await _ask(url, 5)
        await _settle(state)
        assert {code for code, _ in answers} == {200}
        assert _mirrored(state, "failed", "unknown") == 5
        assert _mirrored(state, "answered", "unknown") == 0

    _scenario(build_app(failing), body_failing)


def test_a_stuck_candidate_never_delays_clients_and_times_out_or_is_dropped():
    release = asyncio.Event()
    arrived: list[bool] = []

    async def stuck(request: web.Request) -> web.Response:
        assert request.headers.get(MIRROR_HEADER) == "1"
        arrived.append(True)
        await release.wait()
        return web.json_response({"outputs": []})

    app = web.Application()
    app.router.add_post("/v2/models/{name}/infer", stuck)

    async def body(url: str, state: ServingState, _: web.Application) -> None:
        # Every client answer arrives while the candidate holds every mirrored request.
        answers = await _ask(url, 6)
        assert {code for code, _ in answers} == {200} and not release.is_set()
        assert state.mirror is not None and state.mirror.inflight == 2
        assert _mirrored(state, "dropped", "unknown") == 4
        await _settle(state)
        assert _mirrored(state, "timeout", "unknown") == 2 and len(arrived) == 2
        release.set()

    _scenario(app, body, max_in_flight=2, timeout_ms=300)


def test_unreachable_shadow_pauses_mirroring():
    async def main() -> None:
        runner, gone = await _start(web.Application())
        await runner.cleanup()  # the port is closed: connections are refused
        stables = _stable(gone)
        url, state = await anext(stables)
        try:
            await _ask(url, 1)
            await _settle(state)
            answers = await _ask(url, 3)
            assert {code for code, _ in answers} == {200}
            assert _mirrored(state, "unreachable", "unknown") == 1
            assert _mirrored(state, "skipped", "unknown") == 3
        finally:
            await stables.aclose()

    asyncio.run(main())


def test_percent_samples_and_mirrored_requests_are_not_mirrored_again():
    async def main() -> None:
        metrics = MirrorMetrics(ServingMetrics().registry)
        mirror = Mirror(MirrorConfig(url="http://127.0.0.1:9", percent=30, max_in_flight=1000),
                        "iris", metrics, random.Random(5))  # fmt: skip
        mirror._paused_until = 1e18  # count offers without sending them
        for _ in range(1000):
            mirror.offer(b"{}", {}, {})
        mirror.offer(b"{}", {MIRROR_HEADER: "1"}, {})
        sampled = metrics.mirrored.labels("iris", "unknown", "skipped")._value.get()
        assert 250 <= sampled <= 350, sampled
        await mirror.close()

    asyncio.run(main())


def test_row_agreement_classification_regression_and_labels():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32)
    flipped = np.array([[0.2, 0.8], [0.4, 0.6], [0.6, 0.4]], np.float32)
    assert row_agreement({"p": probs}, {"p": flipped}, 0.01) == (1, 3)
    values = np.array([[100.0], [1.0], [0.0]], np.float32)
    near = np.array([[100.5], [1.2], [1e-7]], np.float32)
    assert row_agreement({"y": values}, {"y": near}, 0.01) == (2, 3)
    labels = np.array([1, 2, 3], np.int64)
    assert row_agreement(
        {"l": labels, "p": probs}, {"l": np.array([1, 2, 0]), "p": probs}, 0.01
    ) == (2, 3)
    assert row_agreement({"a": probs}, {"b": probs}, 0.01) == (0, 0)
    assert row_agreement({"p": probs}, {"p": probs[:2]}, 0.01) == (0, 3)


@pytest.mark.parametrize("binary", [False, True])
def test_decode_answer_reads_what_the_server_writes(binary: bool):
    out = np.array([[1.5, -2.0], [3.25, 4.0]], np.float32)
    request = InferRequest(inputs={"input": out}, outputs=[RequestedOutput("output", binary)])
    body, header_length = encode_infer_response("iris", "7", request, {"output": out})
    assert (header_length is not None) == binary
    version, outputs = decode_answer(body, None if header_length is None else str(header_length))
    assert version == "7"
    np.testing.assert_array_equal(outputs["output"], out)
    with pytest.raises(ValueError):
        decode_answer(b'{"error": "x"}', None)
