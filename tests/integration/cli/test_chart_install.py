"""`helm install` of charts/thunderbolt into the real cluster (Helm's Go SDK via
helm-python-sdk), then the operator's rights checked by the API server's own RBAC.

CRDs are left to the crds fixture (crds.enabled=false), MLflow without a PVC (the local
cluster has no storage provisioner). The operator pod itself starts only when the
operator image is in the node's containerd (`make images`).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import time
import uuid

import pytest
from kubernetes import client

from tests.fixtures.crds import crds  # noqa: F401  (fixture)

REPO = pathlib.Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "thunderbolt"


@pytest.fixture
def release(cluster, kube_api, namespace, crds):  # noqa: F811  (crds: the fixture)
    """A release in ``namespace`` watching it and a second fresh namespace."""
    import helm_python as helm

    core = client.CoreV1Api(kube_api)
    other = f"{namespace[:50]}-w2"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    name = f"tb{uuid.uuid4().hex[:6]}"
    cfg = helm.Config(
        kubeconfig_path=str(cluster.kubeconfig), kube_context=cluster.context, namespace=namespace
    )
    values = {
        "crds": {"enabled": False},
        "watchNamespaces": [namespace, other],
        "mlflow": {"persistence": {"enabled": False}},
    }
    info = cfg.install(str(CHART), name, values, namespace=namespace, timeout=120)
    try:
        yield name, other, info
    finally:
        cfg.uninstall(name, timeout=120, ignore_not_found=True)
        cfg.close()
        core.delete_namespace(other, propagation_policy="Background")


def can_i(kubectl, sa: str, verb: str, resource: str, namespace: str) -> bool:
    """`kubectl auth can-i`; "kind/sub" is a subresource (kubectl reads "a/b" as a name)."""
    resource, _, sub = resource.partition("/")
    extra = ["--subresource", sub] if sub else []
    result = kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace, "--as", sa)
    return result.stdout.strip() == "yes"


def test_install_and_least_privilege(release, namespace, kubectl, kube_api):
    name, other, info = release
    assert info["status"] == "deployed"
    sa = f"system:serviceaccount:{namespace}:{name}-thunderbolt"
    for ns in (namespace, other):
        for verb, resource in [
            ("create", "trials.thunderbolt.io"),
            ("patch", "experiments.thunderbolt.io/status"),
            ("update", "modeldeployments.thunderbolt.io/finalizers"),
            ("create", "jobs.batch"),
            ("create", "deployments.apps"),
            ("create", "services"),
            ("create", "configmaps"),
            ("create", "secrets"),
            ("create", "events"),
            ("get", "pods/log"),  # the StdOut metrics collector follows the trainer's log
        ]:
            assert can_i(kubectl, sa, verb, resource, ns), f"{verb} {resource} in {ns}"
        for verb, resource in [
            ("list", "secrets"),
            ("watch", "secrets"),
            ("create", "pods"),
            ("patch", "pods/status"),
            ("update", "trials.thunderbolt.io/scale"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("delete", "namespaces"),
        ]:
            assert not can_i(kubectl, sa, verb, resource, ns), f"{verb} {resource} in {ns}"
    # Nothing outside the watched namespaces.
    assert not can_i(kubectl, sa, "create", "jobs.batch", "default")
    assert not can_i(kubectl, sa, "list", "trials.thunderbolt.io", "kube-system")
    apps = client.AppsV1Api(kube_api)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    assert deployments == {f"{name}-thunderbolt", f"{name}-thunderbolt-mlflow"}


def _image_present(image: str) -> bool:
    ctr = shutil.which("ctr")
    if not ctr:
        return False
    listed = subprocess.run(
        [
            ctr,
            "-a",
            "/run/thunderbolt/containerd/containerd.sock",
            "-n",
            "k8s.io",
            "images",
            "ls",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return any(line.rstrip().endswith(image) for line in listed.stdout.splitlines())


def test_operator_becomes_ready(release, namespace, kube_api):
    if not _image_present("thunderbolt-operator:0.1.0"):
        pytest.skip("thunderbolt-operator:0.1.0 is not in the node's containerd (make images)")
    name, _, _ = release
    apps = client.AppsV1Api(kube_api)
    deadline = time.monotonic() + 180
    while True:
        status = apps.read_namespaced_deployment_status(f"{name}-thunderbolt", namespace).status
        if (status.ready_replicas or 0) >= 1:
            break
        assert time.monotonic() < deadline, f"operator not ready: {status}"
        time.sleep(2)


def test_mlflow_becomes_ready(release, namespace, kube_api, cluster):
    if not _image_present("thunderbolt-trainer:0.1.0"):
        pytest.skip("thunderbolt-trainer:0.1.0 (which carries mlflow) is not in containerd")
    name, _, _ = release
    apps = client.AppsV1Api(kube_api)
    deadline = time.monotonic() + 300
    while True:
        status = apps.read_namespaced_deployment_status(
            f"{name}-thunderbolt-mlflow", namespace
        ).status
        if (status.ready_replicas or 0) >= 1:
            break
        assert time.monotonic() < deadline, f"mlflow not ready: {status}"
        time.sleep(3)
    if not cluster.local:
        return
    # Reachable by its Service name (the Host header pods send); MLflow refuses other hosts.
    service = client.CoreV1Api(kube_api).read_namespaced_service(
        f"{name}-thunderbolt-mlflow", namespace
    )
    url = f"http://{service.spec.cluster_ip}:5000/api/2.0/mlflow/experiments/search?max_results=1"
    host = f"{name}-thunderbolt-mlflow.{namespace}.svc:5000"
    assert _status(url, host) == 200
    assert _status(url, "evil.example.com") in (400, 403)


def _status(url: str, host: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Host": host})
    deadline = time.monotonic() + 60
    while True:  # kube-proxy may need a moment to program the new Service
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
