"""Dynamic batching against real onnxruntime sessions: same answers, fewer calls."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest

from tests.unit.serving import onnx_models
from thunderbolt.serving.batching import Batcher, BatchingConfig
from thunderbolt.serving.model import ModelRunError, OnnxModel
from thunderbolt.serving.protocol import InferRequest, RequestedOutput


def _request(name: str, array: np.ndarray) -> InferRequest:
    return InferRequest({name: array}, [RequestedOutput("output", False)])


async def _infer_all(batcher: Batcher, requests: list[InferRequest]) -> list[object]:
    try:
        return await asyncio.gather(*(batcher.infer(r) for r in requests), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_requests_are_merged_and_split_back_exactly() -> None:
    model = OnnxModel(onnx_models.linear_model())
    sizes: list[int] = []
    batcher = Batcher(
        model, BatchingConfig(max_batch_size=16, max_delay_s=0.05), observe_batch=sizes.append
    )
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(20)]
    results = asyncio.run(_infer_all(batcher, [_request("input", a) for a in arrays]))
    for array, result in zip(arrays, results, strict=True):
        assert isinstance(result, dict)
        expected = model.session.run(None, {"input": array})[0]
        np.testing.assert_allclose(result["output"], expected, rtol=1e-6, atol=1e-6)
    assert max(sizes) > 1, sizes
    assert all(s <= 16 for s in sizes), sizes
    assert sum(sizes) == sum(a.shape[0] for a in arrays)
    assert len(sizes) < len(arrays)


def test_requests_of_different_widths_run_in_separate_batches() -> None:
    model = OnnxModel(onnx_models.elementwise_model())
    sizes: list[int] = []
    batcher = Batcher(
        model, BatchingConfig(max_batch_size=32, max_delay_s=0.05), observe_batch=sizes.append
    )
    arrays = [np.full((1, 3 if i % 2 else 5), i, np.float32) for i in range(10)]
    results = asyncio.run(_infer_all(batcher, [_request("input", a) for a in arrays]))
    for array, result in zip(arrays, results, strict=True):
        assert isinstance(result, dict)
        np.testing.assert_array_equal(result["output"], -array)
    assert sorted(sizes) == [5, 5]


def test_a_failing_request_does_not_fail_its_batch_neighbours() -> None:
    model = OnnxModel(onnx_models.lookup_model(rows=5))
    batcher = Batcher(model, BatchingConfig(max_batch_size=8, max_delay_s=0.05))
    indexes = [1, 2, 99, 4]
    requests = [_request("index", np.array([[i]], np.int64)) for i in indexes]
    results = asyncio.run(_infer_all(batcher, requests))
    assert isinstance(results[2], ModelRunError)
    for i in (0, 1, 3):
        result = results[i]
        assert isinstance(result, dict)
        assert result["output"].tolist() == [[[2 * indexes[i], 2 * indexes[i] + 1]]]


@pytest.mark.parametrize(
    ("model_bytes", "config"),
    [
        (onnx_models.linear_model(), BatchingConfig(enabled=False)),
        (onnx_models.fixed_batch_model(), BatchingConfig(max_batch_size=32, max_delay_s=0.05)),
    ],
    ids=["disabled", "static-batch-model"],
)
def test_without_batching_every_request_is_its_own_call(
    model_bytes: bytes, config: BatchingConfig
) -> None:
    model = OnnxModel(model_bytes)
    sizes: list[int] = []
    batcher = Batcher(model, config, observe_batch=sizes.append)
    assert not batcher.batching
    arrays = [np.full((1, 4), i, np.float32) for i in range(6)]
    results = asyncio.run(_infer_all(batcher, [_request("input", a) for a in arrays]))
    assert all(isinstance(r, dict) for r in results)
    assert sizes == [1] * 6


def test_a_request_as_large_as_the_batch_limit_skips_the_queue() -> None:
    model = OnnxModel(onnx_models.linear_model())
    sizes: list[int] = []
    batcher = Batcher(
        model, BatchingConfig(max_batch_size=4, max_delay_s=2.0), observe_batch=sizes.append
    )
    started = time.perf_counter()
    result = asyncio.run(_infer_all(batcher, [_request("input", np.ones((5, 4), np.float32))]))
    assert time.perf_counter() - started < 1.0  # did not wait out max_delay
    assert isinstance(result[0], dict) and result[0]["output"].shape == (5, 3)
    assert sizes == [5]


def test_a_lone_request_does_not_wait_out_the_delay() -> None:
    model = OnnxModel(onnx_models.linear_model())
    batcher = Batcher(model, BatchingConfig(max_batch_size=32, max_delay_s=2.0))
    started = time.perf_counter()
    result = asyncio.run(_infer_all(batcher, [_request("input", np.ones((1, 4), np.float32))]))
    assert isinstance(result[0], dict)
    assert time.perf_counter() - started < 1.0


def test_the_batch_waits_for_a_request_still_being_received() -> None:
    model = OnnxModel(onnx_models.linear_model())
    sizes: list[int] = []
    batcher = Batcher(
        model, BatchingConfig(max_batch_size=32, max_delay_s=5.0), observe_batch=sizes.append
    )

    async def late() -> object:
        with batcher.arrival():  # e.g. its body is still on the wire
            await asyncio.sleep(0.1)
            request = _request("input", np.ones((1, 4), np.float32))
        return await batcher.infer(request)

    async def scenario() -> float:
        started = time.perf_counter()
        try:
            await asyncio.gather(
                late(), batcher.infer(_request("input", np.zeros((1, 4), np.float32)))
            )
        finally:
            await batcher.close()
        return time.perf_counter() - started

    elapsed = asyncio.run(scenario())
    assert sizes == [2]
    assert elapsed < 4.0  # joined as soon as it arrived (0.1 s), not after max_delay (5 s)


def test_a_request_that_fails_validation_releases_the_wait() -> None:
    model = OnnxModel(onnx_models.linear_model())
    batcher = Batcher(model, BatchingConfig(max_batch_size=32, max_delay_s=5.0))

    async def rejected() -> None:
        with contextlib.suppress(ValueError), batcher.arrival():
            await asyncio.sleep(0.1)
            raise ValueError("bad request")

    async def scenario() -> float:
        started = time.perf_counter()
        try:
            await asyncio.gather(
                rejected(), batcher.infer(_request("input", np.zeros((1, 4), np.float32)))
            )
        finally:
            await batcher.close()
        return time.perf_counter() - started

    assert asyncio.run(scenario()) < 4.0  # released at once, not after max_delay (5 s)


def test_fast_models_run_on_the_loop_and_slow_ones_in_a_thread() -> None:
    """Handing a microsecond call to a thread costs more than the call; a slow call must not
    block the event loop."""

    async def main(model: OnnxModel, calls: int) -> tuple[bool, set[str]]:
        threads: set[str] = set()
        run = model.run

        def spy(feeds):  # type: ignore[no-untyped-def]
            import threading

            threads.add(threading.current_thread().name)
            return run(feeds)

        model.run = spy  # type: ignore[method-assign]
        batcher = Batcher(model, BatchingConfig(enabled=False))
        x = np.ones((1, 4), np.float32)
        try:
            for _ in range(calls):
                await batcher.infer(_request("input", x))
            return batcher.inline, threads
        finally:
            await batcher.close()

    inline, threads = asyncio.run(
        main(OnnxModel(onnx_models.linear_model()), 30)
    )  # forgets a slow 1st
    assert inline and "MainThread" in threads
    inline, threads = asyncio.run(main(OnnxModel(onnx_models.slow_model()), 3))
    assert not inline and threads and "MainThread" not in threads
