"""MLflow registry webhooks, end to end: the real ``mlflow server`` on the host is given a
webhook to the host-process operator's endpoint; moving an alias re-resolves the
ModelDeployment at once although its poll interval is an hour, and deliveries that MLflow
did not sign change nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

from tests.integration.deploy.conftest import Deployments
from tests.integration.deploy.helpers import current, history
from tests.integration.deploy.test_deploy_mlflow import register
from tests.unit.serving.onnx_models import linear_model
from thunderbolt.artifacts import sha256_digest
from thunderbolt.deploy import webhooks
from thunderbolt.settings import free_port

SECRET = f"whsec-{uuid.uuid4().hex}"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_an_alias_move_in_mlflow_re_resolves_at_once_and_forgeries_are_refused(
    crds, kube_api, namespace, serving_image, host_s3, host_ip, host_mlflow,
    operator_process, artifacts_secret, tmp_path,
):  # fmt: skip
    secret = tmp_path / "webhook-secret"
    secret.write_text(SECRET + "\n")
    port = free_port()
    operator = operator_process(namespace, env={
        "THUNDERBOLT_MODEL_SOURCE_HOSTS": host_ip, "THUNDERBOLT_SERVING_IMAGE": serving_image,
        "THUNDERBOLT_S3_ENDPOINT": host_s3.endpoint, "THUNDERBOLT_ARTIFACTS_SECRET": "artifacts",
        "THUNDERBOLT_WEBHOOK_SECRET_FILE": str(secret), "THUNDERBOLT_WEBHOOK_PORT": str(port),
    })  # fmt: skip
    deployments = Deployments(kube_api, namespace, operator)
    mlflow = host_mlflow.client()
    name = f"hooked-{uuid.uuid4().hex[:6]}"
    v1_data = linear_model(k=1)
    v1 = register(mlflow, name, v1_data, {"thunderbolt.io/checksum": sha256_digest(v1_data)})
    mlflow.set_registered_model_alias(name, "champion", v1)
    deployments.create("hooked", {
        "model": {"mlflowModel": {"name": name, "alias": "champion", "trackingUri": host_mlflow.url,
                                  "pollSeconds": 3600}},
        "modelName": "iris", "resources": {"cpu": "100m", "memory": "256Mi"},
    })  # fmt: skip
    deployments.wait("hooked", lambda s: s.get("phase") == "Available", timeout=240)

    url = f"http://127.0.0.1:{port}{webhooks.PATH}"
    hook = mlflow.create_webhook(name=f"thunderbolt-{namespace}"[:60], url=url, secret=SECRET,
                                 events=["model_version_alias.created"])  # fmt: skip
    try:
        # MLflow's own test delivery (an example payload, signed by the server) verifies.
        tested = mlflow.test_webhook(hook.webhook_id)
        assert tested.success and tested.response_status == 200, tested

        # Deliveries MLflow did not sign: refused, nothing re-resolved.
        v2_data = linear_model(k=2)
        v2 = register(mlflow, name, v2_data, {"thunderbolt.io/checksum": sha256_digest(v2_data)})
        forged = json.dumps({"entity": "model_version_alias", "action": "created",
                             "data": {"name": name, "alias": "champion", "version": v2}}).encode()  # fmt: skip
        stamp = str(int(time.time()))
        unsigned = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": "x1",
                    "X-MLflow-Timestamp": stamp}  # fmt: skip
        assert post(url, forged, unsigned) == 401
        wrong = {**unsigned, "X-MLflow-Signature": webhooks.sign("guess", "x1", stamp, forged)}
        assert post(url, forged, wrong) == 401
        assert post(url, b"{", {**unsigned, "X-MLflow-Signature": "v1,AAAA"}) == 401
        time.sleep(5)
        assert history(deployments.status("hooked")) == [(1, "Promoted")]

        # The alias really moves: MLflow calls the operator, which looks the alias up now.
        moved = time.monotonic()
        mlflow.set_registered_model_alias(name, "champion", v2)
        deployments.wait("hooked", lambda s: any(h.get("mlflowModelVersion") == v2
                                                 for h in s.get("history", [])), timeout=60)  # fmt: skip
        seen = time.monotonic() - moved
        print(f"alias move -> revision 2 recorded in {seen:.1f}s (pollSeconds 3600)")
        assert seen < 30, seen
        status = deployments.wait("hooked", lambda s: current(s) == 2 and s["phase"] == "Available",
                                  timeout=240)  # fmt: skip
        assert status["currentRevision"]["mlflowModelVersion"] == v2
    finally:
        mlflow.delete_webhook(hook.webhook_id)
