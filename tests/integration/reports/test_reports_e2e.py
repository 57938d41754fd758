"""End to end: an Experiment with a median pruner, trials that report over HTTP from pods.

The operator runs as a real process; each Trial is a real Job whose pod runs the
stand-in trainer (standin_trial.py, python3 standard library only) from the base image.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes import client

from thunderbolt.api.common import Resources
from thunderbolt.api.experiment import (
    Algorithm,
    Dataset,
    ExperimentSpec,
    Objective,
    Parameter,
    Pruner,
    TrialTemplate,
)

pytestmark = [pytest.mark.usefixtures("crds"), pytest.mark.slow]
GROUP, VERSION = "thunderbolt.io", "v1alpha1"
SCRIPT = (Path(__file__).parent / "standin_trial.py").read_text()


def test_median_pruner_prunes_clearly_worse_trials_end_to_end(
    kube_api, namespace, operator_process, base_image
):
    op = operator_process(namespace)
    spec = ExperimentSpec(
        objective=Objective(metric="val_accuracy", direction="maximize"),
        algorithm=Algorithm(name="random", seed=1),
        pruner=Pruner(name="median", startupTrials=2, warmupSteps=1),
        maxTrials=6,
        parallelTrials=2,
        maxFailedTrials=0,
        parameters=[Parameter(name="x", type="float", low=0.0, high=1.0)],
        trialTemplate=TrialTemplate(
            image=base_image,
            imagePullPolicy="IfNotPresent",
            command=["python3", "-c", SCRIPT],
            dataset=Dataset(uri="builtin://iris"),
            epochs=6,
            resources=Resources(cpu="100m", memory="128Mi"),
            backoffLimit=0,
        ),
    )
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "experiments",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Experiment",
         "metadata": {"name": "prune"}, "spec": spec.model_dump(mode="json", exclude_none=True)},
    )  # fmt: skip
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        exp = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "prune")
        if (exp.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(2)
    status = exp.get("status") or {}
    trials = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trials")["items"]
    by_number = {t["spec"]["number"]: t for t in trials}
    phases = {n: (t.get("status") or {}).get("phase") for n, t in sorted(by_number.items())}
    assert status.get("phase") == "Succeeded", (status, phases, op.log_text()[-3000:])
    # The clearly worse Trials are pruned and the best good one wins. A good Trial is
    # pruned only when it reports after better ones finished (the median rule then
    # applies to it too): one Trial of a pair sometimes starts ~45 s late on the
    # 2-core CI machine (seen before and after the operator's status-sync queue), and
    # when that was Trial 0 the exact map below failed although the pruner was right.
    assert phases[3] == "Pruned" and phases[5] == "Pruned", phases
    assert phases[4] == "Succeeded", phases
    good = [phases[n] for n in (0, 1, 2)]
    assert good.count("Succeeded") >= 2 and set(good) <= {"Succeeded", "Pruned"}, phases
    assert status["trials"]["pruned"] == list(phases.values()).count("Pruned")
    assert status["trials"]["succeeded"] == list(phases.values()).count("Succeeded")
    assert status["bestTrial"]["number"] == 4  # the best of the good ones
    for number in (3, 5):
        pruned = by_number[number]["status"]
        steps = [p["step"] for p in pruned["intermediate"]]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) < 6, steps
        assert pruned.get("reason") == "Pruned"
    for number in (n for n in (0, 4) if phases[n] == "Succeeded"):
        assert [p["step"] for p in by_number[number]["status"]["intermediate"]] == list(range(1, 7))
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    reasons = {(e.involved_object.name, e.reason) for e in events}
    pruned_name = by_number[3]["metadata"]["name"]
    mine = sorted(r for n, r in reasons if n == pruned_name)
    assert {(pruned_name, "TrainingStarted"), (pruned_name, "PruneRequested"),
            (pruned_name, "TrainingStopped")} <= reasons, mine  # fmt: skip
    # the report endpoint inside the operator counted what it did
    assert (
        op.metric("thunderbolt_prune_decisions_total", pruner="median", decision="prune") or 0
    ) >= 2
    assert (op.metric("thunderbolt_reports_total", kind="epoch", result="accepted") or 0) >= 20


def _containerd_image(image: str) -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["ctr", "-a", "/run/thunderbolt/containerd/containerd.sock", "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    present = set(out.stdout.split())
    return next((n for n in (image, f"docker.io/library/{image}") if n in present), None)


def test_real_trainer_reports_epochs_and_honours_pruning(kube_api, namespace, operator_process):
    """The real trainer image reports through HttpReporter (skipped without the image)."""
    image = _containerd_image("thunderbolt-trainer:0.1.0")
    if image is None:
        pytest.skip("thunderbolt-trainer:0.1.0 is not in the cluster's containerd (make images)")
    operator_process(namespace)
    epochs = 12
    spec = {
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "algorithm": {"name": "grid", "seed": 5},
        "pruner": {"name": "median", "startupTrials": 1, "warmupSteps": 1},
        "maxTrials": 4,
        "parallelTrials": 1,
        # the trainer's health check may fail a hopeless run (Collapsed) before the pruner
        # has seen enough of it; that is the trainer's call, not a reporting problem
        "maxFailedTrials": 4,
        "parameters": [
            # a learning rate that cannot learn iris in 12 epochs next to one that can
            {"name": "learning_rate", "type": "categorical", "choices": [0.05, 0.000001]},
            {"name": "hidden_dim", "type": "categorical", "choices": [16, 32]},
        ],
        "trialTemplate": {
            "image": image,
            "imagePullPolicy": "Never",
            "dataset": {"uri": "builtin://iris"},
            "epochs": epochs,
            "batchSize": 16,
            "resources": {"cpu": "1", "memory": "1Gi"},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
        },
    }
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "experiments",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Experiment", "metadata": {"name": "real"},
         "spec": spec},
    )  # fmt: skip
    deadline = time.monotonic() + 540
    while time.monotonic() < deadline:
        exp = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "real")
        if (exp.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(3)
    trials = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trials")["items"]
    statuses = {t["metadata"]["name"]: t.get("status") or {} for t in trials}
    summary = {
        n: (s.get("phase"), s.get("reason"), (s.get("message") or "")[:300],
            [p["step"] for p in s.get("intermediate") or []])
        for n, s in statuses.items()
    }  # fmt: skip
    assert exp["status"]["phase"] == "Succeeded", (exp["status"].get("message"), summary)
    assert len(trials) == 4
    for name, status in statuses.items():
        steps = [p["step"] for p in status.get("intermediate") or []]
        assert status["phase"] in ("Succeeded", "Pruned", "Failed"), (name, status)
        if status["phase"] == "Failed":
            assert status.get("reason") == "Collapsed", summary
        elif status["phase"] == "Succeeded":
            assert steps == list(range(1, epochs + 1)), (name, steps)  # every epoch arrived
        else:
            assert status.get("reason") == "Pruned", status
            assert steps == list(range(1, len(steps) + 1)) and len(steps) < epochs, steps
    counts = exp["status"]["trials"]
    pruned = sum(s["phase"] == "Pruned" for s in statuses.values())
    assert counts["pruned"] == pruned >= 1, summary  # lr 1e-6 is clearly worse from epoch 1
    events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
    reasons = {(e.involved_object.name, e.reason) for e in events}
    for name in statuses:
        assert {(name, "TrainingStarted"), (name, "TrainingStopped")} <= reasons, name
