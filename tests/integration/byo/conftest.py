"""Bring-your-own-code examples end to end on the real local cluster.

The examples' images are built from their Dockerfiles with the project's buildah script
(on top of the freshly built trainer image), Trials upload to moto_server on the host,
and ModelDeployments serve the best model from there.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.crds import crds  # noqa: F401
from tests.fixtures.operator import operator_process  # noqa: F401
from tests.integration.deploy.conftest import (  # noqa: F401
    Deployments,
    artifacts_secret,
    host_s3,
    serving_image,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "byo"


@pytest.fixture(scope="session")
def example_image(cluster, trainer_image) -> Callable[[str, str], str]:
    """``example_image(directory, image)``: an example's Dockerfile built FROM the trainer
    image (rebuilt when either changes) and imported into the cluster's containerd."""
    built: dict[str, str] = {}

    def build(directory: str, image: str) -> str:
        if image in built:
            return built[image]
        if not cluster.local:
            pytest.skip("example images are built for the local cluster only")
        folder = EXAMPLES / directory
        # buildah stores short names fully qualified, as containerd does
        base = trainer_image if "/" in trainer_image else f"docker.io/library/{trainer_image}"
        done = subprocess.run(
            ["bash", str(REPO / "hack/images/build.sh"), str(folder), image,
             "--context", str(folder), "--build-arg", f"BASE_IMAGE={base}"],
            cwd=REPO, timeout=3600,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"building {image} from {folder} failed", pytrace=False)
        built[image] = image
        return image

    return build


@pytest.fixture
def byo_operator(crds, namespace, serving_image, host_s3, artifacts_secret, operator_process):  # noqa: F811
    """``thunderbolt operator`` on the host; Trials upload their models to moto's S3."""
    env = {
        "THUNDERBOLT_SERVING_IMAGE": serving_image,
        "THUNDERBOLT_S3_ENDPOINT": host_s3.endpoint,
        "THUNDERBOLT_ARTIFACTS_URI": "s3://models/byo",
        "THUNDERBOLT_ARTIFACTS_SECRET": artifacts_secret,
    }
    return operator_process(namespace, env=env)


@pytest.fixture
def deployments(kube_api, namespace, byo_operator) -> Deployments:
    return Deployments(kube_api, namespace, byo_operator)


def manifest(directory: str, name: str) -> dict[str, Any]:
    """An example's YAML document, as the README tells users to apply it."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / directory / name).read_text())
    return doc
