"""Side-by-side serving benchmark, on a small and a large ONNX MLP.

Targets, all with the same onnxruntime session settings (CPU, 1 intra-op thread):
  * onnxruntime called in-process (the floor: no HTTP, no JSON);
  * the Thunderbolt server, with and without dynamic batching;
  * KServe's Python model server (the ``kserve`` package) wrapping the same session,
    installed in its own venv (.cache/bench-kserve-venv) because its pins clash with ours.

Load comes from a separate process (aiohttp, N concurrent connections, closed loop), the
same one-row JSON V2 request for every HTTP target. For each model it prints requests/s,
p50 and p99 at each concurrency, the server's CPU time per request (a figure a busy
machine skews far less than wall-clock ones), and ratios. About 2-3 minutes.

    .venv/bin/python bench/serving_bench.py [--duration 3] [--concurrency 1,16,64]
        [--models small,large] [--skip-kserve]
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
import threading
import time
import urllib.request
from typing import Any

import numpy as np

from thunderbolt.artifacts import sha256_digest

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
KSERVE_VENV = CACHE / "bench-kserve-venv"
KSERVE_REQUIREMENT = os.environ.get("BENCH_KSERVE_REQUIREMENT", "kserve==0.21.0")
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

KSERVE_CLIENT_CHECK = """
import asyncio, os, numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

async def main():
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1))
    x = np.ones((2, int(os.environ["BENCH_FEATURES"])), np.float32)
    for binary in (False, True):
        inp = InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        res = await client.infer(os.environ["BENCH_URL"], InferRequest(model_name="bench", infer_inputs=[inp], request_id="k1"),
                                 model_name="bench")
        assert res.outputs[0].as_numpy().shape == (2, 3), res
    print("ok")
    await client.close()

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


def request_body() -> bytes:
    row = np.random.default_rng(1).normal(size=N_FEATURES).round(4).tolist()
    return json.dumps(
        {
            "id": "bench",
            "inputs": [
                {"name": "input", "shape": [1, N_FEATURES], "datatype": "FP32", "data": row}
            ],
        }
    ).encode()


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


async def _loadgen(
    url: str, body: bytes, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + duration

        async def worker() -> None:
            nonlocal errors, sent
            while (t0 := time.perf_counter()) < stop_at:
                sent += 1
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    await r.read()
                    ok = r.status == 200
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    if ok:
                        latencies.append(t1 - t0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {**summarize(latencies, duration, errors), "sent": sent}


def run_loadgen(
    url: str, body_path: pathlib.Path, concurrency: int, warmup: float, duration: float
) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--loadgen",
            url,
            str(body_path),
            str(concurrency),
            str(warmup),
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


# ---- the floor ---------------------------------------------------------------------


def run_floor(model: bytes, concurrency: int, warmup: float, duration: float) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    x = np.asarray(json.loads(request_body())["inputs"][0]["data"], np.float32).reshape(1, -1)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads: a figure a busy machine barely skews."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_kserve_venv() -> pathlib.Path:
    python = KSERVE_VENV / "bin" / "python"
    probe = [str(python), "-c", "import kserve, onnxruntime"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {KSERVE_REQUIREMENT} into {KSERVE_VENV} (once)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(KSERVE_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, KSERVE_REQUIREMENT, "onnxruntime", "numpy"], check=True)
    return python


def thunderbolt_server(
    model_path: pathlib.Path, port: int, batching: bool, log: Any
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "thunderbolt.serving", "--model-uri", model_path.as_uri(),
        "--checksum", sha256_digest(model_path.read_bytes()),
        "--model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--intra-op-threads", "1", "--log-level", "WARNING",
    ]  # fmt: skip
    if not batching:
        args.append("--no-batching")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--skip-kserve", action="store_true")
    parser.add_argument("--models", default="small,large", help="comma list of: small, large")
    parser.add_argument("--out", type=pathlib.Path, default=CACHE / "bench" / "serving_bench.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    began = time.perf_counter()

    work = pathlib.Path(tempfile.mkdtemp(prefix="serving-bench-"))
    body_path = work / "body.json"
    body_path.write_bytes(request_body())
    kserve_python = None if args.skip_kserve else ensure_kserve_venv()
    all_results: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    notes: list[str] = []
    for size in args.models.split(","):
        model = build_model(MODELS[size])
        model_path = work / f"{size}.onnx"
        model_path.write_bytes(model)
        all_results[size] = bench_model(
            size, model, model_path, body_path, levels, args, kserve_python, notes
        )
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
    body_path: pathlib.Path,
    levels: list[int],
    args: argparse.Namespace,
    kserve_python: pathlib.Path | None,
    notes: list[str],
) -> dict[str, dict[int, dict[str, float]]]:
    work = model_path.parent
    results: dict[str, dict[int, dict[str, float]]] = {"onnxruntime in-process": {}}
    starters: list[tuple[str, Any]] = [
        ("thunderbolt batching", lambda port, log: thunderbolt_server(model_path, port, True, log)),
        (
            "thunderbolt no-batching",
            lambda port, log: thunderbolt_server(model_path, port, False, log),
        ),
    ]
    if kserve_python is not None:
        script = work / "kserve_onnx_server.py"
        script.write_text(KSERVE_SERVER)
        starters.append(
            (
                "kserve (no batching)",
                lambda port, log: kserve_server(kserve_python, script, model_path, port, log),
            )
        )
    # All servers up at once (idle ones cost nothing), then every target at one level back
    # to back, so a noisy neighbour on the machine skews all targets alike.
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    logs = []
    try:
        for label, start in starters:
            port = free_port()
            logs.append(open(work / f"{label.split()[0]}-{port}.log", "wb"))  # noqa: SIM115
            servers[label] = (f"http://127.0.0.1:{port}", start(port, logs[-1]))
        for label, (base, proc) in servers.items():
            wait_ready(f"{base}/v2/models/{MODEL_NAME}/ready", proc)
            results[label] = {}
        for c in levels:
            results["onnxruntime in-process"][c] = run_floor(model, c, args.warmup, args.duration)
            for label, (base, proc) in servers.items():
                url = f"{base}/v2/models/{MODEL_NAME}/infer"
                cpu_before = cpu_seconds(proc.pid)
                result = run_loadgen(url, body_path, c, args.warmup, args.duration)
                cpu = cpu_seconds(proc.pid) - cpu_before
                result["server_cpu_ms_per_req"] = 1000.0 * cpu / max(result.pop("sent"), 1)
                results[label][c] = result
        for label, (base, _) in servers.items():
            if label.startswith("thunderbolt"):
                notes.append(f"{size} model, {label}: {batch_stats(base)}")
        if kserve_python is not None and size == "small":
            base = servers["thunderbolt batching"][0]
            check = subprocess.run(
                [str(kserve_python), "-c", KSERVE_CLIENT_CHECK],
                capture_output=True,
                text=True,
                env={**os.environ, "BENCH_URL": base, "BENCH_FEATURES": str(N_FEATURES)},
            )
            verdict = "ok" if check.stdout.strip() == "ok" else f"FAILED: {check.stderr[-500:]}"
            notes.append(
                f"KServe InferenceRESTClient (v2, JSON and binary) against thunderbolt: {verdict}"
            )
    finally:
        for _, proc in servers.values():
            stop(proc)
        for log in logs:
            log.close()
    return results


def print_table(
    size: str, results: dict[str, dict[int, dict[str, float]]], levels: list[int]
) -> None:
    print(f"\n== {size} model: MLP 32 -> {' -> '.join(map(str, MODELS[size]))} -> 3 ==")
    print(
        f"\n{'target':<26} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'server CPU ms/req':>18}"
    )
    for label, by_conc in results.items():
        for c in levels:
            r = by_conc[c]
            print(
                f"{label:<26} {c:>4} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6.0f}"
                + (f" {cpu:>18.3f}" if (cpu := r.get("server_cpu_ms_per_req")) is not None else "")
            )
    print("\nratios (req/s a/b, p99 a/b):")
    pairs = [
        ("thunderbolt batching", "kserve (no batching)"),
        ("thunderbolt no-batching", "kserve (no batching)"),
        ("thunderbolt batching", "thunderbolt no-batching"),
        ("thunderbolt batching", "onnxruntime in-process"),
    ]
    for a, b in pairs:
        if a in results and b in results:
            cells = []
            for c in levels:
                ra, rb = results[a][c], results[b][c]
                cells.append(
                    f"c={c}: {ra['rps'] / rb['rps']:.2f}x rps, {ra['p99_ms'] / rb['p99_ms']:.2f}x p99"
                )
            print(f"  {a} / {b}: " + "; ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        url, body_file, conc, warm, dur = sys.argv[2:7]
        stats = asyncio.run(
            _loadgen(url, pathlib.Path(body_file).read_bytes(), int(conc), float(warm), float(dur))
        )
        print(json.dumps(stats))
        sys.exit(0)
    sys.exit(main())
