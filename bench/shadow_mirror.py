"""What shadow mirroring costs the clients of the stable server.

Runs ``python -m thunderbolt.serving`` (one worker, batching on) as the stable server and
measures one-row V2/JSON requests from this process (aiohttp, closed loop) in four cases,
each against the baseline measured in the same run:

  * ``off``         no mirroring (the baseline);
  * ``agreeing``    100 % mirrored to a second server with the same model (every answer
                    decoded and compared);
  * ``stuck``       100 % mirrored to a server that never answers (timeouts and drops);
  * ``no shadow``   100 % mirrored to a closed port (what a Shadow deployment's pods do
                    while no shadow runs).

Prints requests/s, p50, p99 and the stable server's CPU time per request, their ratios to
``off``, and the mirror counters the stable server exposes. About 30 s.

    .venv/bin/python bench/shadow_mirror.py [--duration 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from typing import Any

import aiohttp
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from thunderbolt.api import serving as sv

BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                               "data": [[0.1, 0.2, 0.3, 0.4]]}]}).encode()  # fmt: skip
STUCK_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from aiohttp import web
    async def stuck(request):
        await asyncio.sleep(3600)
        return web.Response()
    app = web.Application()
    app.router.add_post("/v2/models/{name}/infer", stuck)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
    """
)


def model_file(directory: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(3)
    w1, w2 = (
        rng.normal(size=(4, 64)).astype(np.float32),
        rng.normal(size=(64, 3)).astype(np.float32),
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["output"])],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = directory / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server(
    model: pathlib.Path, port: int, env: dict[str, str], log: Any
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "thunderbolt.serving", "--model-uri", model.as_uri(),
            "--model-name", "m", "--host", "127.0.0.1", "--port", str(port), "--grpc-port", "0",
            "--workers", "1", "--log-level", "WARNING"]  # fmt: skip
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, concurrency: int, duration: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    stop_at = time.perf_counter() + duration

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with session.post(
                url, data=BODY, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()
                if r.status != 200:
                    failed += 1
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return latencies, failed


def mirror_counts(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(sv.METRIC_MIRRORS + "{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            counts[result] = counts.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith(sv.METRIC_MIRROR_ROWS + "{") and 'agree="true"' in line:
            counts["rows agreeing"] = counts.get("rows agreeing", 0.0) + float(
                line.rsplit(" ", 1)[1]
            )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {os.uname().machine}; concurrency {args.concurrency}, "
          f"{args.duration:g} s per case, one-row JSON requests, MLP 4-64-3", flush=True)  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        model = model_file(work)
        log = (work / "servers.log").open("wb")
        candidate_port, stuck_port, closed_port = free_port(), free_port(), free_port()
        procs.append(server(model, candidate_port, {sv.ENV_MODEL_VERSION: "2"}, log))
        procs.append(subprocess.Popen([sys.executable, "-c", STUCK_SERVER, str(stuck_port)],
                                      stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        wait_ready(f"http://127.0.0.1:{candidate_port}/v2/health/ready")
        cases = {
            "off": None,
            "agreeing": candidate_port,
            "stuck": stuck_port,
            "no shadow": closed_port,
        }
        rows = []
        try:
            for name, target in cases.items():
                port = free_port()
                env = {}
                if target is not None:
                    env = {e["name"]: e["value"] for e in
                           sv.MirrorConfig(f"http://127.0.0.1:{target}", timeout_ms=1000).env()}  # fmt: skip
                proc = server(model, port, env, log)
                try:
                    wait_ready(f"http://127.0.0.1:{port}/v2/health/ready")
                    url = f"http://127.0.0.1:{port}/v2/models/m/infer"
                    asyncio.run(load(url, args.concurrency, 1.0))  # warm-up
                    cpu0 = cpu_seconds(proc.pid)
                    latencies, failed = asyncio.run(load(url, args.concurrency, args.duration))
                    cpu = cpu_seconds(proc.pid) - cpu0
                    time.sleep(1.2)  # let the last mirrored requests finish or time out
                    counts = mirror_counts(port)
                finally:
                    stop(proc)
                ms = np.array(latencies) * 1000
                rows.append((name, len(ms) / args.duration, float(np.percentile(ms, 50)),
                             float(np.percentile(ms, 99)), cpu / len(ms) * 1e6, failed, counts))  # fmt: skip
        finally:
            for p in procs:
                stop(p)
    base = rows[0]
    print(f"{'case':<10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10} "
          f"{'x req/s':>7} {'x p50':>6} {'x p99':>6} {'x CPU':>6} failed  mirror counters")  # fmt: skip
    for name, rps, p50, p99, cpu, failed, counts in rows:
        shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(counts.items())) or "-"
        print(f"{name:<10} {rps:8.0f} {p50:7.2f} {p99:7.2f} {cpu:10.0f} {rps / base[1]:7.2f} "
              f"{p50 / base[2]:6.2f} {p99 / base[3]:6.2f} {cpu / base[4]:6.2f} {failed:6d}  {shown}")  # fmt: skip


if __name__ == "__main__":
    main()
