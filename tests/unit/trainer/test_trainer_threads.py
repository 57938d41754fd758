from __future__ import annotations

from thunderbolt.trainer.threads import cgroup_cpu_limit, choose


def test_cgroup_v2_quota_is_read_as_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5


def test_unlimited_cgroup_has_no_cpu_limit(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota_is_read_as_cpus(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(tmp_path) == 2.0


def test_explicit_thread_count_wins(monkeypatch):
    monkeypatch.setenv("THUNDERBOLT_CPU_THREADS", "3")
    assert choose() == 3
