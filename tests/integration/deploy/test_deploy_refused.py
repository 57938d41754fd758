"""A ModelDeployment that can never be served is told so once, not retried every tick.

A 70-character name passes the CRD (object names may have 253), but it is a label value
and the Service's name, both limited to 63: before, every tick's list and create failed
with 400/422 and was retried forever without a word on the resource.
"""

from __future__ import annotations

import time

from tests.integration.deploy.helpers import upload
from tests.unit.serving.onnx_models import linear_model

LONG = "m" * 70


def test_a_name_too_long_to_serve_degrades_once_with_a_reason(deployments, host_s3):
    uri, checksum = upload(host_s3, linear_model(k=1))
    deployments.create(LONG, {"model": {"uri": uri, "checksum": checksum}, "replicas": 1})

    status = deployments.wait(LONG, lambda s: s.get("reason") == "InvalidSpec", timeout=60)
    assert status["phase"] == "Degraded"
    assert "metadata.name: 70 characters; at most 63" in status["message"]
    assert deployments.apps.list_namespaced_deployment(deployments.namespace).items == []

    time.sleep(10)  # five ticks: none of them may try again
    events = [
        e
        for e in deployments.core.list_namespaced_event(deployments.namespace).items
        if e.involved_object.name == LONG and e.reason == "InvalidSpec"
    ]
    assert sum(e.count or 1 for e in events) == 1, events
    log = deployments.operator.log_text()
    assert "Bad Request" not in log and "must be no more than 63" not in log, log[-3000:]
