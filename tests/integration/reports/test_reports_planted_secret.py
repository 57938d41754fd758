"""A report-token Secret planted before its Trial exists is replaced, never trusted.

Someone who may create Secrets in the namespace (but not Trials) plants
``<trial>-report`` with a token they know, labelled like the operator's. Before, the
operator took the 409 on creating its own as "already made" and the endpoint accepted the
planted token.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

from kubernetes import client

from tests.integration.operator.operator_helpers import GROUP, VERSION, experiment, wait_for
from thunderbolt.api.report_schema import ROUTE

PLANTED = "P" * 43


def _post(url: str, token: str) -> int:
    body = json.dumps({"kind": "epoch", "step": 1, "metrics": {"val_accuracy": 0.5}}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_planted_report_secret_is_replaced_and_its_token_refused(
    kube_api, namespace, crds, base_image, operator_process
):
    core = client.CoreV1Api(kube_api)
    name = "planted-000"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=f"{name}-report", labels={"thunderbolt.io/trial": name}
            ),
            string_data={"token": PLANTED},
        ),
    )
    planted_uid = core.read_namespaced_secret(f"{name}-report", namespace).metadata.uid
    op = operator_process(namespace)
    template = experiment("unused", base_image, sleep=30)["spec"]["trialTemplate"]
    trial = client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials",
        {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Trial", "metadata": {"name": name},
            "spec": {
                "experiment": "by-hand", "number": 0, "parameters": {"x": 0.5},
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "template": template,
            },
        },
    )  # fmt: skip

    def replaced():
        secret = core.read_namespaced_secret(f"{name}-report", namespace)
        return secret if secret.metadata.uid != planted_uid else None

    secret = wait_for(replaced, 60, "the planted Secret to be replaced")
    (owner,) = secret.metadata.owner_references
    assert (owner.kind, owner.uid) == ("Trial", trial["metadata"]["uid"])
    token = base64.b64decode(secret.data["token"]).decode()
    assert token != PLANTED

    url = op.report_url + ROUTE.format(namespace=namespace, trial=name)
    time.sleep(1.5)  # past the verifier's refresh interval
    assert _post(url, PLANTED) == 403
    assert _post(url, token) == 200
