"""Bring-your-own-container examples on the real local cluster, each test with its own
operator process; the example images are built from examples/byo/*/Dockerfile."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.crds import crds  # noqa: F401
from tests.fixtures.operator import operator_process  # noqa: F401

REPO = Path(__file__).resolve().parents[3]


def _example_image(cluster, directory: str, name: str) -> str:
    image = f"{name}:0.1.0"
    if not cluster.local:
        env = f"THUNDERBOLT_{name.upper().replace('-', '_')}_IMAGE"
        if not os.environ.get(env):
            pytest.skip(f"set {env} to the image the named cluster should run")
        return os.environ[env]
    done = subprocess.run(
        ["bash", str(REPO / "hack/images/build.sh"), directory, image], cwd=REPO, timeout=1800
    )
    if done.returncode != 0:
        pytest.fail(f"building {image} failed", pytrace=False)
    return image


@pytest.fixture(scope="session")
def stdout_image(cluster, base_image) -> str:
    return _example_image(cluster, "examples/byo/stdout-flags", "thunderbolt-byo-stdout")


@pytest.fixture(scope="session")
def shell_image(cluster, base_image) -> str:
    return _example_image(cluster, "examples/byo/shell-file", "thunderbolt-byo-shell")
