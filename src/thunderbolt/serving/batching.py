"""Dynamic batching: merge concurrent requests into one onnxruntime call.

Requests wait at most ``max_delay_s`` after the oldest one arrived, or until their
group holds ``max_batch_size`` rows, and only while another request is still being
received (``arrival()``): waiting when nobody else could join adds latency for nothing,
so a lone request runs at once and batches form exactly when requests overlap.

Only requests whose tensors agree on every dimension after the first are concatenated
(one group per ``batch_key``). By default one batch runs at a time in a worker thread
(``concurrent_batches``); requests arriving meanwhile queue up, so batches grow with
load without any extra waiting. When a merged batch fails, its requests are retried one
by one so a single bad request cannot fail its neighbours.

A model whose calls take microseconds (the usual small MLP) runs on the event loop
itself: handing each call to a worker thread and back cost more CPU than the call (two
thread wake-ups and GIL hand-overs, the largest item in the request-path profile). The
batcher keeps a moving average of the call time and uses the thread only above
``INLINE_BELOW_S``, so a slow model never blocks the loop for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from thunderbolt.serving.model import ModelRunError
from thunderbolt.serving.protocol import InferRequest

log = logging.getLogger(__name__)
Results = dict[str, np.ndarray]
INLINE_BELOW_S = 0.0002  # calls faster than this (on average) run on the event loop


class Runnable(Protocol):
    @property
    def batchable(self) -> bool: ...

    def run(self, feeds: Mapping[str, np.ndarray]) -> Results: ...


@dataclasses.dataclass
class _Pending:
    request: InferRequest
    future: asyncio.Future[Results]
    arrived: float
    rows: int
    key: tuple[tuple[str, tuple[int, ...]], ...]


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    enabled: bool = True
    max_batch_size: int = 32
    max_delay_s: float = 0.002
    concurrent_batches: int = 1  # >1 overlaps batches; on few cores it only adds contention


class Batcher:
    """Runs requests against a model, batching them when the config and model allow."""

    def __init__(
        self,
        model: Runnable,
        config: BatchingConfig,
        *,
        observe_batch: Callable[[int], None] = lambda rows: None,
        workers: int = 4,
    ) -> None:
        self.model = model
        self.config = config
        self.batching = config.enabled and model.batchable and config.max_batch_size > 1
        self._observe = observe_batch
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ort")
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._carry: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._arriving = 0
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, config.concurrent_batches))
        self._running: set[asyncio.Task[None]] = set()
        self._call_s = math.inf  # moving average of a model call; unknown until the first

    @property
    def inline(self) -> bool:
        """Whether model calls currently run on the event loop (fast model)."""
        return self._call_s < INLINE_BELOW_S

    @contextlib.contextmanager
    def arrival(self) -> Iterator[None]:
        """Wrap reading and decoding a request, so the batcher knows it may join a batch."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1
            self._arrived.set()

    async def infer(self, request: InferRequest) -> Results:
        """Outputs for one request; raises ``ModelRunError`` when the model fails."""
        rows = request.rows
        if not self.batching or rows >= self.config.max_batch_size:
            return await self._run(request.inputs, rows)
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="batcher")
        loop = asyncio.get_running_loop()
        pending = _Pending(request, loop.create_future(), loop.time(), rows, request.batch_key())
        await self._queue.put(pending)
        return await pending.future

    async def close(self) -> None:
        """Stop the batching loop; callers must have drained in-flight requests first."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _run(self, feeds: Mapping[str, np.ndarray], rows: int) -> Results:
        self._observe(rows)
        if self.inline:
            return self._timed_run(feeds)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed_run, feeds)

    def _timed_run(self, feeds: Mapping[str, np.ndarray]) -> Results:
        started = time.perf_counter()
        try:
            return self.model.run(feeds)
        finally:
            took = time.perf_counter() - started
            self._call_s = took if math.isinf(self._call_s) else 0.8 * self._call_s + 0.2 * took

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()  # while every slot runs, requests pile up: bigger batches
            batch = await self._collect()
            task = asyncio.create_task(self._run_batch_in_slot(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch_in_slot(self, batch: list[_Pending]) -> None:
        try:
            await self._run_batch(batch)
        except Exception as exc:  # never let one batch stop the loop
            log.exception("batch failed unexpectedly")
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(ModelRunError(f"batch failed: {exc}"))
        finally:
            self._slots.release()

    async def _collect(self) -> list[_Pending]:
        """Gather one batch: a full group, or every group once the oldest request's delay is up."""
        loop = asyncio.get_running_loop()
        pending, self._carry = self._carry or [await self._queue.get()], []
        groups: dict[tuple[tuple[str, tuple[int, ...]], ...], list[_Pending]] = {}
        rows: dict[tuple[tuple[str, tuple[int, ...]], ...], int] = {}
        overflow: list[_Pending] = []
        deadline = min(p.arrived for p in pending) + self.config.max_delay_s
        full = None

        def add(p: _Pending) -> None:
            nonlocal full
            if rows.get(p.key, 0) + p.rows > self.config.max_batch_size:
                overflow.append(p)
                full = full or p.key
                return
            groups.setdefault(p.key, []).append(p)
            rows[p.key] = rows.get(p.key, 0) + p.rows
            if rows[p.key] == self.config.max_batch_size:
                full = full or p.key

        for p in pending:
            add(p)
        while full is None:
            if not self._queue.empty():
                add(self._queue.get_nowait())
                continue
            timeout = deadline - loop.time()
            if timeout <= 0 or not self._arriving:
                break
            # Sleep until a request is queued or one being received gives up (bad request).
            self._arrived.clear()
            getter = asyncio.ensure_future(self._queue.get())
            gave_up = asyncio.ensure_future(self._arrived.wait())
            done, _ = await asyncio.wait(
                {getter, gave_up}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            gave_up.cancel()
            if getter in done:
                add(getter.result())
            else:
                getter.cancel()
        if full is not None:
            batch = groups.pop(full)
            self._carry = sorted(
                [*(p for g in groups.values() for p in g), *overflow], key=lambda p: p.arrived
            )
            return batch
        # Deadline passed: run the oldest group now, leave the others (already due) next.
        oldest = min(groups.values(), key=lambda g: g[0].arrived)
        self._carry = [p for g in groups.values() if g is not oldest for p in g]
        return oldest

    async def _run_batch(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if not p.future.done()]  # drop requests whose client left
        if not batch:
            return
        if len(batch) == 1:
            await self._settle_alone(batch[0])
            return
        names = list(batch[0].request.inputs)
        feeds = {n: np.concatenate([p.request.inputs[n] for p in batch]) for n in names}
        total = sum(p.rows for p in batch)
        try:
            results = await self._run(feeds, total)
        except ModelRunError:
            results = None
        if results is None or any(r.ndim == 0 or r.shape[0] != total for r in results.values()):
            for p in batch:  # isolate the failure (or an output that cannot be split)
                await self._settle_alone(p)
            return
        start = 0
        for p in batch:
            end = start + p.rows
            if not p.future.done():
                p.future.set_result({n: r[start:end] for n, r in results.items()})
            start = end

    async def _settle_alone(self, p: _Pending) -> None:
        try:
            result = await self._run(p.request.inputs, p.rows)
        except ModelRunError as exc:
            if not p.future.done():
                p.future.set_exception(exc)
            return
        if not p.future.done():
            p.future.set_result(result)
