"""examples/byo/sequence-builtin end to end: the built-in trainer's GRU on the generated
trajectories, exported and served; a V2 request with [batch, 24, 2] sequences is
answered with the four motion probabilities."""

from __future__ import annotations

import numpy as np

from tests.integration.byo.conftest import manifest
from tests.integration.byo.test_byo_sdk_cnn import infer
from tests.integration.operator.operator_helpers import Cluster, dump
from thunderbolt.trainer import trajectories


def test_builtin_sequence_model_trains_and_serves_sequences(kube_api, namespace, deployments):
    kube = Cluster(kube_api, namespace)
    serving = manifest("sequence-builtin", "modeldeployment.yaml")
    deployments.create(serving["metadata"]["name"], serving["spec"])
    kube.apply(manifest("sequence-builtin", "experiment.yaml"))

    exp = kube.wait_phase("trajectories", {"Succeeded", "Failed"}, timeout=900)
    statuses = [t["status"] for t in kube.trials("trajectories")]
    assert exp["status"]["phase"] == "Succeeded", dump([exp["status"], *statuses])
    for status in statuses:
        assert status["phase"] == "Succeeded", dump(status)
        assert status["objective"] > 0.4  # four balanced classes: chance is 0.25
        assert status["modelUri"].startswith("s3://models/byo/")
    best = exp["status"]["bestTrial"]
    status = deployments.wait(
        "trajectories",
        lambda s: (
            s.get("phase") == "Available"
            and (s.get("currentRevision") or {}).get("trial") == best["name"]
        ),
        timeout=420,
    )
    assert status["currentRevision"]["modelChecksum"] == best["modelChecksum"]
    tracks = trajectories.generate(samples=6, seed=99)
    answer = infer(deployments.cluster_ip("trajectories"), "trajectories", tracks.positions)
    output = answer["outputs"][0]
    assert output["shape"] == [6, len(trajectories.KINDS)]
    probabilities = np.asarray(output["data"]).reshape(6, -1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
