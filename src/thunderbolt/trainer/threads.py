"""CPU threads for torch, sized to the pod's CPU limit rather than the node's cores.

torch starts one intra-op thread per visible core; in a pod limited to one CPU on a
64-core node that means 64 threads fighting over one CPU's quota and training many
times slower. numpy's BLAS (OpenBLAS spins its threads) gets the same limit.
``OMP_NUM_THREADS`` (or ``THUNDERBOLT_CPU_THREADS``) still wins.
"""

from __future__ import annotations

import math
import os
import pathlib


def cgroup_cpu_limit(root: pathlib.Path = pathlib.Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 CFS quota); None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def choose() -> int:
    for name in ("THUNDERBOLT_CPU_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = cgroup_cpu_limit()
    allowed = cores or 1
    if limit is not None:
        allowed = min(allowed, max(1, math.ceil(limit)))
    return allowed


def configure() -> int:
    import torch

    threads = choose()
    torch.set_num_threads(threads)
    try:  # numpy's BLAS too (the validation checks' SVD and neighbour products)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")
    except ImportError:  # pragma: no cover (scikit-learn, in the train extra, brings it)
        pass
    return threads
