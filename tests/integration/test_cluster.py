"""The local cluster does what the operator needs: real containers, real networking.

Each test runs real pods (imagePullPolicy: Never, local base image) under a Pod Security
"restricted" securityContext, which is how the operator runs trial Jobs.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

Kubectl = Callable[..., subprocess.CompletedProcess[str]]  # the `kubectl` fixture

RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}
# requests == limits: Guaranteed QoS, whose negative oom_score_adj containerd must clamp
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "64Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}


def core_api(api: client.ApiClient) -> Any:
    """CoreV1Api, typed Any: these tests pass plain dict manifests, which the client accepts."""
    return client.CoreV1Api(api)


def batch_api(api: client.ApiClient) -> Any:
    return client.BatchV1Api(api)


def container(name: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": RESTRICTED_CONTAINER,
        "resources": RESOURCES,
        **extra,
    }


def pod_manifest(name: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,  # python as PID 1 ignores SIGTERM
            "automountServiceAccountToken": False,
            "securityContext": RESTRICTED_POD,
            "containers": [container(name, image, command, **extra)],
        },
    }


def wait_pod_done(core: Any, ns: str, name: str, kubectl: Kubectl, timeout: float = 120) -> Any:
    """Wait until the pod Succeeded or Failed; fail with `kubectl describe` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.phase in ("Succeeded", "Failed"):
            return pod
        time.sleep(0.5)
    described = kubectl("-n", ns, "describe", "pod", name).stdout
    pytest.fail(f"pod {ns}/{name} not done after {timeout}s:\n{described}")


def logs(kubectl: Kubectl, ns: str, target: str) -> str:
    result = kubectl("-n", ns, "logs", target)
    assert result.returncode == 0, f"kubectl logs {target}: {result.stderr}"
    return result.stdout


def test_restricted_job_completes_with_termination_message(
    kube_api: client.ApiClient, kubectl: Kubectl, namespace: str, base_image: str
) -> None:
    script = (
        "import json, os\n"
        "print('hello from the trial', flush=True)\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
        "msg = {'val_accuracy': 0.93, 'uid': os.getuid(),\n"
        "       'seccomp': status['Seccomp'].strip(), 'no_new_privs': status['NoNewPrivs'].strip(),\n"
        "       'cap_eff': status['CapEff'].strip()}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(msg))\n"
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "trial"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": RESTRICTED_POD,
                    "containers": [
                        container(
                            "trial",
                            base_image,
                            ["python3", "-c", script],
                            terminationMessagePolicy="FallbackToLogsOnError",
                        )
                    ],
                }
            },
        },
    }
    batch_api(kube_api).create_namespaced_job(namespace, job)

    batch = batch_api(kube_api)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = batch.read_namespaced_job_status("trial", namespace).status
        if status.succeeded or status.failed:
            break
        time.sleep(0.5)
    described = kubectl("-n", namespace, "describe", "job,pod").stdout
    assert status.succeeded == 1, f"job did not succeed:\n{described}"

    core = core_api(kube_api)
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=trial").items
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    # the restricted securityContext is in force inside the container, not just accepted:
    # seccomp filter mode (2), no_new_privs, no effective capabilities
    assert json.loads(terminated.message) == {
        "val_accuracy": 0.93,
        "uid": 1000,
        "seccomp": "2",
        "no_new_privs": "1",
        "cap_eff": "0000000000000000",
    }
    assert "hello from the trial" in logs(kubectl, namespace, "job/trial")


@pytest.fixture
def web_service(
    kube_api: client.ApiClient, kubectl: Kubectl, namespace: str, base_image: str
) -> Iterator[tuple[str, str, str]]:
    """A python3 http.server pod behind a ClusterIP Service; yields (cluster IP, pod IP, token)."""
    token = uuid.uuid4().hex
    serve = f"mkdir -p /tmp/www && echo {token} > /tmp/www/token && cd /tmp/www && exec python3 -m http.server 8080"
    pod = pod_manifest(
        "web",
        base_image,
        ["sh", "-c", serve],
        ports=[{"containerPort": 8080}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    core = core_api(kube_api)
    core.create_namespaced_pod(namespace, pod)
    svc = core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    waited = kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod/web", "--timeout=90s")
    assert waited.returncode == 0, kubectl("-n", namespace, "describe", "pod", "web").stdout
    # kube-proxy programs the Service once the endpoint is ready
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ep = core.read_namespaced_endpoints("web", namespace)
        if ep.subsets and ep.subsets[0].addresses:
            break
        time.sleep(0.5)
    pod_ip = core.read_namespaced_pod("web", namespace).status.pod_ip
    yield svc.spec.cluster_ip, pod_ip, token


def fetch_in_pod(
    kube_api: client.ApiClient, kubectl: Kubectl, ns: str, image: str, name: str, url: str
) -> str:
    """Run a pod that GETs url with urllib (retrying a few seconds); return its log."""
    script = (
        "import sys, time, urllib.request\n"
        "for attempt in range(20):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen({url!r}, timeout=3).read().decode().strip()); sys.exit(0)\n"
        "    except Exception as exc:\n"
        "        print('retry', exc, file=sys.stderr); time.sleep(1)\n"
        "sys.exit(1)\n"
    )
    core = core_api(kube_api)
    core.create_namespaced_pod(ns, pod_manifest(name, image, ["python3", "-c", script]))
    pod = wait_pod_done(core, ns, name, kubectl)
    out = logs(kubectl, ns, f"pod/{name}")
    assert pod.status.phase == "Succeeded", f"{name} could not GET {url}:\n{out}"
    return out


def test_pod_reaches_service_by_cluster_ip(
    kube_api: client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    base_image: str,
    web_service: tuple[str, str, str],
) -> None:
    cluster_ip, _, token = web_service
    out = fetch_in_pod(
        kube_api, kubectl, namespace, base_image, "client", f"http://{cluster_ip}/token"
    )
    assert token in out


def test_host_reaches_pod_and_cluster_ips(cluster: Any, web_service: tuple[str, str, str]) -> None:
    if not cluster.local:
        pytest.skip("only the local cluster routes pod and Service IPs to this host")
    cluster_ip, pod_ip, token = web_service
    for url in (f"http://{pod_ip}:8080/token", f"http://{cluster_ip}/token"):
        # kube-proxy programs a new endpoint within a sync period: retry briefly
        deadline = time.monotonic() + 20
        while True:
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert body.strip() == token, url


def test_pod_reaches_server_on_host(
    kube_api: client.ApiClient, kubectl: Kubectl, namespace: str, base_image: str, host_ip: str
) -> None:
    token = uuid.uuid4().hex
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.client_address[0])
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host_ip, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://{host_ip}:{server.server_address[1]}/"
        out = fetch_in_pod(kube_api, kubectl, namespace, base_image, "to-host", url)
    finally:
        server.shutdown()
        server.server_close()
    assert token in out
    assert seen, "the host server saw no request"


def test_pod_reaches_kubernetes_api_service(
    kube_api: client.ApiClient, kubectl: Kubectl, namespace: str, base_image: str
) -> None:
    """In-cluster clients (the operator) reach the API server through the `kubernetes` Service."""
    script = (
        "import json, os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "host, port = os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT']\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "req = urllib.request.Request(f'https://{host}:{port}/version')\n"
        "req.add_header('Authorization', 'Bearer ' + open(sa + '/token').read())\n"
        "print(json.loads(urllib.request.urlopen(req, context=ctx, timeout=10).read())['gitVersion'])\n"
    )
    manifest = pod_manifest("in-cluster", base_image, ["python3", "-c", script])
    manifest["spec"]["automountServiceAccountToken"] = True
    core = core_api(kube_api)
    core.create_namespaced_pod(namespace, manifest)
    pod = wait_pod_done(core, namespace, "in-cluster", kubectl)
    out = logs(kubectl, namespace, "pod/in-cluster")
    assert pod.status.phase == "Succeeded", out
    assert out.strip().startswith("v1."), out
