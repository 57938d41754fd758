"""StdOut collection on the local cluster: latency from a printed line to the report
stored on the Trial, and the operator's CPU per collected line.

``--trials`` (default 10) Trials run at once; each prints ``--lines`` metric lines, one
every ``--interval`` seconds, and the objective value of each line *is* the time it was
printed (Unix seconds modulo 10^5; pods and this script share the machine's clock). A
Trial watch timestamps each step the moment it appears in ``status.intermediate``;
latency = seen - printed. Two runs of the same pods: first with ``metricsCollector:
Push`` (nobody reads the output: the operator's baseline CPU for running those Trials),
then with ``StdOut``; CPU per line = (StdOut CPU - baseline CPU) / lines collected.
Needs `make cluster` and the base image.

    .venv/bin/python bench/stdout_collect.py [--trials 10] [--lines 30] [--interval 0.5]
    .venv/bin/python bench/stdout_collect.py --parse-only   # parser and File costs, no cluster
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, config, watch  # noqa: E402

from tests.fixtures.crds import install_crds  # noqa: E402
from tests.fixtures.operator import OperatorProcess  # noqa: E402

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
IMAGE = "localhost/thunderbolt-base:bookworm"
WRAP = 100_000.0
SCRIPT = """
import json, sys, time
lines, interval = int(sys.argv[1]), float(sys.argv[2])
for step in range(1, lines + 1):
    time.sleep(interval)
    print(f"epoch={step} val_accuracy={time.time() % 100000:.6f} loss=0.5", flush=True)
open("/dev/termination-log", "w").write(json.dumps({"status": "Succeeded", "objective": 1.0}))
"""


def kubectl(*args: str) -> Any:
    import subprocess

    return subprocess.run(
        [str(REPO / ".cluster/bin/kubectl"), f"--kubeconfig={REPO / '.cluster/kubeconfig'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def experiment(name: str, kind: str, trials: int, lines: int, interval: float) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": "random", "seed": 1},
            "maxTrials": trials,
            "parallelTrials": trials,
            "parameters": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
            "trialTemplate": {
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", SCRIPT, str(lines), str(interval)],
                "metricsCollector": {"kind": kind},
                "resources": {"cpu": "20m", "memory": "32Mi"},
                "backoffLimit": 0,
            },
        },
    }


class Seen:
    """Per (trial, step): when this machine first saw it on the Trial, and its value."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.steady: list[float] = []  # steps after the first 3: the stream is open by then
        self.steps: set[tuple[str, int]] = set()

    def trial(self, obj: dict[str, Any]) -> None:
        now = time.time()
        for point in (obj.get("status") or {}).get("intermediate") or []:
            key = (obj["metadata"]["name"], int(point["step"]))
            with self.lock:
                if key in self.steps:
                    continue
                self.steps.add(key)
                printed = float(point["value"])
                latency = (now % WRAP - printed) % WRAP
                self.latencies.append(latency)
                if key[1] > 3:
                    self.steady.append(latency)


def watch_trials(api: client.ApiClient, ns: str, seen: Seen, stop: threading.Event) -> None:
    custom = client.CustomObjectsApi(api)
    while not stop.is_set():
        w = watch.Watch()
        try:
            for event in w.stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                "trials",
                label_selector="thunderbolt.io/experiment=stdout",
                timeout_seconds=60,
            ):
                seen.trial(event["object"])
                if stop.is_set():
                    w.stop()
        except Exception as exc:  # a dropped watch must not end the measurement
            print(f"watch restarted: {type(exc).__name__}: {exc}", file=sys.stderr)
            time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_one(
    api: client.ApiClient, ns: str, op: OperatorProcess, body: dict[str, Any], timeout: float
) -> float:
    """Operator CPU seconds from creating ``body`` until it has finished."""
    custom = client.CustomObjectsApi(api)
    assert op.proc is not None
    before = cpu_seconds(op.proc.pid)
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "experiments", body)
    deadline = time.monotonic() + timeout
    name = body["metadata"]["name"]
    while True:
        exp = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "experiments", name)
        if (exp.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{name} did not finish in {timeout:.0f}s; operator log: {op.log_path}"
            )
        time.sleep(0.5)
    return cpu_seconds(op.proc.pid) - before


def parse_costs() -> None:
    """The pure parts, no cluster: the parser's rate, and what the File collector costs
    (parsing the 4 KiB termination message once, in the Trial's status sync)."""
    from thunderbolt.api.collector import MetricsCollector
    from thunderbolt.collectors.stdout import LineSplitter
    from thunderbolt.metric_lines import LineParser

    lines = [f"epoch={i} val_accuracy={0.5 + i * 1e-6:.6f} loss=0.25" for i in range(1, 20001)]
    noise = [f"step {i}: batch loss 0.25 lr 0.001" for i in range(20000)]
    data = "\n".join(x for pair in zip(lines, noise, strict=True) for x in pair).encode() + b"\n"
    best = float("inf")
    for _ in range(3):
        parser, splitter = (
            LineParser("val_accuracy", MetricsCollector(kind="StdOut")),
            LineSplitter(),
        )
        began = time.perf_counter()
        for start in range(0, len(data), 65536):
            for line in splitter.feed(data[start : start + 65536]):
                parser.feed(line)
        best = min(best, time.perf_counter() - began)
    total = len(lines) + len(noise)
    print(
        f"split+parse: {total / best:,.0f} lines/s ({best / total * 1e6:.1f} us a line; half are "
        f"metric lines) on one core"
    )
    message = "\n".join(lines[-90:])[-4096:]
    reps = 2000
    began = time.perf_counter()
    for _ in range(reps):
        LineParser("val_accuracy", MetricsCollector(kind="File", path="/m")).feed_text(message)
    each = (time.perf_counter() - began) / reps
    print(
        f"File: parsing a 4 KiB termination message ({message.count(chr(10)) + 1} lines): "
        f"{each * 1e6:.0f} us, no API call beyond the pod read the status sync makes anyway"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--parse-only", action="store_true", help="the pure costs; no cluster")
    args = parser.parse_args()
    parse_costs()
    if args.parse_only:
        return 0

    kubeconfig = REPO / ".cluster/kubeconfig"
    api = config.new_client_from_config(config_file=str(kubeconfig), context="thunderbolt-local")
    core = client.CoreV1Api(api)
    install_crds(kubectl)
    ns = f"bench-stdout-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    deadline = time.monotonic() + 60
    while not core.read_namespaced_service_account("default", ns).secrets:
        if time.monotonic() > deadline:
            raise SystemExit("default ServiceAccount not ready")
        time.sleep(0.2)
    host_ip = (REPO / ".cluster/host-ip").read_text().strip()
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = OperatorProcess(ns, kubeconfig, "thunderbolt-local", host_ip, log)
    seen, stop = Seen(), threading.Event()
    timeout = args.lines * args.interval + 300
    try:
        op.start()
        baseline = run_one(
            api, ns, op, experiment("push", "Push", args.trials, args.lines, args.interval), timeout
        )
        threading.Thread(target=watch_trials, args=(api, ns, seen, stop), daemon=True).start()
        time.sleep(1)
        collecting = run_one(
            api,
            ns,
            op,
            experiment("stdout", "StdOut", args.trials, args.lines, args.interval),
            timeout,
        )
        time.sleep(1)
        stop.set()
    finally:
        op.stop()
        core.delete_namespace(ns, propagation_policy="Background")

    lines = args.trials * args.lines
    values = seen.latencies
    print(
        f"{args.trials} concurrent trials x {args.lines} lines, one every {args.interval}s "
        f"({args.trials / args.interval:.0f} lines/s in all)"
    )
    print(f"reports seen on Trials: {len(values)} of {lines}")
    if values:
        print(
            f"printed -> stored on the Trial: p50={percentile(values, 50) * 1000:.0f} ms "
            f"p95={percentile(values, 95) * 1000:.0f} ms mean={statistics.mean(values) * 1000:.0f} ms "
            f"max={max(values) * 1000:.0f} ms"
        )
    if seen.steady:
        steady = seen.steady
        print(
            f"  steps 4+ only (follower already streaming): p50={percentile(steady, 50) * 1000:.0f} ms "
            f"p95={percentile(steady, 95) * 1000:.0f} ms max={max(steady) * 1000:.0f} ms"
        )
    per_line = (collecting - baseline) / max(1, len(values))
    print(
        f"operator CPU: Push (baseline, output not read) {baseline:.2f} s, StdOut {collecting:.2f} s"
        f" -> {per_line * 1000:.2f} ms CPU per collected line "
        f"(ratio StdOut/Push {collecting / max(baseline, 1e-9):.2f}x)"
    )
    print(f"operator log: {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
