"""The examples under examples/byo/ end to end: a flag-taking script measured through
its output (StdOut collector) and a shell/awk trial writing a metrics file (File)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

GROUP, VERSION = "thunderbolt.io", "v1alpha1"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "byo"


def manifest(folder: str, image: str, **spec: Any) -> dict[str, Any]:
    body = yaml.safe_load((EXAMPLES / folder / "experiment.yaml").read_text())
    body["spec"]["trialTemplate"].update(image=image, imagePullPolicy="Never")
    body["spec"].update(spec)
    return body


class Kube:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def apply(self, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, "experiments", body)

    def experiment(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, "experiments", name
        )

    def trials(self, experiment: str) -> list[dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.ns,
            "trials",
            label_selector=f"thunderbolt.io/experiment={experiment}",
        )["items"]
        return sorted(items, key=lambda t: t["spec"]["number"])

    def events(self, name: str) -> list[Any]:
        return [
            e
            for e in self.core.list_namespaced_event(self.ns).items
            if e.involved_object.name == name
        ]

    def wait_phase(self, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        exp: dict[str, Any] = {}
        while time.monotonic() < deadline:
            exp = self.experiment(name)
            if (exp.get("status") or {}).get("phase") in phases:
                return exp
            time.sleep(1)
        trials = [(t["metadata"]["name"], t.get("status")) for t in self.trials(name)]
        raise AssertionError(
            f"{name} not in {phases} after {timeout}s: {json.dumps(exp.get('status'))[:2000]}\n"
            f"{json.dumps(trials)[:4000]}"
        )


@pytest.fixture
def kube(kube_api, namespace, crds) -> Kube:
    return Kube(kube_api, namespace)


def steps(trial: dict[str, Any]) -> list[int]:
    return [p["step"] for p in trial["status"].get("intermediate") or []]


def test_stdout_flags_example_reaches_its_objective_with_reports_and_pruning(
    kube, namespace, stdout_image, operator_process
):
    operator_process(namespace)
    # one Trial at a time: each is judged by the pruner against all that finished before
    kube.apply(manifest("stdout-flags", stdout_image, parallelTrials=1))
    status = kube.wait_phase("byo-stdout-flags", {"Succeeded"}, timeout=420)["status"]
    assert status["trials"]["total"] == 6
    assert status["bestTrial"]["objective"] > 0.5
    trials = kube.trials("byo-stdout-flags")
    succeeded = [t for t in trials if t["status"]["phase"] == "Succeeded"]
    pruned = [t for t in trials if t["status"]["phase"] == "Pruned"]
    assert succeeded, [t["status"] for t in trials]
    for t in succeeded:
        st = t["status"]
        # every printed epoch is a stored report; the objective is the last one
        assert steps(t) == list(range(1, 9)), st
        assert st["objective"] == st["intermediate"][-1]["value"]
        assert set(st["metrics"]) == {"val_accuracy", "loss"}
        assert st["collector"]["state"] == "Done" and st["collector"]["reports"] == 8
        # the flags came through the substitution
        lr = t["spec"]["parameters"]["lr"]
        assert st["collector"]["lines"] == 9, st  # "training with lr=..." + 8 epochs
        assert lr > 0
    # no sidecar, no injected container: the pods run the user's image alone
    for pod in kube.core.list_namespaced_pod(kube.ns).items:
        assert [c.name for c in pod.spec.containers] == ["trainer"]
        assert not pod.spec.init_containers
        assert pod.metadata.annotations["thunderbolt.io/metrics-collector"] == "StdOut"
    # the median pruner stopped at least one weak Trial: its Job was deleted
    assert pruned, [(t["spec"]["parameters"], t["status"].get("intermediate")) for t in trials]
    for t in pruned:
        assert t["status"]["reason"] == "Pruned"
        assert 2 <= len(steps(t)) < 8
        assert "PruneRequested" in {e.reason for e in kube.events(t["metadata"]["name"])}


def test_stdout_without_metrics_fails_with_no_metrics_and_bad_lines_are_counted(
    kube, namespace, stdout_image, operator_process
):
    operator_process(namespace)
    quick = ["--lr=${trialParameters.lr}", "--epochs", "3", "--sleep", "0.2"]
    silent = manifest(
        "stdout-flags", stdout_image, maxTrials=1, parallelTrials=1, maxFailedTrials=0
    )
    silent["metadata"]["name"] = "silent"
    silent["spec"]["trialTemplate"]["args"] = [*quick, "--silent"]
    noisy = manifest("stdout-flags", stdout_image, maxTrials=1, parallelTrials=1)
    noisy["metadata"]["name"] = "noisy"
    noisy["spec"]["trialTemplate"]["args"] = [*quick, "--bad-lines", "3"]
    began = time.monotonic()
    kube.apply(silent)
    kube.apply(noisy)

    kube.wait_phase("silent", {"Failed"}, timeout=180)
    (trial,) = kube.trials("silent")
    assert trial["status"]["phase"] == "Failed"
    assert trial["status"]["reason"] == "NoMetrics", trial["status"]
    assert "val_accuracy" in trial["status"]["message"]
    assert time.monotonic() - began < 180  # an answer, not a hang

    kube.wait_phase("noisy", {"Succeeded"}, timeout=180)
    (trial,) = kube.trials("noisy")
    assert steps(trial) == [1, 2, 3]
    assert trial["status"]["collector"]["skipped"] == {"nonFinite": 3, "malformed": 3}
    skipped = [e for e in kube.events(trial["metadata"]["name"]) if e.reason == "MetricsSkipped"]
    assert skipped and "3 nonFinite" in skipped[0].message and skipped[0].type == "Warning"


def test_stdout_collection_survives_an_operator_restart_without_double_counting(
    kube, namespace, stdout_image, operator_process
):
    op = operator_process(namespace)
    body = manifest("stdout-flags", stdout_image, maxTrials=1, parallelTrials=1)
    body["metadata"]["name"] = "restart"
    body["spec"]["trialTemplate"]["args"] = ["--lr=0.05", "--epochs", "12", "--sleep", "1"]
    kube.apply(body)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        trials = kube.trials("restart")
        if trials and len(steps(trials[0])) >= 3:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no reports before the restart")
    op.kill()
    time.sleep(3)  # the container keeps printing meanwhile
    op.start()
    kube.wait_phase("restart", {"Succeeded"}, timeout=180)
    (trial,) = kube.trials("restart")
    assert steps(trial) == list(range(1, 13)), trial["status"]
    assert trial["status"]["collector"]["reports"] == 12


def test_shell_file_example_any_container_with_a_metrics_file(
    kube, namespace, shell_image, operator_process
):
    operator_process(namespace)
    kube.apply(manifest("shell-file", shell_image))
    status = kube.wait_phase("byo-shell-file", {"Succeeded"}, timeout=300)["status"]
    assert status["trials"]["succeeded"] == 3
    for trial in kube.trials("byo-shell-file"):
        st = trial["status"]
        assert steps(trial) == [1, 2, 3, 4, 5, 6], st
        assert st["objective"] == st["intermediate"][-1]["value"] == st["metrics"]["accuracy"]
        assert st["collector"]["kind"] == "File" and st["collector"]["reports"] == 6
        assert not st["collector"].get("skipped")
    assert status["bestTrial"]["objective"] > 0.3
