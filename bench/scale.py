"""The operator's cost per finished Trial as searches grow, on the real local cluster.

Runs the real operator process (as ``make up`` runs it: ``thunderbolt operator``, the
report endpoint inside it, resync every 15 s) against the local cluster and drives

* one Experiment to N Trials (``--sizes``, default 100,1000; ``--huge`` adds 10 000:
  about 70 minutes at the 2.5 Trials/s seen on the 2-core machine) with
  ``parallelTrials: 10``, TPE;
* E Experiments at once (``--concurrent``, e.g. 1,10,100), ``--each`` Trials each,
  ``parallelTrials: 2``.

**Stand-in for training.** Each run gets a fresh namespace and operator. The Trials'
pods carry a nodeSelector no node matches, so the Job controller creates them as usual
but nothing is scheduled and no container runs. The bench plays the trainer and the
kubelet: for each new Trial pod it reads the Trial's report-token Secret, POSTs a final
``StopReport`` (Succeeded, objective = a known function of the parameters) to the
operator's report endpoint, then writes the pod's status as the kubelet would (phase
Succeeded, the trainer container terminated with exit 0 and the ``TrainResult`` as its
termination message). The Job controller then completes the Job, the operator reads the
result from the pod as always, and once the Trial is Succeeded the bench deletes its Job
(background propagation, as a ``ttlSecondsAfterFinished`` would), so 10 000 finished
pods do not pile up on a 2-core API server.

Why this is honest: everything the operator does is the real thing — its watches
(Experiments, Trials, Jobs, pods), the Trial cache, the reconcile (tell, suggest, create
Trial, report Secret, ConfigMap, Job), the status sync from Job and pod, the report
ingest path (token check, Trial status write), Events and metrics. Only the kubelet and
the container runtime are absent, and their cost is not the operator's. (A ResourceQuota
``pods: "0"`` would stop pods from existing at all, so no Job could complete and no Trial
could finish through the operator's own path; that is why pods exist but stay unbound.)

Printed per size: operator RSS (start, peak, end, after deleting the Experiment), operator
CPU-seconds per finished Trial (/proc utime+stime), Experiment reconcile p50/p95 (from the
operator's histogram, bucket deltas), API-server requests and response bytes per finished
Trial (kube-apiserver's /metrics deltas; the bench's own requests subtracted; the Job
controller's and scheduler's included, shown per verb/resource), successor latency (report
answered -> the successor's Job ADDED in a Jobs watch), ``thunderbolt get/leaderboard/
compare`` times, and ratios vs the first size; with the API server's audit log on
(``make cluster-down; THUNDERBOLT_API_AUDIT=1 make cluster``), the LISTs per finished
Trial by client (user agent and query), which the metrics cannot attribute. Needs
`make cluster` (no images: no pod runs).

    .venv/bin/python bench/scale.py [--sizes 100,1000] [--huge] [--concurrent 1,10,100]
        [--each 10] [--sampler tpe] [--png docs/img/scale.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, config, watch  # noqa: E402

from tests.fixtures.crds import install_crds  # noqa: E402
from tests.fixtures.operator import OperatorProcess  # noqa: E402
from thunderbolt.api.meta import EXPERIMENT_LABEL, TRIAL_LABEL  # noqa: E402
from thunderbolt.api.report_schema import CONTENT_TYPE, report_url  # noqa: E402
from thunderbolt.api.report_secret import TOKEN_KEY, secret_name  # noqa: E402

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
KUBECONFIG = REPO / ".cluster/kubeconfig"
CONTEXT = "thunderbolt-local"
NO_NODE = {"bench.thunderbolt.io/no-such-node": "true"}
FINISHED = ("Succeeded", "Failed", "Pruned")
TICKS = os.sysconf("SC_CLK_TCK")
WATCHED_GROUPS = {"thunderbolt.io", "batch", "", "events.k8s.io", "coordination.k8s.io"}


def objective(params: dict[str, Any]) -> float:
    """The known function the stand-in trainer reports (best: x=0.3, width=16)."""
    x, width = float(params["x"]), int(params["width"])
    return 1.0 - (x - 0.3) ** 2 - 0.01 * abs(math.log2(width) - 4)


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".cluster/bin/kubectl"), f"--kubeconfig={KUBECONFIG}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def experiment(name: str, trials: int, parallel: int, sampler: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": sampler, "seed": 1},
            "maxTrials": trials,
            "parallelTrials": parallel,
            "maxFailedTrials": trials,
            "parameters": [
                {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
                {"name": "width", "type": "categorical", "choices": [8, 16, 32]},
            ],
            "trialTemplate": {
                "image": "localhost/thunderbolt-base:bookworm",
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", "pass"],
                "dataset": {"uri": "builtin://iris"},
                "resources": {"cpu": "10m", "memory": "32Mi"},
                "backoffLimit": 0,
                "nodeSelector": NO_NODE,
            },
        },
    }


# --- measurements --------------------------------------------------------------------
def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, proc_rss_mb(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return
            self.stop.wait(0.5)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            out.append(
                (dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")), float(match.group(3)))
            )
    return out


def reconcile_buckets(op: OperatorProcess) -> dict[float, float]:
    found = samples(op.metrics_text(), "thunderbolt_reconcile_duration_seconds_bucket")
    return {float(lbl["le"]): v for lbl, v in found if lbl.get("kind") == "experiment"}


def bucket_percentile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Linear interpolation inside the histogram bucket holding the q-th percentile."""
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q / 100 * total, 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return bounds[-1]


Key = tuple[str, str]  # (VERB, group/resource[/subresource])


def apiserver_totals() -> tuple[Counter[Key], Counter[Key]]:
    text = kubectl("get", "--raw", "/metrics").stdout
    requests: Counter[Key] = Counter()
    sizes: Counter[Key] = Counter()
    for name, table in (
        ("apiserver_request_total", requests),
        ("apiserver_response_sizes_sum", sizes),
    ):
        for labels, value in samples(text, name):
            if not labels.get("resource") or labels.get("group", "") not in WATCHED_GROUPS:
                continue
            resource = f"{labels.get('group') or 'core'}/{labels['resource']}"
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            table[(labels.get("verb", "?"), resource)] += value
    return requests, sizes


AUDIT_LOG = REPO / ".cluster/logs/audit.log"


def audit_offset() -> int:
    """Where the API server's audit log ends now (0: no log; see THUNDERBOLT_API_AUDIT)."""
    return AUDIT_LOG.stat().st_size if AUDIT_LOG.exists() else 0


def audited_lists(offset: int, ns: str) -> Counter[str]:
    """LISTs in ``ns`` (and cluster-wide ones) logged since ``offset``, by client: user
    agent, resource and the query's keys, so each can be traced to the code asking."""
    counts: Counter[str] = Counter()
    if not AUDIT_LOG.exists():
        return counts
    with AUDIT_LOG.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            ref = event.get("objectRef") or {}
            if event.get("verb") != "list" or ref.get("namespace") not in (None, ns):
                continue
            query = urllib.parse.urlsplit(event.get("requestURI", "")).query
            keys = ",".join(sorted(k for k, _ in urllib.parse.parse_qsl(query)))
            agent = str(event.get("userAgent", "?")).split(" ")[0]
            scope = "namespace" if ref.get("namespace") else "cluster"
            counts[f"{agent} {ref.get('resource')} ({scope}; {keys or 'no query'})"] += 1
    return counts


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# --- the trainer and kubelet stand-in ------------------------------------------------
class StandIn:
    """Watches Trials, pods and Jobs in one namespace and finishes every Trial's pod."""

    def __init__(self, api: client.ApiClient, ns: str, report_base: str) -> None:
        self.api, self.ns, self.report_base = api, ns, report_base
        self.core, self.batch = client.CoreV1Api(api), client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.resumed: Counter[str] = Counter()  # watches resumed after a close, per kind
        self.params: dict[str, dict[str, Any]] = {}
        self.handled: set[str] = set()
        self.pods_of: dict[str, set[str]] = defaultdict(set)
        self.finished: dict[str, float] = {}  # trial -> when the watch saw it finished
        self.phases: Counter[str] = Counter()
        self.reported: dict[str, list[float]] = defaultdict(list)  # experiment -> times
        self.jobs: dict[str, list[float]] = defaultdict(list)  # experiment -> ADDED times
        self.jobs_seen: set[str] = set()
        # per Trial: when the bench's kubelet wrote the pod Succeeded, when the Jobs watch
        # saw the Job complete (the Job controller's part lies in between)
        self.pod_done: dict[str, float] = {}
        self.job_done: dict[str, float] = {}
        self.progress: dict[str, list[float]] = defaultdict(list)
        self.own_requests: Counter[Key] = Counter()
        self.own_bytes: Counter[Key] = Counter()
        self.errors: Counter[str] = Counter()
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.threads = [
            threading.Thread(target=self._watch, args=(kind,), daemon=True)
            for kind in ("trials", "pods", "jobs")
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _own(self, verb: str, resource: str, response: Any) -> bytes:
        data = response.data
        with self.lock:
            self.own_requests[(verb, resource)] += 1
            self.own_bytes[(verb, resource)] += len(data)
        return bytes(data)

    # -- watches
    def _stream(self, kind: str, w: watch.Watch, since: str | None) -> Any:
        resume = {"resource_version": since} if since else {}
        if kind == "trials":  # plain dicts: no model round trip for each event
            return w.stream(
                self.custom.list_namespaced_custom_object,
                GROUP, VERSION, self.ns, "trials", timeout_seconds=300, deserialize=False,
                **resume,
            )  # fmt: skip
        lister = self.core.list_namespaced_pod if kind == "pods" else self.batch.list_namespaced_job
        return w.stream(lister, self.ns, label_selector=TRIAL_LABEL, timeout_seconds=300, **resume)

    def _watch(self, kind: str) -> None:
        """Follows one kind for the whole run. A watch the API server closes (at its
        timeout, or because this process fell behind under load: "Forcing watcher close
        due to unresponsiveness") resumes from the last event seen, so a close costs the
        events missed, not a replay of every object (10 000 Trials at the end of a run,
        which overloaded the API server every few seconds before); only an expired
        version (410 Gone) starts over from the current state."""
        handle = {"trials": self._trial, "pods": self._pod, "jobs": self._job}[kind]
        resource = {"trials": "thunderbolt.io/trials", "pods": "core/pods", "jobs": "batch/jobs"}
        since: str | None = None
        while not self.stop.is_set():
            with self.lock:
                self.own_requests[("WATCH", resource[kind])] += 1
                if since:
                    self.resumed[kind] += 1
            w = watch.Watch()
            try:
                for event in self._stream(kind, w, since):
                    obj = event["object"]
                    handle(event["type"], obj)
                    meta = obj.get("metadata") if isinstance(obj, dict) else obj.metadata
                    version = (
                        meta.get("resourceVersion") if isinstance(meta, dict)
                        else getattr(meta, "resource_version", None)
                    )  # fmt: skip
                    since = version or since
                    if self.stop.is_set():
                        w.stop()
            except client.ApiException as exc:  # the client raises the watch's ERROR events
                if exc.status == 410:
                    since = None  # expired: start over from the current state
                self.errors[f"watch {kind}: {exc.status}"] += 1
                time.sleep(0.2)
            except Exception as exc:  # a dropped watch must not end the measurement
                self.errors[f"watch {kind}: {type(exc).__name__}"] += 1
                time.sleep(0.2)

    def _trial(self, event: str, obj: dict[str, Any]) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        experiment = obj["metadata"]["labels"].get(EXPERIMENT_LABEL, "")
        with self.lock:
            self.params.setdefault(name, dict(obj["spec"].get("parameters") or {}))
            phase = (obj.get("status") or {}).get("phase")
            if event == "DELETED" or phase not in FINISHED or name in self.finished:
                return
            self.finished[name] = now
            self.phases[phase] += 1
            self.progress[experiment].append(now)
        self.pool.submit(self._delete_job, name)

    def _pod(self, event: str, pod: Any) -> None:
        labels = pod.metadata.labels or {}
        trial = labels.get(TRIAL_LABEL)
        if event == "DELETED" or not trial or (pod.status and pod.status.phase in FINISHED):
            return
        with self.lock:
            if pod.metadata.name in self.handled:
                return
            self.handled.add(pod.metadata.name)
            self.pods_of[trial].add(pod.metadata.name)
        self.pool.submit(self._finish, trial, labels.get(EXPERIMENT_LABEL, ""), pod.metadata.name)

    def _job(self, event: str, job: Any) -> None:
        now = time.monotonic()
        if event == "MODIFIED":
            conditions = (job.status and job.status.conditions) or []
            if any(c.type == "Complete" and c.status == "True" for c in conditions):
                with self.lock:
                    self.job_done.setdefault(job.metadata.name, now)
            return
        if event != "ADDED":
            return
        experiment = (job.metadata.labels or {}).get(EXPERIMENT_LABEL, "")
        with self.lock:
            if job.metadata.name in self.jobs_seen:
                return  # a re-opened watch lists the Jobs that still exist again
            self.jobs_seen.add(job.metadata.name)
            self.jobs[experiment].append(now)
            self.progress[experiment].append(now)

    # -- the trainer, then the kubelet
    def _finish(self, trial: str, experiment: str, pod: str) -> None:
        try:
            deadline = time.monotonic() + 30
            while trial not in self.params and time.monotonic() < deadline:
                time.sleep(0.05)
            params = self.params[trial]
            value = objective(params)
            secret = json.loads(
                self._own(
                    "GET",
                    "core/secrets",
                    self.core.read_namespaced_secret(
                        secret_name(trial), self.ns, _preload_content=False
                    ),
                )
            )
            token = base64.b64decode(secret["data"][TOKEN_KEY]).decode()
            body = json.dumps(
                {
                    "kind": "stop",
                    "step": 0,
                    "status": "Succeeded",
                    "objective": value,
                    "metrics": {"val_accuracy": value},
                }  # fmt: skip
            ).encode()
            request = urllib.request.Request(
                report_url(self.report_base, self.ns, trial),
                data=body,
                method="POST",
                headers={"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {token}"},
            )
            if not self._post(request):
                return
            with self.lock:
                self.reported[experiment].append(time.monotonic())
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            result = {"status": "Succeeded", "objective": value, "metrics": {"val_accuracy": value}}
            status = {
                "phase": "Succeeded",
                "containerStatuses": [
                    {
                        "name": "trainer",
                        "image": "localhost/thunderbolt-base:bookworm",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "message": json.dumps(result),
                                "startedAt": at,
                                "finishedAt": at,
                            }
                        },
                    }
                ],
            }
            self._own(
                "PATCH",
                "core/pods/status",
                self.core.patch_namespaced_pod_status(
                    pod, self.ns, {"status": status}, _preload_content=False
                ),
            )
            with self.lock:
                self.pod_done.setdefault(trial, time.monotonic())
        except Exception as exc:
            self.errors[f"finish: {type(exc).__name__}: {str(exc)[:80]}"] += 1

    def _post(self, request: urllib.request.Request) -> bool:
        """POST a report like the trainer's reporter: retry 429/503 after Retry-After."""
        for _ in range(10):
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    resp.read()
                return True
            except urllib.error.HTTPError as exc:
                code = json.loads(exc.read() or b"{}").get("error", exc.code)
                if exc.code not in (429, 503):
                    self.errors[f"report {exc.code} {code}"] += 1
                    return False
                time.sleep(float(exc.headers.get("Retry-After") or 1))
        self.errors["report: retries spent"] += 1
        return False

    def _delete_job(self, trial: str) -> None:
        try:
            self._own(
                "DELETE",
                "batch/jobs",
                self.batch.delete_namespaced_job(
                    trial, self.ns, propagation_policy="Background", _preload_content=False
                ),
            )
        except client.ApiException as exc:
            if exc.status != 404:
                self.errors[f"delete job: {exc.status}"] += 1

    def stages(self) -> dict[str, list[float]]:
        """Per Trial, the time each party took between the pod finishing and the Trial's
        Succeeded status: the Job controller (pod written -> Job complete, both seen
        by this process) and the operator's status sync (Job complete -> Trial
        Succeeded, both seen through watches)."""
        with self.lock:
            job = [self.job_done[t] - at for t, at in self.pod_done.items() if t in self.job_done]
            sync = [self.finished[t] - at for t, at in self.job_done.items() if t in self.finished]
        return {"job_controller": job, "status_sync": sync}

    def successor_latencies(self, parallel: int, after_finish: bool = False) -> list[float]:
        """The i-th report of an Experiment frees a slot; the (parallel+i)-th Job fills it.
        ``after_finish``: from the Trial's Succeeded status (Trial watch) instead."""
        out = []
        with self.lock:
            ends: dict[str, list[float]] = self.reported
            if after_finish:
                ends = defaultdict(list)
                for trial, at in self.finished.items():
                    ends[trial.rsplit("-", 1)[0]].append(at)
            for experiment, reports in ends.items():
                jobs = sorted(self.jobs.get(experiment, []))
                for i, reported in enumerate(sorted(reports)):
                    if parallel + i < len(jobs):
                        out.append(jobs[parallel + i] - reported)
        return out


# --- one run -------------------------------------------------------------------------
def service_account_ready(core: client.CoreV1Api, ns: str) -> bool:
    try:
        return bool(core.read_namespaced_service_account("default", ns).secrets)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def cli_seconds(ns: str, *args: str) -> float:
    began = time.perf_counter()
    main = "import sys; from thunderbolt.cli import main; sys.exit(main(sys.argv[1:]))"
    kube = ["-n", ns, "--kubeconfig", str(KUBECONFIG), "--context", CONTEXT]
    done = subprocess.run(
        [sys.executable, "-c", main, *args, *kube], capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        print(f"  thunderbolt {' '.join(args)} failed: {done.stderr[-300:]}", file=sys.stderr)
    return elapsed


def run(
    api: client.ApiClient, label: str, experiments: int, trials: int, parallel: int, sampler: str
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    ns = f"bench-scale-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    deadline = time.monotonic() + 60
    while not service_account_ready(core, ns):
        if time.monotonic() > deadline:
            raise SystemExit("default ServiceAccount not ready")
        time.sleep(0.2)
    host_ip = (REPO / ".cluster/host-ip").read_text().strip()
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = OperatorProcess(
        ns, KUBECONFIG, CONTEXT, host_ip, log, env={"THUNDERBOLT_RESYNC_SECONDS": "15"}
    )
    stand_in = StandIn(api, ns, op.report_url)
    names = [f"scale-{i:03d}" for i in range(experiments)]
    out: dict[str, Any] = {"label": label, "experiments": experiments, "trials": trials}
    try:
        op.start()
        assert op.proc is not None
        pid = op.proc.pid
        stand_in.start()
        time.sleep(1)
        # Background traffic (other namespaces being deleted, controllers' resyncs):
        # measured while nothing runs here, subtracted pro rata below.
        quiet0, quiet_at = apiserver_totals()[0], time.monotonic()
        time.sleep(10)
        quiet = apiserver_totals()[0] - quiet0
        quiet_rate = {k: v / (time.monotonic() - quiet_at) for k, v in quiet.items()}
        sampler_thread = RssSampler(pid)
        sampler_thread.start()
        out["rss_start"] = proc_rss_mb(pid)
        cpu0, buckets0 = proc_cpu_s(pid), reconcile_buckets(op)
        req0, bytes0 = apiserver_totals()
        audit0 = audit_offset()
        own_req0, own_bytes0 = Counter(stand_in.own_requests), Counter(stand_in.own_bytes)
        began = time.monotonic()
        created: dict[str, float] = {}
        for name in names:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, "experiments", experiment(name, trials, parallel, sampler)
            )
            created[name] = time.monotonic()
        total = experiments * trials
        limit = began + 120 + total * 2.0
        last, last_change = -1, time.monotonic()
        while True:
            done = len(stand_in.finished)
            if done != last:
                last, last_change = done, time.monotonic()
            if done >= total:
                break
            if time.monotonic() > limit or time.monotonic() - last_change > 120:
                raise SystemExit(
                    f"{label}: stuck at {done}/{total} finished; errors {dict(stand_in.errors)};"
                    f" operator log {log}"
                )
            time.sleep(0.5)
        wall = time.monotonic() - began
        cpu = proc_cpu_s(pid) - cpu0
        buckets1 = reconcile_buckets(op)
        req1, bytes1 = apiserver_totals()
        own_req = stand_in.own_requests - own_req0
        own_bytes = stand_in.own_bytes - own_bytes0
        noise = Counter({k: round(rate * wall) for k, rate in quiet_rate.items()})
        requests = Counter({k: v for k, v in (req1 - req0).items() if v > 0}) - own_req - noise
        sizes = Counter({k: v for k, v in (bytes1 - bytes0).items() if v > 0}) - own_bytes
        out["rss_end"] = proc_rss_mb(pid)
        finished = len(stand_in.finished)
        lists = audited_lists(audit0, ns)
        out["audited_lists"] = [(k, n / finished) for k, n in lists.most_common(12)]
        out.update(
            wall=wall,
            finished=finished,
            phases=dict(stand_in.phases),
            cpu_per_trial=cpu / finished,
            reconcile_p50=bucket_percentile(buckets0, buckets1, 50),
            reconcile_p95=bucket_percentile(buckets0, buckets1, 95),
            reconciles_per_trial=(buckets1.get(math.inf, 0.0) - buckets0.get(math.inf, 0.0))
            / finished,
            requests_per_trial=sum(requests.values()) / finished,
            bytes_per_trial=sum(sizes.values()) / finished,
            top_requests=[(f"{v} {r}", n / finished) for (v, r), n in requests.most_common(10)],
            top_bytes=[(f"{v} {r}", n / finished) for (v, r), n in sizes.most_common(6)],
            errors=dict(stand_in.errors),
            watch_resumes=dict(stand_in.resumed),
            extra_pods=sum(len(p) - 1 for p in stand_in.pods_of.values()),
            noise_per_trial=sum(noise.values()) / finished,
        )
        latencies = stand_in.successor_latencies(parallel)
        out.update(successor_p50=percentile(latencies, 50), successor_p95=percentile(latencies, 95))
        latencies = stand_in.successor_latencies(parallel, after_finish=True)
        out.update(finished_p50=percentile(latencies, 50), finished_p95=percentile(latencies, 95))
        out["finished_max"] = max(latencies, default=float("nan"))
        for stage, times in stand_in.stages().items():
            out[f"{stage}_p50"], out[f"{stage}_p95"] = percentile(times, 50), percentile(times, 95)
            out[f"{stage}_max"] = max(times, default=float("nan"))
        # The worst time any Experiment waited without progress (a Job created or a Trial
        # finished), from its creation to its last Trial finishing.
        worst = 0.0
        for name in names:
            times = sorted([created[name], *stand_in.progress.get(name, [])])
            worst = max(
                worst, max((b - a for a, b in zip(times, times[1:], strict=False)), default=0)
            )
        out["worst_stall"] = worst
        first = names[0]
        out["cli_get"] = cli_seconds(ns, "get", "trials", "--experiment", first)
        out["cli_leaderboard"] = cli_seconds(ns, "leaderboard", first)
        out["cli_compare"] = cli_seconds(ns, "compare", first, "--by", "width")
        out["rss_peak"] = max(sampler_thread.peak, out["rss_end"])
        for name in names:
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, "experiments", name, propagation_policy="Background"
            )
        gone = time.monotonic() + 120
        while time.monotonic() < gone:
            left = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "trials", limit=1)
            if not left["items"]:
                break
            time.sleep(1)
        time.sleep(3)
        out["rss_after_delete"] = proc_rss_mb(pid)
        sampler_thread.stop.set()
    finally:
        stand_in.close()
        op.stop()
        core.delete_namespace(ns, propagation_policy="Background")
        gone = time.monotonic() + 90  # so its deletion does not load the next run
        while time.monotonic() < gone:
            try:
                core.read_namespace(ns)
            except client.ApiException as exc:
                if exc.status == 404:
                    break
            time.sleep(2)
    out["log"] = str(log)
    return out


# --- the part of a reconcile that still sees every Trial, without the cluster ----------
def pure_reconcile_ms(sizes: tuple[int, ...] = (100, 1000, 10_000)) -> dict[int, float]:
    """CPU of one reconcile's in-memory work over N compact Trials (cache read, untold
    filter, plan and validation summary with the Experiment's kept tally, one Trial
    finishing per reconcile), the part that still walks every Trial: measured up to
    10 000 Trials here because a 10 000-Trial cluster run takes most of an hour on this
    machine."""
    from thunderbolt.api.experiment import parse_spec
    from thunderbolt.api.meta import now_utc
    from thunderbolt.operator import aggregate, validation_digest
    from thunderbolt.operator.tally import FinishedTally
    from thunderbolt.operator.trialcache import TrialCache

    body = experiment("e", 10_000, 10, "tpe")
    spec = parse_spec(body["spec"])
    out = {}
    for n in sizes:
        trials = [
            {
                "metadata": {
                    "name": f"e-{i:05d}", "namespace": "ns", "uid": f"u{i}",
                    "resourceVersion": str(i + 1), "labels": {EXPERIMENT_LABEL: "e"},
                    "ownerReferences": [{"uid": "E"}],
                },
                "spec": {"experiment": "e", "number": i, "parameters": {"x": i / n, "width": 16}},
                "status": {
                    "phase": "Succeeded" if i < n - 10 else "Running",
                    "objective": (i * 7919 % 1000) / 1000, "durationSeconds": 1.0,
                    "completionTime": "2026-01-01T00:00:00Z",
                },
            }
            for i in range(n)
        ]  # fmt: skip
        cache, told, tally = TrialCache(), set(range(n - 10)), FinishedTally(spec)
        cache.trials("ns", "e", "E", lambda t=trials: t)
        aggregate.plan(body, spec, cache.trials("ns", "e", "E", list), now_utc(), None, tally)
        began, reps = time.process_time(), 10
        for rep in range(reps):  # one Running Trial finishes, as its watch event brings it
            done = trials[n - 10 + rep]
            done = {**done, "metadata": {**done["metadata"], "resourceVersion": str(n + rep + 1)}}
            cache.observe("MODIFIED", {**done, "status": {**done["status"], "phase": "Succeeded"}})
            existing = cache.trials("ns", "e", "E", list)
            [t for t in existing if t["spec"]["number"] not in told]
            plan = aggregate.plan(body, spec, existing, now_utc(), None, tally)
            validation_digest.with_summary(plan.status, body, tally.validation)
        out[n] = (time.process_time() - began) / reps * 1000
    return out


# --- output --------------------------------------------------------------------------
def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base and not math.isnan(value) else "-"


def report(results: list[dict[str, Any]]) -> None:
    base = results[0]
    for r in results:
        print(
            f"\n== {r['label']}: {r['experiments']} experiment(s) x {r['trials']} trials:"
            f" {r['finished']} finished {r['phases']} in {r['wall']:.0f} s"
            f" ({r['finished'] / r['wall']:.1f}/s)"
        )
        print(
            f"  operator RSS MB: start {r['rss_start']:.0f}, peak {r['rss_peak']:.0f},"
            f" end {r['rss_end']:.0f}, after deleting {r['rss_after_delete']:.0f}"
        )
        print(
            f"  operator CPU per finished trial: {r['cpu_per_trial'] * 1000:.0f} ms"
            f" ({ratio(r['cpu_per_trial'], base['cpu_per_trial'])} of {base['label']})"
        )
        print(
            f"  experiment reconcile: p50 {r['reconcile_p50'] * 1000:.0f} ms,"
            f" p95 {r['reconcile_p95'] * 1000:.0f} ms,"
            f" {r.get('reconciles_per_trial', math.nan):.2f} per finished trial"
        )
        print(
            f"  API server per finished trial: {r['requests_per_trial']:.1f} requests"
            f" ({ratio(r['requests_per_trial'], base['requests_per_trial'])}),"
            f" {r['bytes_per_trial'] / 1024:.1f} KiB of responses"
            f" ({ratio(r['bytes_per_trial'], base['bytes_per_trial'])});"
            f" background requests subtracted: {r['noise_per_trial']:.1f}/trial"
        )
        print("    top requests/trial: " + ", ".join(f"{k} {v:.2f}" for k, v in r["top_requests"]))
        print("    top KiB/trial: " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in r["top_bytes"]))
        if r.get("audited_lists"):
            print("    LISTs/trial by client (API audit log; the bench's own included):")
            for key, per in r["audited_lists"]:
                print(f"      {per:6.2f}  {key}")
        print(
            f"  successor latency (report answered -> next Job): p50"
            f" {r['successor_p50'] * 1000:.0f} ms, p95 {r['successor_p95'] * 1000:.0f} ms;"
            f" Trial Succeeded -> next Job: p50 {r['finished_p50'] * 1000:.0f} ms,"
            f" p95 {r['finished_p95'] * 1000:.0f} ms"
        )
        print(
            "  between them: pod Succeeded -> Job complete (Job controller) p50"
            f" {r['job_controller_p50'] * 1000:.0f} ms, p95 {r['job_controller_p95'] * 1000:.0f} ms;"
            f" Job complete -> Trial Succeeded (operator's status sync) p50"
            f" {r['status_sync_p50'] * 1000:.0f} ms, p95 {r['status_sync_p95'] * 1000:.0f} ms"
        )
        print(f"  worst wait without progress (any experiment): {r['worst_stall']:.1f} s")
        print(
            "  the operator's worst: Job complete -> Trial Succeeded"
            f" {r['status_sync_max']:.1f} s, Trial Succeeded -> next Job {r['finished_max']:.1f} s;"
            f" the Job controller's worst: {r['job_controller_max']:.1f} s"
        )
        print(
            f"  CLI: get trials {r['cli_get']:.2f} s, leaderboard {r['cli_leaderboard']:.2f} s,"
            f" compare {r['cli_compare']:.2f} s"
        )
        if r["errors"] or r.get("extra_pods"):
            print(f"  stand-in errors: {r['errors']}; Trials' extra pods: {r.get('extra_pods')}")
        if r.get("watch_resumes"):
            print(f"  the bench's watches closed by the API server, resumed: {r['watch_resumes']}")
        print(f"  operator log: {r['log']}")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    single = [r for r in results if r["experiments"] == 1]
    if len(single) < 2:
        return
    n = [r["trials"] for r in single]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (
        ("operator CPU per trial (ms)", [r["cpu_per_trial"] * 1000 for r in single]),
        ("API KiB per trial", [r["bytes_per_trial"] / 1024 for r in single]),
        ("operator peak RSS (MB)", [r["rss_peak"] for r in single]),
    )
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.plot(n, values, marker="o")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("Trials in the Experiment")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="Trials in one Experiment ('' = none)")
    parser.add_argument("--huge", action="store_true", help="also 10 000 Trials (~70 min)")
    parser.add_argument("--concurrent", default="", help="e.g. 1,10,100 Experiments at once")
    parser.add_argument("--each", type=int, default=10, help="Trials per concurrent Experiment")
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--png", type=Path, help="plot cost vs N here (matplotlib)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="JSON of an earlier run to print ratios against (when one invocation would"
        " hold the cluster too long); default: the first size measured now",
    )
    args = parser.parse_args()
    # `timeout` sends SIGTERM: still stop the operator and delete the namespace.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    api = config.new_client_from_config(config_file=str(KUBECONFIG), context=CONTEXT)
    install_crds(kubectl)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.huge:
        sizes.append(10_000)
    pure = pure_reconcile_ms()
    print(
        "in-memory part of one reconcile (no cluster): "
        + ", ".join(f"N={n}: {ms:.1f} ms" for n, ms in pure.items())
    )
    results = []
    for n in sizes:
        print(f"running 1 experiment x {n} trials ...", flush=True)
        results.append(run(api, f"N={n}", 1, n, 10, args.sampler))
    for e in [int(s) for s in args.concurrent.split(",") if s.strip()]:
        print(f"running {e} experiments x {args.each} trials ...", flush=True)
        results.append(run(api, f"E={e}", e, args.each, 2, args.sampler))
    if not results:
        return 0
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    earlier = json.loads(args.baseline.read_text()) if args.baseline else []
    for r in earlier:
        r["label"] += " (earlier run)"
    report(earlier + results)
    if args.png:
        plot(earlier + results, args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
