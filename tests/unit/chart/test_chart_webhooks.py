"""The chart's registry-webhook setting: off by default; on, the secret is a mounted file
(never env), the Service and NetworkPolicy open the port to MLflow only, and the bundled
MLflow may deliver to a private in-cluster address."""

from __future__ import annotations

import pytest
from helm_render import by_kind, one, render
from pod_security import pod_specs, violations

FULLNAME = "tb-thunderbolt"
ON = {"registryWebhooks": {"enabled": True, "secretName": "mlflow-webhook"}}


def operator_container(objects):
    return one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]["containers"][0]


def test_off_by_default_and_the_records_check_interval_is_passed():
    objects = render()
    container = operator_container(objects)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "THUNDERBOLT_WEBHOOK_SECRET_FILE" not in env
    assert env["THUNDERBOLT_RECORDS_CHECK_SECONDS"] == "300"
    ports = {p["name"] for p in one(objects, "Service", FULLNAME)["spec"]["ports"]}
    assert "webhooks" not in ports


def test_on_mounts_the_secret_and_opens_the_port_to_mlflow_only():
    objects = render(ON)
    container = operator_container(objects)
    env = {e["name"]: e for e in container["env"]}
    assert env["THUNDERBOLT_WEBHOOK_SECRET_FILE"] == {
        "name": "THUNDERBOLT_WEBHOOK_SECRET_FILE", "value": "/etc/thunderbolt/webhook/secret"}  # fmt: skip
    assert env["THUNDERBOLT_WEBHOOK_PORT"]["value"] == "8083"
    assert {"name": "webhooks", "containerPort": 8083, "protocol": "TCP"} in container["ports"]
    volumes = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]["volumes"]
    secret = next(v for v in volumes if v["name"] == "webhook-secret")["secret"]
    assert secret["secretName"] == "mlflow-webhook" and secret["defaultMode"] == 0o400
    service = one(objects, "Service", FULLNAME)
    assert {"name": "webhooks", "port": 8083, "targetPort": "webhooks", "protocol": "TCP"} in (
        service["spec"]["ports"]
    )
    ingress = one(objects, "NetworkPolicy", FULLNAME)["spec"]["ingress"]
    rule = next(r for r in ingress if r["ports"][0]["port"] == "webhooks")
    mlflow = one(objects, "Deployment", f"{FULLNAME}-mlflow")
    assert rule["from"] == [{"podSelector": mlflow["spec"]["selector"]}]
    assert mlflow["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "mlflow"
    mlflow_env = {
        e["name"]: e["value"] for e in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert mlflow_env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    for name, spec in pod_specs(objects):
        assert violations(spec) == [], name


def test_on_without_a_secret_name_fails_to_render():
    import helm_python

    with pytest.raises(helm_python.HelmError) as error:
        render({"registryWebhooks": {"enabled": True}})
    assert "secretName" in str(error.value)
    assert by_kind(render(), "Secret") == []
