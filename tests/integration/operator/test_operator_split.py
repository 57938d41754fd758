"""One evaluation protocol per Experiment, on the cluster with the real trainer image.

Every Trial of an Experiment must report the same split identity (split seed and the
hash of its validation rows) while its model seed differs; with
``trialTemplate.validation.folds`` the objective's spread across folds reaches the
Trial status and the Experiment's best trial.
"""

from __future__ import annotations

from operator_helpers import GROUP, VERSION, Cluster, dump


def test_every_trial_of_an_experiment_carries_the_same_split_identity(
    kube_api, namespace, crds, operator_process, trainer_image
):
    kube = Cluster(kube_api, namespace)
    operator_process(namespace)
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Experiment",
            "metadata": {"name": "split"},
            "spec": {
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "algorithm": {"name": "random", "seed": 5},
                "maxTrials": 3,
                "parallelTrials": 3,
                "maxFailedTrials": 0,
                "parameters": [
                    {"name": "learning_rate", "type": "float", "low": 0.005, "high": 0.05},
                    {"name": "hidden_dim", "type": "int", "low": 16, "high": 32, "step": 16},
                ],
                "trialTemplate": {
                    "image": trainer_image,
                    "imagePullPolicy": "Never",
                    "dataset": {"uri": "builtin://iris"},
                    "validation": {"folds": 3},
                    "epochs": 4,
                    "batchSize": 16,
                    "resources": {"cpu": "1", "memory": "1Gi"},
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": 600,
                },
            },
        }
    )
    exp = kube.wait_phase("split", {"Succeeded", "Failed"}, timeout=600)
    trials = kube.trials("split")
    assert exp["status"]["phase"] == "Succeeded", dump(
        [exp["status"], *[t["status"] for t in trials]]
    )
    assert len(trials) == 3
    splits = [t["status"].get("split") for t in trials]
    assert all(splits) and all(s == splits[0] for s in splits), dump(splits)
    assert splits[0]["seed"] == 5 and splits[0]["folds"] == 3
    assert len(splits[0]["validationHash"]) == 16
    assert {t["spec"]["splitSeed"] for t in trials} == {5}
    assert len({t["spec"]["seed"] for t in trials}) == 3  # model seeds still differ
    for trial in trials:
        assert trial["status"]["objectiveStd"] >= 0.0, dump(trial["status"])
    best = exp["status"]["bestTrial"]
    assert best["objectiveStd"] == next(
        t["status"]["objectiveStd"] for t in trials if t["metadata"]["name"] == best["name"]
    )
