"""`make demo` brings up everything first; `make e2e-kind` refuses clearly without Docker."""

from __future__ import annotations

import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_make_demo_runs_install_and_up_before_the_demo():
    done = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    up = next(i for i, line in enumerate(lines) if "hack/up.sh" in line)
    demo = next(i for i, line in enumerate(lines) if "hack/demo.sh" in line)
    assert up < demo
    make_db = subprocess.run(
        ["make", "-pn", "demo"], cwd=REPO, capture_output=True, text=True, timeout=60
    ).stdout
    rule = next(line for line in make_db.splitlines() if line.startswith("demo:"))
    assert rule.split(":", 1)[1].split() == ["install", "up"]


def test_e2e_kind_names_the_missing_tools(tmp_path):
    # A PATH with bash and coreutils only: no docker, kind or helm.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "date", "printf", "cat", "dirname"):
        path = subprocess.run(
            ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True
        ).stdout.strip()
        if path.startswith("/"):
            (bin_dir / tool).symlink_to(path)
    done = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "hack" / "e2e-kind.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    assert "Missing: docker kind helm kubectl" in done.stderr
    assert "make demo" in done.stderr
    assert os.path.exists(REPO / "mk" / "e2e-kind.mk")
