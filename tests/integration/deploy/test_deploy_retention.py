"""spec.retention on the real cluster: real Trials write to a real S3 server (moto on the
host), a real ModelDeployment serves one of them, the cleanup Job runs the trainer image.

Retention (keepBest: 1) deletes the other Trials' models and checkpoints but never the
served one; deleting the Experiment with onDelete: Delete deletes its artifacts except
the served model; a deletion that cannot reach the store fails, says so in an Event and
still lets the Experiment go.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.integration.operator.operator_helpers import Cluster, wait_for

FINALIZER = "operator.thunderbolt.io/finalizer"


@pytest.fixture(autouse=True)
def no_finalizer_left(kube_api, namespace) -> Iterator[None]:
    """A failed test must not leave an Experiment whose finalizer, with the operator
    gone, would hold the namespace's deletion forever."""
    yield
    custom = client.CustomObjectsApi(kube_api)
    items = custom.list_namespaced_custom_object(
        "thunderbolt.io", "v1alpha1", namespace, "experiments"
    )["items"]
    for item in items:
        if item["metadata"].get("finalizers"):
            custom.patch_namespaced_custom_object(
                "thunderbolt.io", "v1alpha1", namespace, "experiments",
                item["metadata"]["name"], {"metadata": {"finalizers": None}},
            )  # fmt: skip


def experiment(name: str, image: str, namespace: str, trials: int, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": "random", "seed": 11},
            "maxTrials": trials,
            "parallelTrials": trials,
            "maxFailedTrials": trials,
            "parameters": [
                {
                    "name": "learning_rate",
                    "type": "float",
                    "low": 0.0005,
                    "high": 0.05,
                    "log": True,
                },
                {"name": "hidden_dim", "type": "int", "low": 16, "high": 32, "step": 16},
            ],
            "trialTemplate": {
                "image": image,
                "imagePullPolicy": "Never",
                "dataset": {"uri": "builtin://iris"},
                "validation": {"checks": "off"},
                "epochs": 4,
                "batchSize": 16,
                "resources": {"cpu": "250m", "memory": "768Mi"},
                "backoffLimit": 0,
                "activeDeadlineSeconds": 600,
            },
            "artifacts": {"uri": f"s3://models/{namespace}", "credentialsSecret": "artifacts"},
            **extra,
        },
    }


def keys(s3: Any, prefix: str) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="models", Prefix=prefix):
        found |= {o["Key"] for o in page.get("Contents", [])}
    return found


def gone(kube: Cluster, name: str) -> bool:
    try:
        kube.experiment(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def test_retention_deletes_old_models_and_checkpoints_but_never_a_served_one(
    kube_api, namespace, serving_image, host_s3, operator, deployments
):
    kube = Cluster(kube_api, namespace)
    s3 = host_s3.client()
    kube.apply(experiment("iris", serving_image, namespace, 4))
    exp = kube.wait_phase("iris", {"Succeeded", "Failed"}, timeout=480)
    trials = kube.trials("iris")
    assert exp["status"]["phase"] == "Succeeded", [t.get("status") for t in trials]
    names = [t["metadata"]["name"] for t in trials]
    for name in names:
        # a leftover checkpoint (a success clears its own; a retried pod's may stay)
        s3.put_object(
            Bucket="models", Key=f"{namespace}/checkpoints/{name}/checkpoint.pt", Body=b"x"
        )
        assert f"{namespace}/{namespace}/iris/{name}/model.onnx" in keys(s3, namespace)

    ranked = sorted(trials, key=lambda t: (-t["status"]["objective"], t["spec"]["number"]))
    kept = {ranked[0]["metadata"]["name"], exp["status"]["bestTrial"]["name"]}
    served = next(n for n in reversed(names) if n not in kept)
    deleted = set(names) - kept - {served}
    assert deleted, "the test needs at least one Trial to delete"

    deployments.create("served", {"model": {"trialRef": served}, "replicas": 1})
    status = deployments.wait("served", lambda s: s.get("phase") == "Available", timeout=240)
    assert status["currentRevision"]["trial"] == served

    kube.patch_spec("iris", {"retention": {"keepBest": 1}})

    def marked() -> dict[str, Any] | None:
        by_name = {t["metadata"]["name"]: t.get("status") or {} for t in kube.trials("iris")}
        done = all(by_name[n].get("artifactsDeleted") for n in deleted)
        return by_name if done else None

    statuses = wait_for(marked, 240, f"artifactsDeleted on {sorted(deleted)}", interval=2)
    for name in kept | {served}:
        assert not statuses[name].get("artifactsDeleted"), name
    for name in deleted:
        record = statuses[name]["artifactsDeleted"]
        assert record["reason"] == "Retention" and record["job"].startswith("iris-retain-")
    left = keys(s3, f"{namespace}/")
    for name in names:
        model_dir, checkpoint = (
            f"{namespace}/{namespace}/iris/{name}/",
            f"{namespace}/checkpoints/{name}/",
        )
        has_model = any(k.startswith(model_dir) for k in left)
        has_checkpoint = any(k.startswith(checkpoint) for k in left)
        assert has_model == has_checkpoint == (name not in deleted), (name, sorted(left))
    reasons = {e.reason for e in kube.events("iris")}
    assert {"ArtifactCleanupStarted", "ArtifactsDeleted"} <= reasons
    wait_for(
        lambda: not [j for j in kube.jobs() if j.metadata.name.startswith("iris-retain-")],
        60,
        "the finished retention Job to be deleted",
    )
    # the served model still serves
    assert deployments.status("served")["phase"] == "Available"

    # Deleting the Experiment with onDelete: Delete: everything but the served model goes.
    kube.patch_spec("iris", {"retention": {"keepBest": 1, "onDelete": "Delete"}})
    wait_for(
        lambda: FINALIZER in (kube.experiment("iris")["metadata"].get("finalizers") or []),
        60,
        "the operator's finalizer",
    )
    kube.delete_experiment("iris")
    wait_for(lambda: gone(kube, "iris"), 300, "the Experiment to be deleted", interval=2)
    left = keys(s3, f"{namespace}/")
    assert left, "the served model must stay"
    for key in left:
        assert key.startswith(
            (f"{namespace}/{namespace}/iris/{served}/", f"{namespace}/checkpoints/{served}/")
        ), sorted(left)
    assert f"{namespace}/{namespace}/iris/{served}/model.onnx" in left
    assert "ArtifactsDeleted" in {e.reason for e in kube.events("iris")}


def test_a_deletion_that_cannot_reach_the_store_does_not_hold_the_experiment(
    kube_api, namespace, serving_image, operator, artifacts_secret
):
    kube = Cluster(kube_api, namespace)
    spec = experiment("broken", serving_image, namespace, 1, retention={"onDelete": "Delete"})
    spec["spec"]["artifacts"]["s3EndpointUrl"] = "http://127.0.0.1:1"  # nothing listens
    kube.apply(spec)
    wait_for(
        lambda: FINALIZER in (kube.experiment("broken")["metadata"].get("finalizers") or []),
        60,
        "the operator's finalizer",
    )
    started = time.monotonic()
    kube.delete_experiment("broken")
    wait_for(lambda: gone(kube, "broken"), 300, "the Experiment to be deleted", interval=2)
    reasons = {e.reason for e in kube.events("broken")}
    assert "ArtifactDeletionFailed" in reasons, reasons
    assert time.monotonic() - started < 300
