"""examples/byo/sdk-cnn-digits end to end: a plain PyTorch script using the SDK, in its
own image, searched with a median pruner (at least one Trial pruned from its live
reports), its best model promoted to a ModelDeployment that answers V2 requests."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
from sklearn.datasets import load_digits

from tests.integration.byo.conftest import manifest
from tests.integration.operator.operator_helpers import Cluster, dump

IMAGE = "thunderbolt-byo-digits:0.1.0"


def infer(ip: str, model: str, images: np.ndarray) -> dict:
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                   "shape": list(images.shape),
                                   "data": images.ravel().tolist()}]}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"http://{ip}:8080/v2/models/{model}/infer", data=body,
        headers={"Content-Type": "application/json", "Connection": "close"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_sdk_cnn_example_prunes_and_its_best_model_is_served(
    kube_api, namespace, example_image, deployments
):
    example_image("sdk-cnn-digits", IMAGE)
    kube = Cluster(kube_api, namespace)
    serving = manifest("sdk-cnn-digits", "modeldeployment.yaml")
    deployments.create(serving["metadata"]["name"], serving["spec"])
    kube.apply(manifest("sdk-cnn-digits", "experiment.yaml"))

    exp = kube.wait_phase("digits-cnn", {"Succeeded", "Failed"}, timeout=900)
    trials = kube.trials("digits-cnn")
    statuses = [t["status"] for t in trials]
    assert exp["status"]["phase"] == "Succeeded", dump([exp["status"], *statuses])
    phases = [s["phase"] for s in statuses]
    assert "Pruned" in phases and "Succeeded" in phases, dump(statuses)
    for status in statuses:
        # every epoch went to the operator as a live report before any result existed
        assert status["intermediate"], dump(status)
        if status["phase"] == "Succeeded":
            assert status["modelUri"].startswith("s3://models/byo/"), dump(status)
            assert status["modelChecksum"].startswith("sha256:")
            assert status["metrics"]["val_accuracy"] == status["objective"]
        else:
            assert status["reason"] == "Pruned", dump(status)
            assert len(status["intermediate"]) < 6
    best = exp["status"]["bestTrial"]
    assert best["objective"] >= 0.9, dump(exp["status"])

    status = deployments.wait(
        "digits",
        lambda s: (
            s.get("phase") == "Available"
            and (s.get("currentRevision") or {}).get("trial") == best["name"]
        ),
        timeout=420,
    )
    assert status["currentRevision"]["modelChecksum"] == best["modelChecksum"]
    digits = load_digits()
    images = digits.images[:8].astype(np.float32)[:, None]
    answer = infer(deployments.cluster_ip("digits"), "digits", images)
    output = answer["outputs"][0]
    assert output["shape"] == [8, 10]
    probabilities = np.asarray(output["data"]).reshape(8, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (probabilities.argmax(axis=1) == digits.target[:8]).mean() >= 0.75
