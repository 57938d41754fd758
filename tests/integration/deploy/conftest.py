"""Fixtures for ModelDeployment tests on the real local cluster.

Everything is real: moto_server and ``mlflow server`` run on the host bound to the CNI
gateway address (pods reach them there), the operator is ``thunderbolt operator`` in a
subprocess on the host (it reaches pod IPs and ClusterIPs directly), and the pods run the
real serving image, ``thunderbolt-trainer:0.1.0`` (``THUNDERBOLT_TEST_SERVING_IMAGE``
overrides it, e.g. for a cluster that cannot build images).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.crds import crds  # noqa: F401
from tests.fixtures.operator import operator_process  # noqa: F401
from tests.fixtures.servers import S3_CREDENTIALS, S3Server, _stop, _wait_http, free_port

GROUP, VERSION, PLURAL = "thunderbolt.io", "v1alpha1", "modeldeployments"


@pytest.fixture(scope="session")
def serving_image(request: pytest.FixtureRequest) -> str:
    """The image ModelDeployment pods run: the project's trainer image (it serves too),
    built and imported by the shared ``trainer_image`` fixture unless overridden."""
    override = os.environ.get("THUNDERBOLT_TEST_SERVING_IMAGE")
    if override:
        return override
    image: str = request.getfixturevalue("trainer_image")
    return image


@pytest.fixture(scope="session")
def host_s3(host_ip, tmp_path_factory) -> Iterator[S3Server]:
    """moto_server reachable by pods at the host IP."""
    root = tmp_path_factory.mktemp("deploy-s3")
    port = free_port()
    log = root / "moto.log"
    exe = Path(sys.executable).parent / "moto_server"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(exe), "-H", host_ip, "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    endpoint = f"http://{host_ip}:{port}"
    _wait_http(f"{endpoint}/moto-api/", proc, log, 60)
    server = S3Server(endpoint=endpoint, proc=proc, log=log)
    server.bucket("models")
    yield server
    _stop(proc)


class HostMlflow:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)


@pytest.fixture(scope="session")
def host_mlflow(host_ip, tmp_path_factory) -> Iterator[HostMlflow]:
    """``mlflow server`` (sqlite, proxied artifacts) reachable by pods at the host IP."""
    root = tmp_path_factory.mktemp("deploy-mlflow")
    port = free_port()
    log = root / "mlflow.log"
    exe = Path(sys.executable).parent / "mlflow"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(exe), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--serve-artifacts", "--artifacts-destination", (root / "artifacts").as_uri(),
             "--host", host_ip, "--port", str(port), "--workers", "1",
             "--allowed-hosts", "*"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # Registry webhooks may reach the host's operator (a private address, http),
            # and a webhook created by a test is used at once (no 60 s listing cache).
            env={**os.environ, "MLFLOW_TRACKING_URI": "", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                 "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_CACHE_TTL": "1"},
        )  # fmt: skip
    url = f"http://{host_ip}:{port}"
    _wait_http(f"{url}/health", proc, log, 180)
    yield HostMlflow(url, proc, log)
    _stop(proc)


@pytest.fixture
def operator(crds, namespace, serving_image, host_s3, host_ip, operator_process):  # noqa: F811
    """``thunderbolt operator`` on the host, watching the test's namespace; it may verify
    models from the MLflow servers the tests run on the host."""
    env = {
        "THUNDERBOLT_MODEL_SOURCE_HOSTS": host_ip,
        "THUNDERBOLT_SERVING_IMAGE": serving_image,
        "THUNDERBOLT_S3_ENDPOINT": host_s3.endpoint,
        "THUNDERBOLT_ARTIFACTS_SECRET": "artifacts",
    }
    return operator_process(namespace, env=env)


@pytest.fixture
def artifacts_secret(kube_api, namespace) -> str:
    """The AWS shared-credentials file the pods mount (moto accepts any key)."""
    text = (
        "[default]\n"
        f"aws_access_key_id = {S3_CREDENTIALS['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {S3_CREDENTIALS['AWS_SECRET_ACCESS_KEY']}\n"
    )
    client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="artifacts"), string_data={"credentials": text}
        ),
    )
    return "artifacts"


class Deployments:
    """Create, patch and watch ModelDeployments of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str, operator: Any) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.namespace = namespace
        self.operator = operator

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment",
                "metadata": {"name": name}, "spec": spec}  # fmt: skip
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec},
            _content_type="application/merge-patch+json",
        )  # fmt: skip

    def get(self, name: str) -> dict[str, Any]:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return dict(obj)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait(self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 180,
             every: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            if predicate(status):
                return status
            if every is not None:
                every()
            time.sleep(1)
        pods = self.core.list_namespaced_pod(self.namespace)
        pod_states = [(p.metadata.name, p.status.phase, [c.state for c in p.status.container_statuses or []])
                      for p in pods.items]  # fmt: skip
        pytest.fail(
            f"timed out after {timeout}s; status:\n{json.dumps(status, indent=1)}\npods: {pod_states}\n"
            f"operator log tail:\n{self.operator.log_text()[-6000:]}",
            pytrace=False,
        )

    def selector(self, service: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_service(service, self.namespace).spec.selector or {})

    def wait_selected(self, service: str, revision: int, timeout: float = 30) -> None:
        """The operator records a switch in the status first, then moves the Service."""
        deadline = time.monotonic() + timeout
        while self.selector(service).get("thunderbolt.io/revision") != str(revision):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Service {service} does not select revision {revision}: {self.selector(service)}"
                )
            time.sleep(0.5)

    def event_reasons(self, name: str) -> set[str]:
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return {e.reason for e in found.items}

    def cluster_ip(self, service: str) -> str:
        return str(self.core.read_namespaced_service(service, self.namespace).spec.cluster_ip)

    def revision_deployments(self, name: str) -> set[int]:
        found = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"thunderbolt.io/modeldeployment={name}"
        )
        return {int(d.metadata.labels["thunderbolt.io/revision"]) for d in found.items}


@pytest.fixture
def deployments(kube_api, namespace, operator, artifacts_secret) -> Deployments:
    return Deployments(kube_api, namespace, operator)
