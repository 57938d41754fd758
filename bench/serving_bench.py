"""Side-by-side serving benchmark, on a small and a large ONNX MLP.

Targets:
  * onnxruntime called in-process (the floor: no HTTP, no JSON; 1 intra-op thread);
  * the Thunderbolt server with its defaults (threads from the CPU quota, spinning off,
    batching on, workers from the CPUs) over HTTP/JSON, HTTP with binary tensors and
    gRPC; the same without batching; and with 2 worker processes;
  * KServe's Python model server (``kserve``) and MLServer (``mlserver``, a small custom
    runtime), each wrapping the same onnxruntime session (1 intra-op thread) and each
    installed into its own venv under .cache/ because their pins clash with ours.

Load comes from a separate process (aiohttp or grpc.aio, N concurrent requests, closed
loop), the same one-row V2 request for every target. For each model it prints requests/s,
p50 and p99 at each concurrency, the server's CPU time per request (its whole process
tree; a figure a busy machine skews far less than wall-clock ones), and the ratios of
each Thunderbolt target to the best peer at that concurrency, with the issue's targets
(>= 2x req/s and <= 0.5x CPU/request at c16/c64, p99 <= the peer's). About 4 minutes.

    .venv/bin/python bench/serving_bench.py [--duration 3] [--concurrency 1,16,64]
        [--models small,large] [--skip-peers]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from thunderbolt.artifacts import sha256_digest

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
KSERVE_VENV = CACHE / "bench-kserve-venv"
KSERVE_REQUIREMENT = os.environ.get("BENCH_KSERVE_REQUIREMENT", "kserve==0.21.0")
MLSERVER_VENV = CACHE / "bench-mlserver-venv"
MLSERVER_REQUIREMENT = os.environ.get("BENCH_MLSERVER_REQUIREMENT", "mlserver==1.7.1")
MODEL_NAME = "bench"
N_FEATURES, N_OUT = 32, 3
# "small": the size the trainer's searches produce (HTTP + JSON dominate a request);
# "large": ~4.3 M multiply-adds per row, where onnxruntime time matters and batching pays.
MODELS = {"small": (64,), "large": (1024, 1024, 1024, 1024)}

KSERVE_SERVER = """
import logging, os, onnxruntime as ort
from kserve import InferOutput, InferResponse, Model, ModelServer

class OnnxModel(Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        y = self.session.run(None, {"input": x})[0]
        out = InferOutput(name="output", shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id)

model = OnnxModel(os.environ["BENCH_MODEL_NAME"], os.environ["BENCH_MODEL_PATH"])
server = ModelServer(http_port=int(os.environ["BENCH_PORT"]), enable_grpc=False, workers=1,
                     enable_latency_logging=False)
# Thunderbolt logs nothing per request; silence KServe's per-request access/timing lines too.
logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
logging.getLogger("kserve.trace").setLevel(logging.WARNING)
server.start([model])
"""

MLSERVER_RUNTIME = """
import numpy as np, onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        y = self.session.run(None, {"input": x})[0]
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output("output", y)])
"""

KSERVE_CLIENT_CHECK = """
import asyncio, os, numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main():
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
    x = np.ones((2, int(os.environ["BENCH_FEATURES"])), np.float32)
    for binary in (False, True):
        inp = InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        res = await client.infer(os.environ["BENCH_URL"], InferRequest(model_name="bench", infer_inputs=[inp], request_id="k1"),
                                 model_name="bench")
        assert res.outputs[0].as_numpy().shape == (2, 3), res
    await client.close()
    grpc_client = InferenceGRPCClient(os.environ["BENCH_GRPC"])
    inp = InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    res = await grpc_client.infer(InferRequest(model_name="bench", infer_inputs=[inp], request_id="g1"))
    assert res.outputs[0].as_numpy().shape == (2, 3), res
    await grpc_client.close()
    print("ok")

asyncio.run(main())
"""


def build_model(hidden: tuple[int, ...]) -> bytes:
    """An MLP like the trainer exports (``input`` [batch, 32] -> ``output`` [batch, 3])."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    widths = [N_FEATURES, *hidden, N_OUT]
    nodes, inits, x = [], [], "input"
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:], strict=False)):
        w = (rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{i}"),
        ]
        last = i == len(widths) - 2
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"])]
        nodes += [helper.make_node("Add", [f"m{i}", f"b{i}"], ["output" if last else f"h{i}"])]
        if not last:
            nodes += [helper.make_node("Relu", [f"h{i}"], [f"a{i}"])]
            x = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "bench_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", N_FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", N_OUT])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return bytes(model.SerializeToString())


def request_row() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(1, N_FEATURES)).round(4).astype(np.float32)


def request_body() -> bytes:
    return json.dumps(
        {
            "id": "bench",
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, N_FEATURES],
                    "datatype": "FP32",
                    "data": request_row().reshape(-1).tolist(),
                }
            ],
        }
    ).encode()


def binary_request() -> tuple[bytes, int]:
    """The same request with the binary tensor extension (what tritonclient.http sends):
    body and its JSON header's length, outputs asked for in binary too."""
    raw = request_row().tobytes()
    header = json.dumps(
        {
            "id": "bench",
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, N_FEATURES],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + raw, len(header)


def grpc_request() -> bytes:
    """A serialized ``ModelInferRequest`` with raw_input_contents, as tritonclient.grpc sends."""
    from thunderbolt.serving.v2grpc import open_inference_grpc_pb2 as pb

    message = pb.ModelInferRequest(model_name=MODEL_NAME, id="bench")
    message.inputs.add(name="input", datatype="FP32", shape=[1, N_FEATURES])
    message.raw_input_contents.append(request_row().tobytes())
    return bytes(message.SerializeToString())


def summarize(latencies: list[float], seconds: float, errors: int) -> dict[str, float]:
    ms = np.array(latencies) * 1000.0
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        "requests": len(latencies),
        "errors": errors,
    }


# ---- load generator (runs in its own process) -------------------------------------


async def _closed_loop(
    call: Any, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = sent = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker() -> None:
        nonlocal errors, sent
        while (t0 := time.perf_counter()) < stop_at:
            sent += 1
            ok = await call()
            t1 = time.perf_counter()
            if t0 >= measure_from:
                if ok:
                    latencies.append(t1 - t0)
                else:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {**summarize(latencies, duration, errors), "sent": sent}


async def _loadgen(
    mode: str, target: str, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    """``mode``: json | binary (HTTP POST to ``target``) or grpc (ModelInfer on ``target``)."""
    if mode == "grpc":
        import grpc

        body = grpc_request()
        async with grpc.aio.insecure_channel(target) as channel:
            infer = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )

            async def call_grpc() -> bool:
                try:
                    await infer(body)
                    return True
                except grpc.aio.AioRpcError:
                    return False

            return await _closed_loop(call_grpc, concurrency, warmup, duration)

    if mode == "binary":
        body, header_length = binary_request()
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(header_length),
        }
    else:
        body, headers = request_body(), {"Content-Type": "application/json"}
    url = urllib.parse.urlsplit(target)
    head = f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = head.encode() + b"\r\n" + body
    # One keep-alive connection per concurrent client, written and read by hand: a full
    # HTTP client library costs the load generator more CPU than the servers spend per
    # request, and on 2 cores it then measures itself.
    connections = [
        await asyncio.open_connection(url.hostname, url.port) for _ in range(concurrency)
    ]
    free = list(connections)

    async def call_http() -> bool:
        reader, writer = free.pop()
        try:
            writer.write(request)
            status_line = await reader.readuntil(b"\r\n")
            headers_raw = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in headers_raw.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            return status_line.split(b" ", 2)[1] == b"200"
        finally:
            free.append((reader, writer))

    try:
        return await _closed_loop(call_http, concurrency, warmup, duration)
    finally:
        for _, writer in connections:
            writer.close()


def run_loadgen(
    mode: str, target: str, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    args = [mode, target, str(concurrency), str(warmup), str(duration)]
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", *args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


# ---- the floor ---------------------------------------------------------------------


def run_floor(model: bytes, concurrency: int, warmup: float, duration: float) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    x = request_row()
    per_thread: list[list[float]] = [[] for _ in range(concurrency)]
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    def worker(out: list[float]) -> None:
        while (t0 := time.perf_counter()) < stop_at:
            session.run(None, {"input": x})
            t1 = time.perf_counter()
            if t0 >= measure_from:
                out.append(t1 - t0)

    threads = [threading.Thread(target=worker, args=(lat,)) for lat in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize([v for lat in per_thread for v in lat], duration, 0)


# ---- servers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stat(pid: int) -> list[str]:
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (worker processes), all
    threads: a figure a busy machine barely skews."""
    pids, frontier = {pid}, [pid]
    while frontier:  # descendants, by parent pid
        parent = frontier.pop()
        for entry in pathlib.Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in pids:
                try:
                    if int(_stat(int(entry.name))[1]) == parent:
                        pids.add(int(entry.name))
                        frontier.append(int(entry.name))
                except (OSError, IndexError):
                    pass
    total = 0
    for p in pids:
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def ensure_venv(venv: pathlib.Path, requirement: str, module: str) -> pathlib.Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {module}, onnxruntime"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {requirement} into {venv} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, requirement, "onnxruntime", "numpy"], check=True)
    return python


def thunderbolt_server(
    model_path: pathlib.Path, port: int, grpc_port: int, extra: list[str], log: Any
) -> subprocess.Popen[bytes]:
    """The server as a pod runs it: no thread flags, so it sizes itself from the CPUs."""
    args = [
        sys.executable, "-m", "thunderbolt.serving", "--model-uri", model_path.as_uri(),
        "--checksum", sha256_digest(model_path.read_bytes()),
        "--model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--grpc-port", str(grpc_port), "--log-level", "WARNING", *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def mlserver_server(
    python: pathlib.Path, work: pathlib.Path, model_path: pathlib.Path, port: int, log: Any
) -> subprocess.Popen[bytes]:
    """MLServer (no adaptive batching) with a custom onnxruntime runtime, run in the server
    process (``parallel_workers: 0``): for a microsecond model that is its faster setting,
    and its worker pool does not start with uvloop >= 0.22 (mlserver 1.7.1)."""
    folder = work / f"mlserver-{port}"
    folder.mkdir()
    (folder / "runtime.py").write_text(MLSERVER_RUNTIME)
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "host": "127.0.0.1",
        "debug": False,
        "parallel_workers": 0,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "runtime.OnnxRuntime",
                "parameters": {"uri": str(model_path)},
            }
        )
    )
    mlserver = python.parent / "mlserver"
    return subprocess.Popen(
        [str(mlserver), "start", str(folder)], stdout=log, stderr=subprocess.STDOUT, cwd=folder
    )


def kserve_server(
    python: pathlib.Path, script: pathlib.Path, model_path: pathlib.Path, port: int, log: Any
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BENCH_MODEL_NAME": MODEL_NAME,
        "BENCH_MODEL_PATH": str(model_path),
        "BENCH_PORT": str(port),
    }
    return subprocess.Popen(
        [str(python), str(script)], stdout=log, stderr=subprocess.STDOUT, env=env
    )


def batch_stats(base: str) -> str:
    from thunderbolt.serving.metrics import BATCH_SIZE

    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f"{BATCH_SIZE}{suffix}{{"):
                values[suffix] = float(line.rsplit(" ", 1)[1])
    calls = values.get("_count", 0.0)
    return (
        f"{calls:.0f} onnxruntime calls, mean {values.get('_sum', 0.0) / calls:.1f} rows"
        if calls
        else "no calls"
    )


PEERS = ("kserve", "mlserver")


@dataclasses.dataclass(frozen=True)
class Target:
    label: str
    server: str  # key of the server process it loads
    mode: str  # json | binary | grpc


def targets_for(size: str, peers: tuple[str, ...]) -> list[Target]:
    targets = [
        Target("thunderbolt json", "tb", "json"),
        Target("thunderbolt binary", "tb", "binary"),
        Target("thunderbolt grpc", "tb", "grpc"),
        Target("thunderbolt 2 workers json", "tb2", "json"),
    ]
    if size == "large":
        targets.append(Target("thunderbolt no-batching json", "tbnb", "json"))
    return targets + [Target(f"{peer} json", peer, "json") for peer in peers]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--skip-peers", action="store_true", help="no KServe, no MLServer")
    parser.add_argument("--models", default="small,large", help="comma list of: small, large")
    parser.add_argument("--out", type=pathlib.Path, default=CACHE / "bench" / "serving_bench.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    began = time.perf_counter()

    work = pathlib.Path(tempfile.mkdtemp(prefix="serving-bench-"))
    pythons: dict[str, pathlib.Path] = {}
    if not args.skip_peers:
        pythons["kserve"] = ensure_venv(KSERVE_VENV, KSERVE_REQUIREMENT, "kserve")
        pythons["mlserver"] = ensure_venv(MLSERVER_VENV, MLSERVER_REQUIREMENT, "mlserver")
    all_results: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    notes: list[str] = []
    for size in args.models.split(","):
        model = build_model(MODELS[size])
        model_path = work / f"{size}.onnx"
        model_path.write_bytes(model)
        all_results[size] = bench_model(size, model, model_path, levels, args, pythons, notes)
        print_table(size, all_results[size], levels)
    for note in notes:
        print(note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": all_results, "notes": notes}, indent=2))
    load = os.getloadavg()[0]
    print(
        f"cpus: {os.cpu_count()} (load generator shares them; 1-min load average at the end "
        f"{load:.1f}); total {time.perf_counter() - began:.0f}s; json: {args.out}"
    )
    return 0


def bench_model(
    size: str,
    model: bytes,
    model_path: pathlib.Path,
    levels: list[int],
    args: argparse.Namespace,
    pythons: dict[str, pathlib.Path],
    notes: list[str],
) -> dict[str, dict[int, dict[str, float]]]:
    work = model_path.parent
    targets = targets_for(size, tuple(p for p in PEERS if p in pythons))
    results: dict[str, dict[int, dict[str, float]]] = {"onnxruntime in-process": {}}
    starters: dict[str, Any] = {
        "tb": lambda port, grpc, log: thunderbolt_server(model_path, port, grpc, [], log),
        "tb2": lambda port, grpc, log: thunderbolt_server(
            model_path, port, grpc, ["--workers", "2"], log
        ),
        "tbnb": lambda port, grpc, log: thunderbolt_server(
            model_path, port, grpc, ["--no-batching"], log
        ),
    }
    if "kserve" in pythons:
        script = work / "kserve_onnx_server.py"
        script.write_text(KSERVE_SERVER)
        starters["kserve"] = lambda port, grpc, log: kserve_server(
            pythons["kserve"], script, model_path, port, log
        )
    if "mlserver" in pythons:
        starters["mlserver"] = lambda port, grpc, log: mlserver_server(
            pythons["mlserver"], work, model_path, port, log
        )
    # All servers up at once (idle ones cost nothing), then every target at one level back
    # to back, so a noisy neighbour on the machine skews all targets alike.
    servers: dict[str, tuple[str, str, subprocess.Popen[bytes]]] = {}
    logs = []
    try:
        for key in dict.fromkeys(t.server for t in targets):
            port, grpc_port = free_port(), free_port()
            logs.append(open(work / f"{key}-{port}.log", "wb"))  # noqa: SIM115
            proc = starters[key](port, grpc_port, logs[-1])
            servers[key] = (f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", proc)
        for base, _, proc in servers.values():
            wait_ready(f"{base}/v2/models/{MODEL_NAME}/ready", proc)
        for t in targets:
            results[t.label] = {}
        for c in levels:
            results["onnxruntime in-process"][c] = run_floor(model, c, args.warmup, args.duration)
            for t in targets:
                base, grpc_target, proc = servers[t.server]
                where = grpc_target if t.mode == "grpc" else f"{base}/v2/models/{MODEL_NAME}/infer"
                cpu_before = cpu_seconds(proc.pid)
                result = run_loadgen(t.mode, where, c, args.warmup, args.duration)
                cpu = cpu_seconds(proc.pid) - cpu_before
                result["server_cpu_ms_per_req"] = 1000.0 * cpu / max(result.pop("sent"), 1)
                results[t.label][c] = result
        for key in ("tb", "tbnb"):
            if key in servers:
                notes.append(f"{size} model, thunderbolt {key}: {batch_stats(servers[key][0])}")
        if "kserve" in pythons and size == "small":
            check = subprocess.run(
                [str(pythons["kserve"]), "-c", KSERVE_CLIENT_CHECK],
                capture_output=True,
                text=True,
                env={
                    **os.environ,
                    "BENCH_URL": servers["tb"][0],
                    "BENCH_GRPC": servers["tb"][1],
                    "BENCH_FEATURES": str(N_FEATURES),
                },
            )
            verdict = "ok" if check.stdout.strip() == "ok" else f"FAILED: {check.stderr[-300:]}"
            notes.append(
                f"KServe InferenceRESTClient (v2, JSON and binary) and InferenceGRPCClient against "
                f"thunderbolt: {verdict}"
            )
    finally:
        for _, _, proc in servers.values():
            stop(proc)
        for log in logs:
            log.close()
    return results


def print_table(
    size: str, results: dict[str, dict[int, dict[str, float]]], levels: list[int]
) -> None:
    print(f"\n== {size} model: MLP 32 -> {' -> '.join(map(str, MODELS[size]))} -> 3 ==")
    print(
        f"\n{'target':<30} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'server CPU ms/req':>18}"
    )
    for label, by_conc in results.items():
        for c in levels:
            r = by_conc[c]
            print(
                f"{label:<30} {c:>4} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6.0f}"
                + (f" {cpu:>18.3f}" if (cpu := r.get("server_cpu_ms_per_req")) is not None else "")
            )
    peers = [label for label in results if label.split()[0] in PEERS]
    if not peers:
        return
    print(
        "\nagainst the best peer at each concurrency (most req/s among " + ", ".join(peers) + "):"
    )
    for label in (x for x in results if x.startswith("thunderbolt")):
        cells = []
        for c in levels:
            best = max(peers, key=lambda p: results[p][c]["rps"])
            r, b = results[label][c], results[best][c]
            rps, p99 = r["rps"] / b["rps"], r["p99_ms"] / b["p99_ms"]
            cpu = r["server_cpu_ms_per_req"] / b["server_cpu_ms_per_req"]
            met = rps >= 2 and cpu <= 0.5 and p99 <= 1 and not r["errors"]
            if c == 1:
                met = cpu <= 1 and not r["errors"]
            cells.append(
                f"c={c} vs {best.split()[0]}: {rps:.2f}x req/s, {p99:.2f}x p99, {cpu:.2f}x CPU"
                f" [{'target met' if met else 'target missed'}]"
            )
        print(f"  {label}: " + "; ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        mode, where, conc, warm, dur = sys.argv[2:7]
        stats = asyncio.run(_loadgen(mode, where, int(conc), float(warm), float(dur)))
        print(json.dumps(stats))
        sys.exit(0)
    sys.exit(main())
