"""The serving process: listen, fetch and verify the model, serve, drain on SIGTERM.

The HTTP listener starts before the model is fetched, so liveness and /metrics answer
while a large model downloads, and readiness stays 503 until the checksum matched and
onnxruntime loaded the model. A model that fails verification never becomes ready: the
reason is logged (and written to the Kubernetes termination log) and the process exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import time

from aiohttp import web

from thunderbolt.api.serving import MirrorConfig
from thunderbolt.artifacts import ArtifactError, sha256_digest, verify_checksum
from thunderbolt.serving.app import ServingState, build_app
from thunderbolt.serving.batching import Batcher, BatchingConfig
from thunderbolt.serving.memory import (
    MemoryBudget,
    container_memory_limit,
    plan_memory,
    rss_bytes,
)
from thunderbolt.serving.metrics import ServingMetrics
from thunderbolt.serving.mirror import build as build_mirror
from thunderbolt.serving.model import ModelLoadError, OnnxModel
from thunderbolt.serving.slowclients import GuardedAppRunner
from thunderbolt.serving.source import fetch_model, redact

log = logging.getLogger(__name__)


class ChecksumMismatch(ArtifactError):
    """The fetched model is not the one the deployment asked for."""


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    model_uri: str
    model_name: str
    checksum: str | None = None
    model_version: str = "1"
    host: str = "0.0.0.0"
    port: int = 8080
    grpc_port: int = 0  # 0: no gRPC listener
    reuse_port: bool = False  # several worker processes listen on the same ports
    ready_dir: str | None = None  # where those workers mark themselves loaded
    workers: int = 1
    batching: BatchingConfig = BatchingConfig()
    max_body_bytes: int | None = None  # None: from the memory limit (memory.default_max_body)
    memory_limit: int | None = None  # None: the container's (cgroup); 0: no budget
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0
    drain_timeout_s: float = 30.0
    fail_linger_s: float = 0.0
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    spinning: bool = False
    s3_endpoint_url: str | None = None
    termination_log: str = "/dev/termination-log"
    mirror: MirrorConfig | None = None  # Shadow strategy: where answered requests are mirrored


def load_model(opts: ServeOptions, metrics: ServingMetrics) -> OnnxModel:
    """Fetch, verify and load; raises ``ArtifactError`` or ``ModelLoadError``."""
    started = time.perf_counter()
    fetched = fetch_model(opts.model_uri, s3_endpoint_url=opts.s3_endpoint_url)
    if opts.checksum:
        try:
            verify_checksum(fetched.data, opts.checksum)
        except ArtifactError as exc:
            metrics.checksum_failures.labels(opts.model_name).inc()
            raise ChecksumMismatch(f"{fetched.source}: {exc}") from exc
    else:
        log.warning(
            "no checksum given: serving %s unverified (%s)",
            fetched.source,
            sha256_digest(fetched.data),
        )
    model = OnnxModel(
        fetched.data,
        intra_op_threads=opts.intra_op_threads,
        inter_op_threads=opts.inter_op_threads,
        spinning=opts.spinning,
    )
    metrics.load_seconds.labels(opts.model_name).set(time.perf_counter() - started)
    log.info(
        "loaded %s (%d bytes) in %.2fs: inputs %s, outputs %s",
        fetched.source,
        len(fetched.data),
        time.perf_counter() - started,
        [s.as_metadata() for s in model.inputs],
        [s.as_metadata() for s in model.outputs],
    )
    return model


def memory_limit(opts: ServeOptions) -> int | None:
    """The explicit setting (0: none), else the container's cgroup limit."""
    if opts.memory_limit is not None:
        return opts.memory_limit or None
    return container_memory_limit()


class _QuietBadRequests(logging.Filter):
    """aiohttp logs a traceback at ERROR for every unparsable HTTP request; a client's
    garbage is not a server error, so log it as one warning line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError
        from aiohttp.web_protocol import RequestPayloadError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            record.msg, record.args = "%s: %s", (record.getMessage(), " ".join(str(exc).split()))
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _write_termination_log(path: str, message: str) -> None:
    """Kubernetes shows this file as the container's termination message."""
    if os.path.exists(path):
        with contextlib.suppress(OSError), open(path, "w") as fh:
            fh.write(message[:4000])


async def _stop_grpc(server: object | None, grace_s: float) -> None:
    """Refuse new RPCs at once; let running ones finish within ``grace_s``."""
    if server is not None:
        await server.stop(grace_s)  # type: ignore[attr-defined]


async def serve(opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    logging.getLogger("aiohttp.server").addFilter(_QuietBadRequests())
    metrics = ServingMetrics()
    limit = memory_limit(opts)
    max_body = plan_memory(limit, 0, opts.workers, opts.max_body_bytes).max_body
    state = ServingState(opts.model_name, opts.model_version, metrics, max_body)
    state.body_timeout_s = opts.body_timeout_s
    state.mirror = build_mirror(opts.mirror, opts.model_name, metrics.registry)
    if opts.mirror is not None:
        log.info("mirroring %d%% of answered requests to %s", opts.mirror.percent, opts.mirror.url)
    metrics.ready.labels(opts.model_name).set(0)
    runner = GuardedAppRunner(
        build_app(state),
        header_timeout_s=opts.header_timeout_s,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=opts.keepalive_timeout_s,
    )
    await runner.setup()
    site = web.TCPSite(
        runner, opts.host, opts.port, reuse_address=True, reuse_port=opts.reuse_port or None
    )
    await site.start()
    log.info("listening on %s:%d for model %r", opts.host, opts.port, opts.model_name)
    grpc_server = None
    if opts.grpc_port:
        from thunderbolt.serving.grpc_service import start_grpc_server  # grpcio only when asked

        try:
            grpc_server = await start_grpc_server(
                state, opts.host, opts.grpc_port, reuse_port=opts.reuse_port
            )
        except (OSError, RuntimeError) as exc:
            log.error("%s", exc)
            _write_termination_log(opts.termination_log, str(exc))
            await runner.cleanup()
            return 1
        log.info("gRPC (inference.GRPCInferenceService) on %s:%d", opts.host, opts.grpc_port)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    log.info("fetching %s", redact(opts.model_uri))
    loading = asyncio.ensure_future(asyncio.to_thread(load_model, opts, metrics))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not loading.done():  # asked to stop while loading: nothing in flight to drain
        stopping.cancel()
        await _stop_grpc(grpc_server, 0)
        await runner.cleanup()
        return 0
    try:
        model = loading.result()
    except (ArtifactError, ModelLoadError) as exc:
        reason = f"model {opts.model_name!r} not served: {exc}"
        log.error("%s", reason)
        state.not_ready_reason = str(exc)
        _write_termination_log(opts.termination_log, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), opts.fail_linger_s)
        stopping.cancel()
        await _stop_grpc(grpc_server, 0)
        await runner.cleanup()
        return 1

    batcher = Batcher(
        model, opts.batching, observe_batch=metrics.batch_size.labels(opts.model_name).observe
    )
    plan = plan_memory(limit, rss_bytes(), opts.workers, opts.max_body_bytes)
    state.budget = MemoryBudget(plan.budget)
    log.info(
        "memory: limit %s, request budget %s, largest body %d bytes",
        "none" if plan.limit is None else f"{plan.limit / 2**20:.0f} MiB",
        "unbounded" if plan.budget is None else f"{plan.budget / 2**20:.0f} MiB",
        plan.max_body,
    )
    state.serve(model, batcher)
    if opts.ready_dir is not None:
        ready_dir = opts.ready_dir
        pathlib.Path(ready_dir, str(os.getpid())).touch()
        state.peers_ready = lambda: len(os.listdir(ready_dir)) >= opts.workers
    log.info(
        "ready: serving %r version %s (batching %s)",
        opts.model_name,
        opts.model_version,
        f"up to {opts.batching.max_batch_size} rows / {opts.batching.max_delay_s * 1000:g} ms"
        if batcher.batching
        else "off",
    )
    await stopping

    log.info("SIGTERM: not ready, closing the listener, draining %d in flight", state.inflight)
    state.draining = True
    metrics.ready.labels(opts.model_name).set(0)
    await site.stop()
    grpc_stopped = asyncio.ensure_future(_stop_grpc(grpc_server, opts.drain_timeout_s))
    try:
        await asyncio.wait_for(state.drained(), opts.drain_timeout_s)
    except TimeoutError:
        log.warning("drain timed out with %d requests in flight", state.inflight)
    await grpc_stopped
    await runner.cleanup()
    await batcher.close()
    if state.mirror is not None:
        await state.mirror.close()
    log.info("stopped")
    return 0
