"""Fixtures for tests that need a real Kubernetes cluster.

All fixtures are lazy: a test that asks for none of them (MLflow, S3 tests) never starts
the cluster. By default the tests use the local cluster from `make cluster`
(.cluster/kubeconfig, context ``thunderbolt-local``) and bring it up when it is not
answering. They never follow the ambient KUBECONFIG/current-context: to run against
another cluster, name its context in ``THUNDERBOLT_TEST_CONTEXT`` (the kubeconfig then
comes from ``KUBECONFIG`` or ~/.kube/config), so a stray context cannot be hit by accident.

Fixtures:
    cluster      -> ClusterInfo (session)
    kube_api     -> kubernetes.client.ApiClient (session)
    kubectl      -> Kubectl: kubectl(*args, input=None, timeout=120, check=False)
                    -> subprocess.CompletedProcess[str] (session)
    namespace    -> str, a fresh namespace per test, deleted afterwards (function)
    base_image   -> str, "localhost/thunderbolt-base:bookworm", present in containerd (session)
    host_ip      -> str, the address pods use to reach servers on the host (session)
    trainer_image / operator_image -> str, "thunderbolt-trainer:0.1.0" / "thunderbolt-operator:0.1.0"
                    built from trainer-image/ and operator/ (buildah) and imported (session)
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO / ".cluster"
LOCAL_CONTEXT = "thunderbolt-local"
BASE_IMAGE = "localhost/thunderbolt-base:bookworm"
IMAGE_VERSION = "0.1.0"
CLUSTER_FIXTURES = {
    "cluster",
    "kube_api",
    "kubectl",
    "namespace",
    "base_image",
    "host_ip",
    "trainer_image",
    "operator_image",
}


@dataclass(frozen=True)
class ClusterInfo:
    """Where the tests' cluster is and how to talk to it."""

    kubeconfig: Path
    context: str
    kubectl_bin: str
    local: bool  # the cluster from `make cluster` (host can reach pod and Service IPs)


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]: ...


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests that use cluster fixtures `cluster`, so `-m "not cluster"` skips them."""
    for item in items:
        if CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def _api_answers(kubeconfig: Path, context: str) -> bool:
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig), context=context)
        with api:
            client.VersionApi(api).get_code(_request_timeout=5)
        return True
    except Exception:
        return False


def _local_cluster() -> ClusterInfo:
    kubeconfig = CLUSTER_DIR / "kubeconfig"
    CLUSTER_DIR.mkdir(exist_ok=True)
    # One `make cluster` at a time, also across pytest-xdist workers.
    with open(CLUSTER_DIR / ".fixture.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (kubeconfig.is_file() and _api_answers(kubeconfig, LOCAL_CONTEXT)):
            done = subprocess.run(["make", "-s", "cluster"], cwd=REPO, timeout=3600)
            if done.returncode != 0:
                pytest.fail("`make cluster` failed; see .cluster/logs/", pytrace=False)
    kubectl_bin = CLUSTER_DIR / "bin" / "kubectl"
    if not kubectl_bin.exists():
        pytest.fail(f"{kubectl_bin} missing after `make cluster`", pytrace=False)
    return ClusterInfo(kubeconfig, LOCAL_CONTEXT, str(kubectl_bin), local=True)


def _named_cluster(context: str) -> ClusterInfo:
    kubeconfig = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
    kubeconfig = kubeconfig.expanduser()
    contexts, _ = config.list_kube_config_contexts(config_file=str(kubeconfig))
    if context not in {c["name"] for c in contexts}:
        pytest.fail(f"THUNDERBOLT_TEST_CONTEXT={context} is not in {kubeconfig}", pytrace=False)
    if not _api_answers(kubeconfig, context):
        pytest.fail(f"the API server of context {context} does not answer", pytrace=False)
    local_kubectl = CLUSTER_DIR / "bin" / "kubectl"
    kubectl_bin = shutil.which("kubectl") or (str(local_kubectl) if local_kubectl.exists() else "")
    if not kubectl_bin:
        pytest.fail("no kubectl on PATH", pytrace=False)
    return ClusterInfo(kubeconfig, context, kubectl_bin, local=False)


@pytest.fixture(scope="session")
def cluster() -> ClusterInfo:
    """The cluster under test; starts the local one (`make cluster`) when needed."""
    context = os.environ.get("THUNDERBOLT_TEST_CONTEXT", "").strip()
    if context and context != LOCAL_CONTEXT:
        return _named_cluster(context)
    return _local_cluster()


@pytest.fixture(scope="session")
def kube_api(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient bound to the test context (never the ambient one)."""
    api = config.new_client_from_config(
        config_file=str(cluster.kubeconfig), context=cluster.context
    )
    with api:
        yield api


@pytest.fixture(scope="session")
def kubectl(cluster: ClusterInfo) -> Kubectl:
    """Run kubectl against the test context; returns the CompletedProcess (text)."""

    def run(
        *args: str, input: str | None = None, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            cluster.kubectl_bin,
            f"--kubeconfig={cluster.kubeconfig}",
            f"--context={cluster.context}",
            *args,
        ]
        return subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=check
        )

    return run


def _fail_on_node_pressure(core: client.CoreV1Api) -> None:
    """Fail at once when a node is under disk or memory pressure. Why: the kubelet then
    taints the node and deletes every image no pod runs, so each later test would wait out
    its timeout on Pending pods or ErrImageNeverPull instead of saying what is wrong."""
    for node in core.list_node().items:
        for condition in node.status.conditions or ():
            if condition.type in {"DiskPressure", "MemoryPressure"} and condition.status == "True":
                free = shutil.disk_usage(CLUSTER_DIR if CLUSTER_DIR.exists() else REPO).free
                pytest.fail(
                    f"node {node.metadata.name} reports {condition.type} "
                    f"({condition.message}); {free / 2**30:.1f} GiB free on the disk under "
                    f"{REPO}: free space or memory, then `make images` to re-import images",
                    pytrace=False,
                )


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test (with its default ServiceAccount ready); deleted after."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    _fail_on_node_pressure(core)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"thunderbolt.io/test": "true"})
        )
    )
    # Pods are refused until the ServiceAccount admission plugin finds the default
    # ServiceAccount and (on 1.20) its token secret.
    deadline = time.monotonic() + 60
    while True:
        try:
            sa = core.read_namespaced_service_account("default", name)
            if sa.secrets:
                break
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name}: default ServiceAccount not ready after 60s")
        time.sleep(0.2)
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="session")
def base_image(cluster: ClusterInfo) -> str:
    """The local python3 base image, built (debootstrap+buildah) and imported when missing."""
    if not cluster.local:
        image = os.environ.get("THUNDERBOLT_BASE_IMAGE")
        if not image:
            pytest.skip("set THUNDERBOLT_BASE_IMAGE to a python3 image the named cluster can run")
        return image
    done = subprocess.run(["bash", str(REPO / "hack/images/base.sh")], cwd=REPO, timeout=1800)
    if done.returncode != 0:
        pytest.fail("hack/images/base.sh failed", pytrace=False)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def host_ip(cluster: ClusterInfo) -> str:
    """Address at which pods reach servers on the host (the CNI bridge gateway)."""
    if not cluster.local:
        ip = os.environ.get("THUNDERBOLT_HOST_IP")
        if not ip:
            pytest.skip("set THUNDERBOLT_HOST_IP for a named cluster")
        return ip
    return (CLUSTER_DIR / "host-ip").read_text().strip()


def _project_image(cluster: ClusterInfo, directory: str, name: str) -> str:
    """Build (or reuse, by content hash) a project image and import it into containerd."""
    image = f"{name}:{IMAGE_VERSION}"
    if not cluster.local:
        env = f"THUNDERBOLT_{name.removeprefix('thunderbolt-').upper()}_IMAGE"
        if not os.environ.get(env):
            pytest.skip(f"set {env} to the image the named cluster should run")
        return os.environ[env]
    if not (REPO / directory / "Dockerfile").is_file():
        pytest.fail(f"{directory}/Dockerfile does not exist", pytrace=False)
    done = subprocess.run(
        ["bash", str(REPO / "hack/images/build.sh"), directory, image], cwd=REPO, timeout=3600
    )
    if done.returncode != 0:
        pytest.fail(f"building {image} failed", pytrace=False)
    return image


@pytest.fixture(scope="session")
def trainer_image(cluster: ClusterInfo) -> str:
    """thunderbolt-trainer:0.1.0 in the cluster's containerd (pods: imagePullPolicy Never)."""
    return _project_image(cluster, "trainer-image", "thunderbolt-trainer")


@pytest.fixture(scope="session")
def operator_image(cluster: ClusterInfo) -> str:
    """thunderbolt-operator:0.1.0 in the cluster's containerd (pods: imagePullPolicy Never)."""
    return _project_image(cluster, "operator", "thunderbolt-operator")
