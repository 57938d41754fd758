"""A ModelDeployment whose children the API server refuses is told so once, not retried.

A 70-character name passes the CRD (object names may have 253) and the operator's model,
but no Service may be named that and no label value may hold it: every create is a 422.
"""

from __future__ import annotations

import time

from tests.integration.deploy.helpers import upload
from tests.unit.serving.onnx_models import linear_model

LONG = "m" * 70


def test_refused_children_degrade_once_until_the_spec_changes(deployments, host_s3):
    uri, checksum = upload(host_s3, linear_model(k=1))
    deployments.create(LONG, {"model": {"uri": uri, "checksum": checksum}, "replicas": 1})

    status = deployments.wait(LONG, lambda s: s.get("reason") == "InvalidServingSpec", timeout=60)
    assert status["phase"] == "Degraded"
    assert "invalid" in status["message"].lower() and "63" in status["message"]
    generation = deployments.get(LONG)["metadata"]["generation"]
    assert status["observedGeneration"] == generation
    assert deployments.revision_deployments(LONG) == set()

    time.sleep(10)  # five ticks: none of them may try again
    events = [
        e
        for e in deployments.core.list_namespaced_event(deployments.namespace).items
        if e.involved_object.name == LONG and e.reason == "InvalidServingSpec"
    ]
    assert sum(e.count or 1 for e in events) == 1, events
    assert deployments.status(LONG)["observedGeneration"] == generation
