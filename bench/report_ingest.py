"""Report ingest latency: p50/p95/p99 at a fixed report rate from concurrent trainers.

Each simulated trainer is one Trial posting epoch reports one after another (as the real
trainer does) on a fixed schedule; together they make ``--rate`` reports per second.
The endpoint runs as its own process (``python -m thunderbolt.reports``), on loopback.

    # the endpoint alone (Trials in memory): HTTP + validation + auth + pruning
    .venv/bin/python bench/report_ingest.py --store memory
    # real Trial objects on the local cluster: adds the API server round trips
    .venv/bin/python bench/report_ingest.py --store kube

Prints client-side latency percentiles and, from the endpoint's /metrics, where the time
went (admit = auth/limits/parsing, persist = status write, prune = pruner decision).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from thunderbolt.api.report_secret import build_report_secret  # noqa: E402
from thunderbolt.settings import free_port  # noqa: E402

NS = "bench"


def token_for(i: int) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(f"bench-{i}".encode()).digest())
        .decode()
        .rstrip("=")
    )


def objects(namespace: str, trials: int, pruner: str, epochs: int) -> list[tuple[str, dict]]:
    """Experiment, Trials (Running) and their Secrets, as (kind, object)."""
    pruners = {"none": {"name": "none"}, "median": {"name": "median", "startupTrials": 3}}
    spec_common = {
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "template": {"image": "bench:0", "dataset": {"uri": "builtin://iris"}, "epochs": epochs},
    }
    out: list[tuple[str, dict]] = [
        (
            "experiments",
            {
                "apiVersion": "thunderbolt.io/v1alpha1",
                "kind": "Experiment",
                "metadata": {"name": "bench", "namespace": namespace},
                "spec": {
                    "objective": spec_common["objective"],
                    "pruner": pruners[pruner],
                    "maxTrials": max(trials, 1),
                    "parameters": [{"name": "lr", "type": "float", "low": 0.001, "high": 0.1}],
                    "trialTemplate": spec_common["template"],
                },
            },
        )
    ]
    for i in range(trials):
        out.append(
            (
                "trials",
                {
                    "apiVersion": "thunderbolt.io/v1alpha1",
                    "kind": "Trial",
                    "metadata": {
                        "name": f"bench-{i:03d}",
                        "namespace": namespace,
                        "labels": {"thunderbolt.io/experiment": "bench"},
                    },
                    "spec": {"experiment": "bench", "number": i, **spec_common},
                },
            )
        )
    return out


# --- the endpoint process ------------------------------------------------------------
def serve_memory(port: int, trials: int, pruner: str, epochs: int, write_delay: float) -> None:
    """Endpoint over a MemoryStore (run in a child process by ``--store memory``)."""
    from thunderbolt.reports.server import ReportServer
    from thunderbolt.reports.service import ServiceConfig
    from thunderbolt.reports.store import MemoryStore

    store = MemoryStore()
    for kind, obj in objects(NS, trials, pruner, epochs):
        stored = store.put(kind, obj)
        if kind == "trials":
            store.put("secrets", build_report_secret(stored, token=token_for(int(obj["spec"]["number"]))))  # fmt: skip
            stored["status"] = {"phase": "Running"}
            store.put("trials", stored)

    async def run() -> None:
        server = ReportServer(
            store, host="127.0.0.1", port=port, config=ServiceConfig(rate=1e6, burst=1e6, write_delay=write_delay),
            expose_metrics=True,
        )  # fmt: skip
        await server.start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def serve_hello(port: int) -> None:
    """The noise floor: an aiohttp app that answers every report with a constant reply."""
    from aiohttp import web

    from thunderbolt.api.report_schema import ROUTE

    async def reply(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"result": "accepted", "kind": "epoch", "step": 0, "prune": False})

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_post(ROUTE, reply)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/metrics", metrics)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class KubeFixture:
    """A throw-away namespace with the bench objects on the cluster."""

    def __init__(self, kubeconfig: str, context: str | None, trials: int, pruner: str, epochs: int):
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=kubeconfig, context=context)
        self.namespace = f"bench-reports-{uuid.uuid4().hex[:6]}"
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        core.create_namespace({"metadata": {"name": self.namespace}})
        for kind, obj in objects(self.namespace, trials, pruner, epochs):
            created = custom.create_namespaced_custom_object(
                "thunderbolt.io", "v1alpha1", self.namespace, kind, obj
            )
            if kind == "trials":
                number = int(obj["spec"]["number"])
                secret = build_report_secret(created, token=token_for(number))
                core.create_namespaced_secret(self.namespace, secret)
                custom.patch_namespaced_custom_object_status(
                    "thunderbolt.io", "v1alpha1", self.namespace, "trials",
                    obj["metadata"]["name"], {"status": {"phase": "Running"}},
                    _content_type="application/merge-patch+json",
                )  # fmt: skip

    def close(self) -> None:
        from kubernetes import client

        client.CoreV1Api(self.api).delete_namespace(self.namespace)


def start_endpoint(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    if args.store == "hello":
        cmd = [sys.executable, __file__, "--serve-hello", "--port", str(port)]
    elif args.store == "memory":
        cmd = [sys.executable, __file__, "--serve-memory", "--port", str(port),
               "--trials", str(args.trials), "--pruner", args.pruner, "--epochs", str(args.epochs),
               "--write-delay", str(args.write_delay)]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "thunderbolt.reports", "--host", "127.0.0.1",
               "--port", str(port), "--kubeconfig", args.kubeconfig, "--rate", "1000000",
               "--burst", "1000000", "--write-delay", str(args.write_delay)]  # fmt: skip
        if args.context:
            cmd += ["--context", args.context]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def wait_ready(base: str, session: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(base + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("endpoint did not start")


# --- the load ------------------------------------------------------------------------
async def trainer(
    session: aiohttp.ClientSession, base: str, namespace: str, i: int, interval: float,
    start_at: float, stop_at: float, warm_until: float, out: list[float], codes: Counter[Any],
) -> None:  # fmt: skip
    url = f"{base}/v1/namespaces/{namespace}/trials/bench-{i:03d}/reports"
    headers = {"Authorization": f"Bearer {token_for(i)}", "Content-Type": "application/json"}
    quality = 0.3 + 0.7 * ((i * 37) % 100) / 100  # some trials clearly worse than others
    step, due = 0, start_at + (i / max(1, 1 / interval)) % interval
    while True:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        if due >= stop_at:
            return
        step += 1
        value = quality * (1 - 0.9**step)
        body = json.dumps({"kind": "epoch", "step": step, "metrics": {"val_accuracy": value, "loss": 1 - value}})  # fmt: skip
        sent = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
        took = time.perf_counter() - sent
        if sent >= warm_until:
            out.append(took)
            codes[status] += 1
        due += interval


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_named(*names: str) -> dict[str, int]:
    """Local control-plane processes by command name (to show their share of the work)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in names and comm not in found:
                found[comm] = int(entry.name)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def histogram_summary(text: str, name: str, label: str) -> dict[str, dict[str, float]]:
    """mean and bucket-estimated p95 per label value, from Prometheus text."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(rf"{name}_(bucket|sum|count)\{{(.*)\}} (\S+)$", line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels.get(label, "")
        if m.group(1) == "bucket":
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            buckets.setdefault(key, []).append((le, float(m.group(3))))
        elif m.group(1) == "sum":
            sums[key] = float(m.group(3))
        else:
            counts[key] = float(m.group(3))
    out: dict[str, dict[str, float]] = {}
    for key, count in counts.items():
        if not count:
            continue
        p95 = next(le for le, c in sorted(buckets[key]) if c >= 0.95 * count)
        out[key] = {"count": count, "mean_ms": sums[key] / count * 1000, "p95_le_ms": p95 * 1000}
    return out


async def bench(args: argparse.Namespace, base: str, namespace: str, pid: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await wait_ready(base, session)
        latencies: list[float] = []
        codes: Counter[Any] = Counter()
        interval = args.trials / args.rate
        start = time.perf_counter() + 0.2
        warm_until = start + args.warmup
        stop = warm_until + args.duration
        watched = {"endpoint": pid, **pids_named("kube-apiserver", "etcd")}
        cpu: dict[str, float] = {}

        async def sample_cpu() -> None:
            await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
            before = {k: cpu_seconds(p) for k, p in watched.items()}
            load_before = os.getloadavg()[0]
            await asyncio.sleep(max(0.0, stop - time.perf_counter()))
            for k, p in watched.items():
                cpu[k] = cpu_seconds(p) - before[k]
            cpu["loadavg"] = (load_before + os.getloadavg()[0]) / 2

        sampler = asyncio.get_running_loop().create_task(sample_cpu())
        await asyncio.gather(*(
            trainer(session, base, namespace, i, interval, start, stop, warm_until, latencies, codes)
            for i in range(args.trials)
        ))  # fmt: skip
        await sampler
        async with session.get(base + "/metrics") as response:
            metrics_text = await response.text()
    ms = [x * 1000 for x in latencies]
    return {
        "store": args.store,
        "write_delay": args.write_delay,
        "pruner": args.pruner,
        "trials": args.trials,
        "target_rate": args.rate,
        "achieved_rate": round(len(ms) / args.duration, 1),
        "reports": len(ms),
        "status_codes": dict(codes),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "server_phases": histogram_summary(
            metrics_text, "thunderbolt_report_phase_seconds", "phase"
        ),
        "server_total": histogram_summary(
            metrics_text, "thunderbolt_report_ingest_seconds", "kind"
        ),
        "cpu_ms_per_report": {
            k: round(v * 1000 / max(1, len(ms)), 3) for k, v in cpu.items() if k != "loadavg"
        },
        "loadavg": round(cpu.get("loadavg", float("nan")), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--store", choices=["memory", "kube", "hello"], default="memory",
        help="memory: Trials in the endpoint's memory; kube: real Trials on the cluster; "
        "hello: a constant-reply aiohttp app (the machine's noise floor)",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=200.0, help="reports per second, total")
    parser.add_argument("--trials", type=int, default=40, help="concurrent trainers (Trials)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--pruner", choices=["none", "median"], default="median")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--kubeconfig", default=str(REPO / ".cluster" / "kubeconfig"))
    parser.add_argument("--context", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--write-delay", type=float, default=0.2,
        help="endpoint write-behind delay in seconds (0: acknowledge after the Trial is written)",
    )  # fmt: skip
    parser.add_argument("--serve-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-hello", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.port)
        return 0
    if args.serve_memory:
        serve_memory(args.port, args.trials, args.pruner, args.epochs, args.write_delay)
        return 0
    fixture = None
    namespace = NS
    if args.store == "kube":
        fixture = KubeFixture(args.kubeconfig, args.context, args.trials, args.pruner, args.epochs)
        namespace = fixture.namespace
    port = args.port or free_port("127.0.0.1")
    proc = start_endpoint(args, port)
    try:
        result = asyncio.run(bench(args, f"http://127.0.0.1:{port}", namespace, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if fixture is not None:
            fixture.close()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"report ingest, store={result['store']}, write_delay={args.write_delay}s, pruner={result['pruner']}, "
          f"{result['trials']} trainers, target {result['target_rate']:.0f}/s")  # fmt: skip
    print(f"  reports {result['reports']} in {args.duration:.0f}s = {result['achieved_rate']}/s, "
          f"status codes {result['status_codes']}")  # fmt: skip
    print(f"  latency p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  "
          f"p99 {result['p99_ms']} ms  max {result['max_ms']} ms")  # fmt: skip
    for kind, row in result["server_total"].items():
        print(
            f"  server total ({kind}) mean {row['mean_ms']:.2f} ms  p95 <= {row['p95_le_ms']:.1f} ms"
        )
    for phase, row in result["server_phases"].items():
        print(f"  server {phase:8s} mean {row['mean_ms']:.2f} ms  p95 <= {row['p95_le_ms']:.1f} ms")
    shares = ", ".join(f"{k} {v} ms" for k, v in result["cpu_ms_per_report"].items())
    print(f"  CPU per report: {shares}; machine load average {result['loadavg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
