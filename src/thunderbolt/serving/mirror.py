"""Shadow mirroring: a copy of answered requests goes to the candidate, fire-and-forget.

A server started with ``THUNDERBOLT_MIRROR_URL`` (a Shadow strategy's pods) offers every
inference request it answered with 200 to ``Mirror.offer`` *after* its own answer was
computed. A sampled share (``percent``) is re-sent, body unchanged, to the shadow Service
in a background task; the client's answer never waits for it and never sees it. What
bounds the cost on the serving pod:

- at most ``max_in_flight`` mirrored requests at once (one connection each); more are
  dropped and counted (``dropped``), as are bodies above ``max_body_bytes``;
- each mirrored request is abandoned after ``timeout_ms`` (``timeout``);
- after a connection failure (no shadow runs: the Service has no endpoints and refuses
  at once) mirroring pauses for ``BACKOFF_S`` and counts what it skips (``skipped``).

The candidate's answer is compared with stable's, row by row (``agreement``), and counted
in ``thunderbolt_shadow_rows_total{candidate=<the version it answered with>}``, which the
controller reads from the stable pods' ``/metrics`` (see ``thunderbolt.deploy.shadow``).
Mirrored requests carry ``X-Thunderbolt-Mirror``: a server never mirrors those again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping

import aiohttp
import numpy as np
from prometheus_client import CollectorRegistry, Counter

from thunderbolt.api.serving import (
    METRIC_MIRROR_ROWS,
    METRIC_MIRRORS,
    MIRROR_HEADER,
    MirrorConfig,
)
from thunderbolt.serving.model import V2_TO_NUMPY
from thunderbolt.serving.protocol import decode_bytes_tensor

log = logging.getLogger(__name__)
BACKOFF_S = 2.0  # pause after the shadow could not be reached
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a candidate's answer larger than this is a failure
UNKNOWN = "unknown"


def decode_answer(body: bytes, header_length: str | None) -> tuple[str, dict[str, np.ndarray]]:
    """A V2 infer response (JSON, or the binary extension) -> (model_version, outputs).
    Raises ValueError on anything else."""
    if header_length is not None:
        n = int(header_length)
        if not 0 < n <= len(body):
            raise ValueError("Inference-Header-Content-Length outside the body")
        document, binary = json.loads(body[:n]), memoryview(body)[n:]
    else:
        document, binary = json.loads(body), memoryview(b"")
    if not isinstance(document, dict) or not isinstance(document.get("outputs"), list):
        raise ValueError("not a V2 infer response")
    outputs: dict[str, np.ndarray] = {}
    offset = 0
    for out in document["outputs"]:
        name, datatype, shape = out["name"], out["datatype"], tuple(int(d) for d in out["shape"])
        dtype = V2_TO_NUMPY[datatype]
        count = int(np.prod(shape)) if shape else 1
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raw = binary[offset : offset + int(size)]
            offset += int(size)
            if datatype == "BYTES":
                arr = decode_bytes_tensor(raw, name, count)
            else:
                arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count)
        else:
            arr = np.asarray(out["data"], dtype=dtype)
        outputs[name] = arr.reshape(shape)
    return str(document.get("model_version", UNKNOWN)), outputs


def row_agreement(
    stable: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], tolerance: float
) -> tuple[int, int]:
    """(rows agreeing, rows compared) over the outputs both answers have. A row agrees when
    every output agrees on it: the same values for integer, boolean and text outputs, the
    same class (arg max) for float outputs with several values per row, and within
    ``tolerance`` relative difference (or 1e-6) for one float per row (regression)."""
    names = [n for n in stable if n in candidate]
    if not names:
        return 0, 0
    rows = _rows(stable[names[0]])
    agree = np.ones(rows, dtype=bool)
    for name in names:
        z, a = np.asarray(stable[name]), np.asarray(candidate[name])
        if z.shape != a.shape or _rows(z) != rows:
            return 0, rows
        z2, a2 = z.reshape(rows, -1), a.reshape(rows, -1)
        if z.dtype.kind in "iubOUS" or a.dtype.kind in "iubOUS":
            agree &= np.all(z2 == a2, axis=1)
        elif z2.shape[1] > 1:
            agree &= np.argmax(z2, axis=1) == np.argmax(a2, axis=1)
        else:
            zf, af = z2[:, 0].astype(np.float64), a2[:, 0].astype(np.float64)
            agree &= np.abs(af - zf) <= np.maximum(1e-6, tolerance * np.abs(zf))
    return int(agree.sum()), rows


def _rows(arr: np.ndarray) -> int:
    return int(arr.shape[0]) if arr.ndim else 1


class MirrorMetrics:
    """The mirror's counters, in the server's registry (served on its /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.mirrored = Counter(
            METRIC_MIRRORS.removesuffix("_total"),
            "Requests offered to the shadow, by result (answered, failed, timeout, "
            "unreachable, dropped, skipped) and the candidate version last seen.",
            ["model", "candidate", "result"],
            registry=registry,
        )
        self.rows = Counter(
            METRIC_MIRROR_ROWS.removesuffix("_total"),
            "Rows of mirrored requests compared with the shadow's answer, by agreement.",
            ["model", "candidate", "agree"],
            registry=registry,
        )


class Mirror:
    """One server process's mirror (create it inside the running event loop's lifetime)."""

    def __init__(
        self,
        config: MirrorConfig,
        model_name: str,
        metrics: MirrorMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.model_name = model_name
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.url = f"{config.url}/v2/models/{model_name}/infer"
        self.timeout_s = config.timeout_ms / 1000.0
        self.inflight = 0
        self.candidate = UNKNOWN  # the version the shadow last answered with
        self._paused_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _count(self, result: str) -> None:
        self.metrics.mirrored.labels(self.model_name, self.candidate, result).inc()

    def offer(
        self,
        body: bytes | bytearray,
        headers: Mapping[str, str],
        results: Mapping[str, np.ndarray],
    ) -> None:
        """Maybe mirror one answered request; returns at once, never raises."""
        if MIRROR_HEADER in headers:
            return
        if self.config.percent < 100 and self.rng.random() * 100.0 >= self.config.percent:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._paused_until:
            self._count("skipped")
            return
        if self.inflight >= self.config.max_in_flight or len(body) > self.config.max_body_bytes:
            self._count("dropped")
            return
        forward = {
            MIRROR_HEADER: "1",
            "Content-Type": headers.get("Content-Type", "application/json"),
        }
        length = headers.get("Inference-Header-Content-Length")
        if length is not None:
            forward["Inference-Header-Content-Length"] = length
        self.inflight += 1
        task = loop.create_task(self._send(body, forward, results))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.inflight -= 1
        if not task.cancelled() and task.exception() is not None:
            log.warning("mirror: %s", task.exception())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.config.max_in_flight, ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    async def _send(
        self, body: bytes | bytearray, headers: dict[str, str], results: Mapping[str, np.ndarray]
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client().post(self.url, data=body, headers=headers) as resp:
                    status = resp.status
                    length = resp.headers.get("Inference-Header-Content-Length")
                    answer = await resp.content.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            self._count("timeout")
            return
        except (aiohttp.ClientError, OSError) as exc:
            self._count("unreachable")
            self._paused_until = loop.time() + BACKOFF_S
            log.debug("mirror: shadow unreachable: %s", exc)
            return
        if status != 200 or len(answer) > MAX_ANSWER_BYTES:
            self._count("failed")
            return
        try:
            version, outputs = decode_answer(answer, length)
        except (ValueError, KeyError, TypeError):
            self._count("failed")
            return
        self.candidate = version[:32]
        self._count("answered")
        agreed, rows = row_agreement(results, outputs, self.config.tolerance)
        if rows:
            self.metrics.rows.labels(self.model_name, self.candidate, "true").inc(agreed)
            self.metrics.rows.labels(self.model_name, self.candidate, "false").inc(rows - agreed)

    async def close(self) -> None:
        """Wait (at most one timeout) for mirrored requests in flight, then close."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.timeout_s)
        if self._session is not None:
            await self._session.close()


def build(
    config: MirrorConfig | None, model_name: str, registry: CollectorRegistry
) -> Mirror | None:
    if config is None:
        return None
    return Mirror(config, model_name, MirrorMetrics(registry))
