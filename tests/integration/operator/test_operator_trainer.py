"""The real trainer image: two Trials on builtin://iris (skipped without the image)."""

from __future__ import annotations

import pytest
from operator_helpers import GROUP, VERSION, Cluster, containerd_image, dump

TRAINER_IMAGE = "thunderbolt-trainer:0.1.0"


def test_real_trainer_image_runs_two_trials_on_iris(kube_api, namespace, crds, operator_process):
    image = containerd_image(TRAINER_IMAGE)
    if image is None:
        pytest.skip(f"{TRAINER_IMAGE} is not in the cluster's containerd (run `make images`)")
    kube = Cluster(kube_api, namespace)
    operator_process(namespace)
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Experiment",
            "metadata": {"name": "iris"},
            "spec": {
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "algorithm": {"name": "random", "seed": 3},
                "maxTrials": 2,
                "parallelTrials": 2,
                "maxFailedTrials": 0,
                "parameters": [
                    {
                        "name": "learning_rate",
                        "type": "float",
                        "low": 0.005,
                        "high": 0.05,
                        "log": True,
                    },
                    {"name": "hidden_dim", "type": "int", "low": 16, "high": 32, "step": 16},
                    {"name": "num_layers", "type": "int", "low": 1, "high": 2},
                    {"name": "spectral_norm", "type": "categorical", "choices": [False, True]},
                ],
                "trialTemplate": {
                    "image": image,
                    "imagePullPolicy": "Never",
                    "dataset": {"uri": "builtin://iris"},
                    "epochs": 15,
                    "batchSize": 16,
                    "resources": {"cpu": "1", "memory": "1Gi"},
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": 600,
                },
            },
        }
    )
    exp = kube.wait_phase("iris", {"Succeeded", "Failed"}, timeout=480)
    trials = kube.trials("iris")
    assert exp["status"]["phase"] == "Succeeded", dump(
        [exp["status"], *[t["status"] for t in trials]]
    )
    assert len(trials) == 2
    for trial in trials:
        status = trial["status"]
        assert status["phase"] == "Succeeded", dump(status)
        assert 0.0 <= status["objective"] <= 1.0
        assert status["metrics"]["val_accuracy"] == status["objective"]
        assert status["image"].endswith(TRAINER_IMAGE)
    assert exp["status"]["bestTrial"]["objective"] == max(t["status"]["objective"] for t in trials)
