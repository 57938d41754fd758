"""Thread sizing from the container's CPU quota (cgroup files written to a tmp dir)."""

from __future__ import annotations

import os
import pathlib

import pytest

from thunderbolt.cpu_threads import (
    cgroup_cpu_quota,
    container_cpus,
    cpu_quantity,
    plan_threads,
)


def _write(root: pathlib.Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [
        ("150000 100000\n", 1.5),
        ("50000 100000", 0.5),
        ("max 100000\n", None),
        ("200000 50000", 4.0),
    ],
)
def test_cgroup_v2_cpu_max(tmp_path: pathlib.Path, cpu_max: str, cpus: float | None) -> None:
    _write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_quota(tmp_path) == cpus


def test_cgroup_v2_prefers_the_process_own_cgroup(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "cpu.max", "max 100000")
    _write(tmp_path, "kubepods/pod1/ctr/cpu.max", "100000 100000")
    assert cgroup_cpu_quota(tmp_path, "0::/kubepods/pod1/ctr\n") == 1.0
    # A cgroup path that does not exist under this root falls back to the root.
    assert cgroup_cpu_quota(tmp_path, "0::/elsewhere\n") is None


@pytest.mark.parametrize("controller", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_cfs_quota(tmp_path: pathlib.Path, controller: str) -> None:
    _write(tmp_path, f"{controller}/cpu.cfs_quota_us", "250000\n")
    _write(tmp_path, f"{controller}/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(tmp_path) == 2.5


def test_cgroup_v1_unlimited_quota_is_none(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(tmp_path) is None


@pytest.mark.parametrize("text", ["garbage 100000", "100000 0", "", "1 2 3"])
def test_unreadable_quota_is_none(tmp_path: pathlib.Path, text: str) -> None:
    _write(tmp_path, "cpu.max", text)
    assert cgroup_cpu_quota(tmp_path) is None


def test_no_cgroup_files_is_none_and_cores_bound_the_answer(tmp_path: pathlib.Path) -> None:
    assert cgroup_cpu_quota(tmp_path) is None
    assert 1 <= container_cpus(tmp_path) <= len(os.sched_getaffinity(0))
    _write(tmp_path, "cpu.max", "10000000 100000")  # a quota above the cores: cores win
    assert container_cpus(tmp_path) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("value", "cpus"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1.5", 1.5),
        ("+3", 3.0),
        ("2e3m", 2.0),
        ("250000u", 0.25),
        ("1.", 1.0),
        (".5", 0.5),
        ("2e0", 2.0),
    ],
)
def test_cpu_quantities(value: str, cpus: float) -> None:
    assert cpu_quantity(value) == pytest.approx(cpus)


@pytest.mark.parametrize("value", ["", "1Ki", "two", "1.5.2"])
def test_bad_cpu_quantities_raise(value: str) -> None:
    with pytest.raises(ValueError):
        cpu_quantity(value)


@pytest.mark.parametrize(
    ("cpus", "intra", "workers"),
    [
        (0.25, 1, 1),
        (1.0, 1, 1),
        (1.9, 1, 1),
        (2.0, 2, 1),
        (3.5, 3, 1),
        (4, 4, 1),
        (8.0, 4, 2),
        (16, 4, 4),
    ],
)
def test_plan_sizes_from_whole_cpus(cpus: float, intra: int, workers: int) -> None:
    plan = plan_threads(cpus)
    assert (plan.intra_op, plan.inter_op, plan.workers) == (intra, 1, workers)


def test_plan_splits_cpus_between_workers_and_explicit_values_win() -> None:
    assert plan_threads(8.0, workers=4).intra_op == 2
    assert plan_threads(2.0, workers=4).intra_op == 1
    plan = plan_threads(8.0, intra_op=3, inter_op=2, workers=2)
    assert (plan.intra_op, plan.inter_op, plan.workers) == (3, 2, 2)
