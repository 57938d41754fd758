"""Several server processes behind one port (``SO_REUSEPORT``), for when one Python process
is the bottleneck: the kernel spreads connections over the workers, each runs the whole
server (its own fetch and checksum gate, onnxruntime session and batcher), and /metrics
in any of them reports the sum of all (prometheus_client's multiprocess mode).

The parent only supervises: it forwards SIGTERM/SIGINT, and when a worker exits on its
own (a failed load exits 1) it stops the others and exits with that worker's code, so
Kubernetes sees one container that failed or finished. Workers are spawned, not forked,
so each imports prometheus_client with the multiprocess directory already set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.process import BaseProcess

from thunderbolt.serving.metrics import MULTIPROC_DIR_ENV
from thunderbolt.serving.server import ServeOptions, serve

log = logging.getLogger(__name__)


def _worker(opts: ServeOptions, log_level: int) -> None:
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards a terminal's Ctrl-C once
    code = asyncio.run(serve(opts))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(code)


def run_workers(opts: ServeOptions, workers: int) -> int:
    """Serve with ``workers`` processes; returns the container's exit code."""
    from prometheus_client.multiprocess import mark_process_dead

    metrics_dir = tempfile.mkdtemp(prefix="thunderbolt-metrics-")
    ready_dir = tempfile.mkdtemp(prefix="thunderbolt-ready-")
    os.environ[MULTIPROC_DIR_ENV] = metrics_dir
    context = multiprocessing.get_context("spawn")
    worker_opts = dataclasses.replace(opts, reuse_port=True, ready_dir=ready_dir, workers=workers)
    level = logging.getLogger().getEffectiveLevel()
    procs: list[BaseProcess] = [
        context.Process(target=_worker, args=(worker_opts, level), name=f"worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def stop_all(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for p in procs:
        p.start()
    log.info("%d workers on port %d: %s", workers, opts.port, [p.pid for p in procs])
    code = 0
    while any(p.exitcode is None for p in procs):
        for p in procs:
            if p.exitcode is not None and p.pid is not None:
                mark_process_dead(p.pid, metrics_dir)
                if not stopping:  # a worker ended on its own: the pod ends with it
                    log.error("worker %d exited %s; stopping the others", p.pid, p.exitcode)
                    code = p.exitcode or 1
                    stop_all()
        time.sleep(0.2)
    for p in procs:
        p.join()
        if p.exitcode and not code:
            code = p.exitcode if p.exitcode > 0 else 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    shutil.rmtree(ready_dir, ignore_errors=True)
    return code
