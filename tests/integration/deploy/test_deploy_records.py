"""Records that agree, end to end: an Experiment's Trials run in the real trainer image
with MLflow tracking on the host's ``mlflow server``, and ``thunderbolt check mlflow``
finds 100% agreement between the Trials, their runs and their registered versions;
every Trial records the switch it trained with although it was not searched, the code
revision its image was built from, and its CPU-seconds and peak memory. The operator's
periodic check sets RecordsConsistent: True, then False (with an Event) once a run is
deleted or a tag changed in MLflow, and True again when the run is restored."""

from __future__ import annotations

import json
import re
import time

from kubernetes import client

from tests.fixtures.crds import install_crds
from thunderbolt.cli import main as cli

GROUP, VERSION = "thunderbolt.io", "v1alpha1"


def test_trials_runs_and_versions_agree_completely(
    kube_api, namespace, kubectl, cluster, serving_image, host_mlflow, operator_process, capsys
):
    install_crds(kubectl)  # shared CRDs: this tree's schema (status.switches, imageDigest)
    operator_process(namespace, env={"THUNDERBOLT_MLFLOW_URI": host_mlflow.url,
                                     "THUNDERBOLT_RECORDS_CHECK_SECONDS": "2"})  # fmt: skip
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Experiment", "metadata": {"name": "iris"},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": "random", "seed": 5}, "maxTrials": 2, "parallelTrials": 2,
            "maxFailedTrials": 0,
            "parameters": [{"name": "learning_rate", "type": "float", "low": 0.01, "high": 0.05}],
            "trialTemplate": {
                "image": serving_image, "imagePullPolicy": "Never",
                "dataset": {"uri": "builtin://iris"}, "epochs": 3, "batchSize": 16,
                "resources": {"cpu": "500m", "memory": "1Gi"}, "backoffLimit": 0,
            },
            "tracking": {"mlflow": {"experimentName": f"records-{namespace}"[:200],
                                    "registeredModelName": f"records-{namespace}"[:200]}},
        },
    })  # fmt: skip
    deadline = time.monotonic() + 480
    while True:
        exp = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "iris")
        if (exp.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        assert time.monotonic() < deadline, json.dumps(exp.get("status"), indent=1)
        time.sleep(3)
    trials = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trials")["items"]
    assert exp["status"]["phase"] == "Succeeded" and len(trials) == 2, exp["status"]
    for trial in trials:
        status = trial["status"]
        assert status["switches"] == {"spectral_norm": False}  # recorded although not searched
        assert status["mlflowRunId"] and status["mlflowModelVersion"]
        assert status["imageDigest"].startswith("sha256:")
        # The image was built by hack/images/build.sh, which bakes in the git revision.
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", status.get("codeRevision") or ""), status
        assert status["cpuSeconds"] > 0.5 and status["peakMemoryBytes"] > 50 * 2**20, status
        run = host_mlflow.client().get_run(status["mlflowRunId"])
        assert run.data.tags["thunderbolt.code_revision"] == status["codeRevision"]
        assert run.data.metrics["cpu_seconds"] == status["cpuSeconds"]

    capsys.readouterr()
    code = cli(["check", "mlflow", "iris", "--tracking-uri", host_mlflow.url, "-o", "json",
                "-n", namespace, "--kubeconfig", str(cluster.kubeconfig),
                "--context", cluster.context])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["disagreements"] == 0, report
    assert report["agreement"] == 1.0 and report["trials"] == 2 and report["runs"] == 2
    assert report["checks"] == 2 * 7 + 2 and report["unchecked"] == 0, report

    # The operator's periodic check agrees, then notices what changes in MLflow.
    def records_condition(want: str, reason: str, says: str = "", timeout: float = 180) -> dict:
        # generous: under the full suite's load one MLflow round can take tens of seconds
        deadline = time.monotonic() + timeout
        while True:
            exp = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments",
                                                      "iris")  # fmt: skip
            found = [c for c in exp["status"].get("conditions", [])
                     if c["type"] == "RecordsConsistent"]  # fmt: skip
            if (
                found
                and (found[0]["status"], found[0]["reason"]) == (want, reason)
                and found[0].get("message", "").startswith(says)
            ):
                return found[0]
            assert time.monotonic() < deadline, (want, reason, exp["status"].get("conditions"))
            time.sleep(1)

    # A round while the Trials were still running may have checked less (their runs
    # only, "2 checks agree"): wait for one over the finished Trials.
    agreed = records_condition("True", "Consistent", says="16 checks agree")
    assert "(2 trials, 2 runs, 0 unchecked)" in agreed["message"], agreed
    mlflow = host_mlflow.client()
    first, second = sorted(trials, key=lambda t: t["metadata"]["name"])
    mlflow.delete_run(first["status"]["mlflowRunId"])
    gone = records_condition("False", "RunMissing")
    assert "RunMissing 1" in gone["message"], gone
    events = client.CoreV1Api(kube_api).list_namespaced_event(
        namespace, field_selector="involvedObject.name=iris"
    )
    assert "RecordsInconsistent" in {e.reason for e in events.items}
    mlflow.restore_run(first["status"]["mlflowRunId"])
    records_condition("True", "Consistent")
    mlflow.set_tag(second["status"]["mlflowRunId"], "thunderbolt.objective", "0.001")
    changed = records_condition("False", "ObjectiveDiffers")
    assert "0.001" not in changed["message"]  # counts only, never what MLflow returned
