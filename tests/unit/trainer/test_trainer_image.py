"""The trainer image's Dockerfile keeps the contract the operator and the build rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path

from thunderbolt.api.trainer_config import CONFIG_PATH, OUTPUT_DIR

DOCKERFILE = Path(__file__).resolve().parents[3] / "trainer-image" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_base_image_is_a_build_arg_defaulting_to_python_slim():
    steps = _instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    assert steps[1] == ("FROM", "${BASE_IMAGE}")


def test_torch_is_pinned_and_installed_before_the_package_with_train_and_serve():
    steps = _instructions()
    runs = [args for op, args in steps if op == "RUN"]
    torch_step = next(i for i, r in enumerate(runs) if '"torch==${TORCH_VERSION}"' in r)
    package_step = next(i for i, r in enumerate(runs) if '"/src[train,serve]"' in r)
    assert torch_step < package_step
    assert ("ARG", "TORCH_VERSION=2.13.0") in steps
    assert any(op == "ARG" and args.startswith("TORCH_INDEX_URL=") for op, args in steps)


def test_runs_as_uid_1000_with_the_operators_config_and_output_paths():
    steps = dict(_instructions()[2:])
    assert steps["USER"] == "1000:1000"
    assert json.loads(steps["ENTRYPOINT"]) == ["thunderbolt"]
    assert json.loads(steps["CMD"]) == ["train", "--config", CONFIG_PATH, "--output", OUTPUT_DIR]
