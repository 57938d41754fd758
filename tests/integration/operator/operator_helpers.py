"""Helpers for the operator's cluster tests: a stand-in trainer, manifests, polling."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
CONTAINERD_SOCK = "/run/thunderbolt/containerd/containerd.sock"
T = TypeVar("T")

# The stand-in trainer: reads the operator's contract (env + mounted config) and writes
# a TrainResult to the termination log; what it does depends on the parameters.
STANDIN = r"""
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # PID 1 ignores SIGTERM otherwise
params = json.loads(os.environ["THUNDERBOLT_PARAMETERS"])
config = json.load(open(os.environ["THUNDERBOLT_CONFIG"]))
assert config["identity"]["trial"] == os.environ["THUNDERBOLT_TRIAL"]
time.sleep(float(os.environ.get("TRIAL_SLEEP", "1")))
mode = params.get("mode", "ok")
def finish(result, code=0):
    with open("/dev/termination-log", "w") as f:
        f.write(json.dumps(result))
    sys.exit(code)
if mode == "fail":
    print("boom: failing on purpose", file=sys.stderr)
    sys.exit(3)
if mode == "diverge":
    finish({"status": "Failed", "reason": "Diverged", "message": "loss is nan at epoch 2"}, 1)
if mode == "oom":
    hog = b"\x01" * (512 * 1024 * 1024)
    finish({"status": "Succeeded", "objective": len(hog)})
x = float(params.get("x", 0.5))
value = 1.0 - (x - 0.3) ** 2 + (0.05 if params.get("spectral_norm") else 0.0)
finish({
    "status": "Succeeded",
    "objective": value,
    "metric": "val_accuracy",
    "metrics": {"val_accuracy": value, "val_loss": 1.0 - value},
    "extra": {"seed": config["seed"], "uid": config["identity"]["uid"]},
})
"""


def experiment(
    name: str,
    image: str,
    *,
    max_trials: int = 4,
    parallel: int = 2,
    max_failed: int = 2,
    goal: float | None = None,
    seed: int | None = 1,
    sampler: str = "tpe",
    mode: list[str] | None = None,
    sleep: float = 1.0,
    memory: str = "64Mi",
    storage: str | None = None,
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
        {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
    ]
    if mode:
        parameters.append({"name": "mode", "type": "categorical", "choices": mode})
    objective: dict[str, Any] = {"metric": "val_accuracy", "direction": "maximize"}
    if goal is not None:
        objective["goal"] = goal
    algorithm: dict[str, Any] = {"name": sampler}
    if seed is not None:
        algorithm["seed"] = seed
    if storage:
        algorithm["storage"] = storage
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": objective,
            "algorithm": algorithm,
            "maxTrials": max_trials,
            "parallelTrials": parallel,
            "maxFailedTrials": max_failed,
            "parameters": parameters,
            "trialTemplate": {
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", STANDIN],
                "env": [{"name": "TRIAL_SLEEP", "value": str(sleep)}],
                "dataset": {"uri": "builtin://iris"},
                "epochs": 2,
                "resources": {"cpu": "50m", "memory": memory},
                "backoffLimit": 0,
                "activeDeadlineSeconds": 300,
            },
        },
    }


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Cluster:
    """Thin typed access to the objects a test looks at."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.ns, "experiments", body
            )
        )

    def experiment(self, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, "experiments", name)
        )

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, "experiments", name, {"spec": spec}
        )

    def delete_experiment(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, "experiments", name)

    def trials(self, experiment: str | None = None) -> list[dict[str, Any]]:
        selector = f"thunderbolt.io/experiment={experiment}" if experiment else ""
        items = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.ns, "trials", label_selector=selector
        )["items"]
        return sorted(items, key=lambda t: t["spec"]["number"])

    def jobs(self) -> list[Any]:
        return list(self.batch.list_namespaced_job(self.ns).items)

    def pods(self) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.ns).items)

    def events(self, name: str) -> list[Any]:
        return [
            e
            for e in self.core.list_namespaced_event(self.ns).items
            if e.involved_object.name == name
        ]

    def phase(self, name: str) -> str | None:
        return (self.experiment(name).get("status") or {}).get("phase")

    def wait_phase(self, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            exp = self.experiment(name)
            return exp if (exp.get("status") or {}).get("phase") in phases else None

        return wait_for(done, timeout, f"experiment {name} in {phases}")


def service_account_ready(core: client.CoreV1Api, namespace: str) -> bool:
    """Pods are refused until the namespace's default ServiceAccount has its token."""
    try:
        return bool(core.read_namespaced_service_account("default", namespace).secrets)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def containerd_image(image: str) -> str | None:
    """The name under which containerd (the cluster's) holds ``image``, if it does."""
    try:
        out = subprocess.run(
            ["ctr", "-a", CONTAINERD_SOCK, "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    present = set(out.stdout.split())
    for name in (image, f"docker.io/library/{image}", f"localhost/{image}"):
        if name in present:
            return name
    return None


def best_of(trials: list[dict[str, Any]]) -> dict[str, Any]:
    done = [t for t in trials if (t.get("status") or {}).get("phase") == "Succeeded"]
    return max(done, key=lambda t: (t["status"]["objective"], -t["spec"]["number"]))


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]
