"""How many threads and processes the server uses: sized from the container's CPU, not the node's.

onnxruntime sizes its intra-op pool from the cores it can see, which in a pod are the
node's; with a CPU quota of one core those threads then spin against each other and the
pod is throttled. So the server reads the cgroup quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us``) and the CPU affinity, and sizes from the
smaller. The operator, which knows the pod's CPU before it starts, passes the same sizes
explicitly (``plan_threads`` is the one rule both use). Pure except ``container_cpus``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import re

CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
_QUANTITY = re.compile(r"^\+?((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)([numkMGTPE]?)$")
_SCALE = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_SCALE.update({"T": 1e12, "P": 1e15, "E": 1e18})


@dataclasses.dataclass(frozen=True)
class ThreadPlan:
    """``intra_op``: onnxruntime threads per session; ``inter_op``: its inter-op pool (only
    used by parallel execution mode, so 1); ``workers``: server processes on one port."""

    intra_op: int
    inter_op: int
    workers: int


def read_text_or_none(path: pathlib.Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_v2_dirs(root: pathlib.Path, proc_cgroup: str | None) -> list[pathlib.Path]:
    """The process's own cgroup v2 directory (from /proc/self/cgroup), then the root: inside
    a container with a cgroup namespace the root *is* the container's cgroup."""
    dirs = []
    for line in (proc_cgroup or "").splitlines():
        if line.startswith("0::"):
            rel = line[3:].strip().lstrip("/")
            if rel:
                dirs.append(root / rel)
    return [*dirs, root]


def cgroup_cpu_quota(
    root: pathlib.Path = CGROUP_ROOT, proc_cgroup: str | None = None
) -> float | None:
    """CPUs the cgroup quota allows (e.g. 1.5), or None when there is no quota."""
    for directory in cgroup_v2_dirs(root, proc_cgroup):
        text = read_text_or_none(directory / "cpu.max")
        if text is not None:
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                try:
                    quota, period = int(fields[0]), int(fields[1])
                except ValueError:
                    return None
                return quota / period if quota > 0 and period > 0 else None
            return None
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota_text = read_text_or_none(root / name / "cpu.cfs_quota_us")
        period_text = read_text_or_none(root / name / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            continue
        try:
            quota, period = int(quota_text), int(period_text)
        except ValueError:
            return None
        return quota / period if quota > 0 and period > 0 else None  # -1: unlimited
    return None


def container_cpus(root: pathlib.Path = CGROUP_ROOT) -> float:
    """CPUs this process may use: the cgroup quota, capped by the cores it may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root, read_text_or_none(pathlib.Path("/proc/self/cgroup")))
    return min(float(cores), quota) if quota is not None else float(cores)


def cpu_quantity(value: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2", "1.5", "2e3m") in CPUs."""
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"not a CPU quantity: {value!r}")
    return float(match.group(1)) * _SCALE[match.group(2)]


def default_workers(cpus: float) -> int:
    """One process below 4 CPUs: on 2 cores a second worker lost throughput and CPU per
    request (docs/serving.md). Above, one per 4 CPUs, so each keeps a few intra-op
    threads (one Python process handles about one core of HTTP work); not measured there."""
    return 1 if cpus < 4 else max(1, math.floor(cpus + 1e-9) // 4)


def plan_threads(cpus: float, intra_op: int = 0, inter_op: int = 0, workers: int = 0) -> ThreadPlan:
    """Explicit values (> 0) win; 0 means "derive from ``cpus``": the whole CPUs are split
    between the worker processes, at least one intra-op thread each."""
    whole = max(1, math.floor(cpus + 1e-9))
    workers = workers if workers > 0 else default_workers(cpus)
    return ThreadPlan(
        intra_op=intra_op if intra_op > 0 else max(1, whole // workers),
        inter_op=inter_op if inter_op > 0 else 1,
        workers=workers,
    )
