"""Helpers for report tests on the real cluster: objects, Secrets, endpoint processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from thunderbolt.api.experiment import (
    Dataset,
    ExperimentSpec,
    Objective,
    Parameter,
    Pruner,
    TrialTemplate,
)
from thunderbolt.api.report_secret import build_report_secret
from thunderbolt.api.trial import TrialSpec

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
REPO = Path(__file__).resolve().parents[3]


def template(image: str = "localhost/none:0", epochs: int = 10, **extra: Any) -> TrialTemplate:
    return TrialTemplate(image=image, dataset=Dataset(uri="builtin://iris"), epochs=epochs, **extra)


def create_experiment(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    pruner: Pruner | None = None,
    direction: str = "maximize",
    epochs: int = 10,
) -> dict[str, Any]:
    spec = ExperimentSpec(
        objective=Objective(metric="val_accuracy", direction=direction),  # type: ignore[arg-type]
        pruner=pruner or Pruner(),
        maxTrials=10,
        parameters=[Parameter(name="lr", type="float", low=0.001, high=0.1)],
        trialTemplate=template(epochs=epochs),
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }
    return client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "experiments", body
    )


def create_trial(
    api: client.ApiClient,
    namespace: str,
    experiment: str,
    number: int,
    *,
    status: dict[str, Any] | None = None,
    direction: str = "maximize",
    epochs: int = 10,
) -> tuple[dict[str, Any], str]:
    """A Trial (with status, when given) and its report Secret; returns (trial, token)."""
    name = f"{experiment}-{number:03d}"
    spec = TrialSpec(
        experiment=experiment,
        number=number,
        objective=Objective(metric="val_accuracy", direction=direction),  # type: ignore[arg-type]
        template=template(epochs=epochs),
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trial",
        "metadata": {"name": name, "labels": {"thunderbolt.io/experiment": experiment}},
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }
    custom = client.CustomObjectsApi(api)
    trial = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trials", body)
    if status:
        trial = custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "trials", name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
    secret = build_report_secret(trial)
    client.CoreV1Api(api).create_namespaced_secret(namespace, secret)
    return trial, base64.b64decode(secret["data"]["token"]).decode()


def get_trial(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials", name
    )


def post(
    url: str,
    body: Any,
    *,
    token: str | None,
    content_type: str = "application/json",
    auth: str | None = None,
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type}
    if auth is not None:
        headers["Authorization"] = auth
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Endpoint:
    """``python -m thunderbolt.reports`` as a separate process, like one operator replica."""

    def __init__(self, kubeconfig: Path, context: str, *, port: int = 0, host: str = "127.0.0.1",
                 rate: float = 1000.0, write_delay: float = 0.0,
                 log_dir: Path | None = None) -> None:  # fmt: skip
        self.kubeconfig, self.context, self.host, self.rate = kubeconfig, context, host, rate
        self.write_delay = write_delay
        self.port = port
        self.log_dir = log_dir
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, namespace: str, trial: str) -> str:
        return f"{self.base}/v1/namespaces/{namespace}/trials/{trial}/reports"

    def start(self) -> Endpoint:
        if self.port == 0:
            from thunderbolt.settings import free_port

            self.port = free_port("127.0.0.1")
        cmd = [
            sys.executable, "-m", "thunderbolt.reports", "--host", self.host,
            "--port", str(self.port), "--kubeconfig", str(self.kubeconfig),
            "--context", self.context, "--rate", str(self.rate), "--burst", str(self.rate),
            "--write-delay", str(self.write_delay),
        ]  # fmt: skip
        log = open(self.log_dir / f"endpoint-{self.port}.log", "a") if self.log_dir else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"report endpoint exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("report endpoint did not come up in 60s")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crashed or evicted replica."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> Endpoint:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
