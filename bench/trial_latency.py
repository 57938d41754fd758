"""Latency from a Trial finishing to its successor's Job existing, on the local cluster.

One Experiment with ``parallelTrials: 1`` and a trainer stand-in that exits at once, so
every Trial's successor is created only after it finishes. Two watches (Trials, Jobs)
timestamp on this machine the moment trial *n* is reported Succeeded and the moment
Job *n+1* appears; the difference is the operator's reaction (watch event -> tell ->
suggest -> create Trial -> create ConfigMap and Job). Also printed: from the Job's
completion (as the Job watch saw it) to the successor Job, which adds the Job -> Trial
status hop. Needs `make cluster` and the base image.

    .venv/bin/python bench/trial_latency.py [--trials 31] [--sampler tpe]
"""

from __future__ import annotations

import argparse
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
SCRIPT = (
    "import json, os; p = json.loads(os.environ['THUNDERBOLT_PARAMETERS']); "
    "open('/dev/termination-log', 'w').write(json.dumps("
    "{'status': 'Succeeded', 'objective': 1 - (p['x'] - 0.3) ** 2}))"
)


def kubectl(*args: str) -> Any:
    import subprocess

    return subprocess.run(
        [str(REPO / ".cluster/bin/kubectl"), f"--kubeconfig={REPO / '.cluster/kubeconfig'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def experiment(trials: int, sampler: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "latency"},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": sampler, "seed": 1},
            "maxTrials": trials,
            "parallelTrials": 1,
            "parameters": [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}],
            "trialTemplate": {
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", SCRIPT],
                "dataset": {"uri": "builtin://iris"},
                "resources": {"cpu": "50m", "memory": "64Mi"},
                "backoffLimit": 0,
            },
        },
    }


class Timeline:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trial_done: dict[int, float] = {}
        self.job_created: dict[int, float] = {}
        self.job_done: dict[int, float] = {}

    def first(self, table: dict[int, float], number: int) -> None:
        now = time.monotonic()
        with self.lock:
            table.setdefault(number, now)


def _watch_forever(stream: Any, handle: Any, stop: threading.Event) -> None:
    """Re-open a watch whenever it ends or fails, until ``stop`` (events are idempotent)."""
    while not stop.is_set():
        w = watch.Watch()
        try:
            for event in stream(w):
                handle(event["object"])
                if stop.is_set():
                    w.stop()
        except Exception as exc:  # a dropped watch must not end the measurement
            print(f"watch restarted: {type(exc).__name__}: {exc}", file=sys.stderr)
            time.sleep(0.2)


def watch_trials(api: client.ApiClient, ns: str, tl: Timeline, stop: threading.Event) -> None:
    custom = client.CustomObjectsApi(api)

    def handle(obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            tl.first(tl.trial_done, int(obj["spec"]["number"]))

    _watch_forever(
        lambda w: w.stream(
            custom.list_namespaced_custom_object, GROUP, VERSION, ns, "trials", timeout_seconds=60
        ),
        handle,
        stop,
    )


def watch_jobs(api: client.ApiClient, ns: str, tl: Timeline, stop: threading.Event) -> None:
    batch = client.BatchV1Api(api)

    def handle(job: Any) -> None:
        number = int((job.metadata.labels or {}).get("thunderbolt.io/trial-number", -1))
        tl.first(tl.job_created, number)
        if job.status and (job.status.succeeded or job.status.failed):
            tl.first(tl.job_done, number)

    _watch_forever(
        lambda w: w.stream(batch.list_namespaced_job, ns, timeout_seconds=60), handle, stop
    )


def service_account_ready(core: client.CoreV1Api, ns: str) -> bool:
    try:
        return bool(core.read_namespaced_service_account("default", ns).secrets)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=31)
    parser.add_argument("--sampler", default="tpe")
    args = parser.parse_args()

    kubeconfig = REPO / ".cluster/kubeconfig"
    api = config.new_client_from_config(config_file=str(kubeconfig), context="thunderbolt-local")
    core = client.CoreV1Api(api)
    install_crds(kubectl)
    ns = f"bench-latency-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    deadline = time.monotonic() + 60
    while not service_account_ready(core, ns):
        if time.monotonic() > deadline:
            raise SystemExit("default ServiceAccount not ready")
        time.sleep(0.2)
    host_ip = (REPO / ".cluster/host-ip").read_text().strip()
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = OperatorProcess(ns, kubeconfig, "thunderbolt-local", host_ip, log)
    tl, stop = Timeline(), threading.Event()
    threads = [
        threading.Thread(target=f, args=(api, ns, tl, stop), daemon=True)
        for f in (watch_trials, watch_jobs)
    ]
    try:
        op.start()
        for t in threads:
            t.start()
        time.sleep(1)
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, ns, "experiments", experiment(args.trials, args.sampler)
        )
        deadline = time.monotonic() + 20 * args.trials + 120
        while len(tl.job_created) < args.trials or len(tl.trial_done) < args.trials:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"timed out: {len(tl.trial_done)} trials done, {len(tl.job_created)} jobs"
                    f" seen; operator log: {log}"
                )
            time.sleep(0.5)
        stop.set()
        reconcile = {
            kind: (
                op.metric("thunderbolt_reconcile_duration_seconds_sum", kind=kind) or 0.0,
                op.metric("thunderbolt_reconcile_duration_seconds_count", kind=kind) or 1.0,
            )
            for kind in ("experiment", "trial")
        }
    finally:
        op.stop()
        core.delete_namespace(ns, propagation_policy="Background")

    from_trial = [tl.job_created[n + 1] - tl.trial_done[n] for n in range(args.trials - 1)]
    from_job = [
        tl.job_created[n + 1] - tl.job_done[n] for n in range(args.trials - 1) if n in tl.job_done
    ]
    print(f"{args.trials} trials, parallelTrials=1, sampler={args.sampler}")
    for label, values in (
        ("Trial Succeeded -> next Job", from_trial),
        ("Job complete    -> next Job", from_job),
    ):
        print(
            f"{label}: n={len(values)} p50={percentile(values, 50) * 1000:.0f} ms"
            f" p95={percentile(values, 95) * 1000:.0f} ms"
            f" mean={statistics.mean(values) * 1000:.0f} ms max={max(values) * 1000:.0f} ms"
        )
    for kind, (total, count) in reconcile.items():
        print(f"operator {kind} reconcile: {count:.0f} runs, mean {total / count * 1000:.0f} ms")
    print(f"operator log: {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
