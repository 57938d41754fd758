"""Bring-your-own-container Jobs: parameters as env vars and substitutions, pod-level
fields, collectors, and the operator's guarantees on every container."""

from __future__ import annotations

import pytest
from operator_specs import raw, spec
from pydantic import ValidationError

from thunderbolt.api.experiment import parse_spec
from thunderbolt.api.meta import restricted_container_security
from thunderbolt.api.trial_parameters import env_name, format_value, substitute
from thunderbolt.operator.builders import (
    COLLECTOR_ANNOTATION,
    build_job,
    build_trial,
    trainer_config,
)
from thunderbolt.operator.validation import SpecError, validate_experiment
from thunderbolt.settings import OperatorSettings

EXPERIMENT = {
    "apiVersion": "thunderbolt.io/v1alpha1",
    "kind": "Experiment",
    "metadata": {"name": "byo", "namespace": "ml", "uid": "exp-uid"},
}
PARAMS = {"learning_rate": 0.01, "hidden_dim": 64, "activation": "gelu", "spectral_norm": True}


def job(**template):
    base = raw()["trialTemplate"]
    base.update(template)
    obj = build_trial(EXPERIMENT, spec(trialTemplate=base), 3, PARAMS)
    obj["metadata"]["uid"] = "trial-uid"
    settings = OperatorSettings()
    return build_job(obj, trainer_config(obj, settings, with_report=False), settings)


def pod(j):
    return j["spec"]["template"]["spec"]


def trainer(j):
    return pod(j)["containers"][0]


def test_parameter_names_and_values_as_text():
    assert env_name("learning_rate") == "THUNDERBOLT_PARAM_LEARNING_RATE"
    assert env_name("lr2_x") == "THUNDERBOLT_PARAM_LR2_X"
    assert [format_value(v) for v in (True, False, 0.001, 64, "gelu")] == [
        "true", "false", "0.001", "64", "gelu",
    ]  # fmt: skip
    assert substitute("--lr=${trialParameters.lr} ${trialParameters.lr}", {"lr": 0.5}) == (
        "--lr=0.5 0.5"
    )


def test_parameters_reach_the_container_as_env_vars_and_substitutions():
    j = job(
        command=["python3", "/app/train.py"],
        args=["--lr=${trialParameters.learning_rate}", "--act", "${trialParameters.activation}"],
        env=[{"name": "THUNDERBOLT_PARAM_HIDDEN_DIM", "value": "override"}],
    )
    c = trainer(j)
    assert c["args"] == ["--lr=0.01", "--act", "gelu"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["THUNDERBOLT_PARAM_LEARNING_RATE"] == "0.01"
    assert env["THUNDERBOLT_PARAM_SPECTRAL_NORM"] == "true"
    assert env["THUNDERBOLT_PARAM_HIDDEN_DIM"] == "override"  # the user's env wins
    assert [e["name"] for e in c["env"]].count("THUNDERBOLT_PARAM_HIDDEN_DIM") == 1


def test_an_unknown_parameter_in_a_substitution_is_an_invalid_spec():
    bad = raw(**{"trialTemplate.args": ["--lr=${trialParameters.lr}"]})
    with pytest.raises(SpecError, match=r"unknown parameters \['lr'\]"):
        validate_experiment("byo", bad)
    typo = raw(**{"trialTemplate.command": ["run", "${trialParameters.learning-rate}"]})
    with pytest.raises(SpecError, match="learning-rate"):
        validate_experiment("byo", typo)


def test_env_value_from_secrets_config_maps_and_fields():
    j = job(
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "PLAIN", "value": "1"},
        ]
    )
    env = {e["name"]: e for e in trainer(j)["env"]}
    assert env["TOKEN"] == {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
    }
    assert env["MODE"]["valueFrom"]["configMapKeyRef"]["key"] == "mode"
    assert env["NODE"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["PLAIN"] == {"name": "PLAIN", "value": "1"}


@pytest.mark.parametrize(
    "env",
    [
        {"name": "X", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "a"}}},
        {"name": "X", "valueFrom": {}},
        {
            "name": "X",
            "valueFrom": {
                "fieldRef": {"fieldPath": "a"},
                "secretKeyRef": {"name": "s", "key": "k"},
            },
        },
    ],
)
def test_env_takes_one_value_or_one_source(env):
    with pytest.raises(ValidationError):
        parse_spec(raw(**{"trialTemplate.env": [env]}))


def test_pod_level_fields_and_shared_memory():
    j = job(
        workingDir="/app",
        shmSize="1Gi",
        volumes=[
            {"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "2Gi"}},
        ],
        volumeMounts=[
            {"name": "data", "mountPath": "/data", "readOnly": True},
            {"name": "cache", "mountPath": "/cache"},
        ],
        tolerations=[{"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        resources={"gpus": 1, "cpu": "1", "memory": "1Gi"},
    )
    p, c = pod(j), trainer(j)
    assert c["workingDir"] == "/app"
    volumes = {v["name"]: v for v in p["volumes"]}
    assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/dev/shm"]["name"] == "dshm"
    assert mounts["/data"] == {"name": "data", "mountPath": "/data", "readOnly": True}
    assert {"config", "workspace"} <= volumes.keys()  # the operator's own are kept
    keys = [t.get("key") for t in p["tolerations"]]
    assert keys == ["nvidia.com/gpu", "team"]  # the GPU toleration is kept
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nodeAffinity" in p["affinity"]


def test_init_containers_and_sidecars_run_restricted_with_the_parameters():
    j = job(
        initContainers=[
            {
                "name": "fetch",
                "image": "busybox:1",
                "command": ["sh", "-c", "echo ${trialParameters.hidden_dim} > /workspace/h"],
            }
        ],
        sidecars=[{"name": "watch", "image": "busybox:1", "args": ["sleep", "1"]}],
    )
    p = pod(j)
    (init,) = p["initContainers"]
    assert init["command"][-1] == "echo 64 > /workspace/h"
    assert [c["name"] for c in p["containers"]] == ["trainer", "watch"]
    for c in [init, *p["containers"]]:
        read_only = c["name"] == "trainer"  # the trainer writes only to its bounded volumes
        assert c["securityContext"] == restricted_container_security(read_only_root=read_only)
        assert any(e["name"] == "THUNDERBOLT_PARAM_HIDDEN_DIM" for e in c["env"])
        assert c["resources"]["limits"]["memory"]
    assert p["securityContext"]["runAsNonRoot"] is True
    assert j["spec"]["template"]["metadata"]["labels"]["thunderbolt.io/trial"] == "byo-003"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "not allowed under restricted"),
        ({"volumes": [{"name": "config", "emptyDir": {}}]}, "reserved for the operator"),
        ({"volumes": [{"name": "a", "emptyDir": {}, "secret": {}}]}, "exactly one source"),
        ({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]}, "duplicate"),
        ({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, "names no volume"),
        (
            {
                "volumes": [{"name": "a", "emptyDir": {}}],
                "volumeMounts": [{"name": "a", "mountPath": "/etc/thunderbolt/trial"}],
            },
            "reserved for the operator",
        ),
        ({"sidecars": [{"name": "trainer", "image": "x"}]}, "unique"),
        ({"affinity": {"nodeSelector": {}}}, "unknown keys"),
        ({"shmSize": "lots"}, "pattern"),
    ],
)
def test_pod_fields_that_would_break_a_guarantee_are_rejected(template, message):
    base = raw()["trialTemplate"]
    base.update(template)
    with pytest.raises(SpecError, match=message):
        validate_experiment("byo", raw(trialTemplate=base))


def test_collectors_mark_the_pod_and_file_points_the_termination_message_at_the_file():
    assert "annotations" not in job()["spec"]["template"]["metadata"]
    stdout = job(metricsCollector={"kind": "StdOut"})
    assert stdout["spec"]["template"]["metadata"]["annotations"] == {COLLECTOR_ANNOTATION: "StdOut"}
    assert "terminationMessagePath" not in trainer(stdout)
    f = job(metricsCollector={"kind": "File", "path": "/workspace/metrics.txt"})
    assert trainer(f)["terminationMessagePath"] == "/workspace/metrics.txt"
    assert f["spec"]["template"]["metadata"]["annotations"] == {COLLECTOR_ANNOTATION: "File"}


def test_a_template_without_a_dataset_is_valid_for_own_containers():
    base = raw()["trialTemplate"]
    del base["dataset"]
    parsed = validate_experiment("byo", raw(trialTemplate=base))
    assert parsed.trialTemplate.dataset is None
    obj = build_trial(EXPERIMENT, parsed, 1, PARAMS)
    obj["metadata"]["uid"] = "u"
    assert trainer_config(obj, OperatorSettings(), with_report=False).dataset is None


def test_a_trial_service_account_must_be_allowed_by_the_operator():
    from thunderbolt.operator.validation import check_service_account

    template = parse_spec(
        {**raw(), "trialTemplate": {**raw()["trialTemplate"], "serviceAccountName": "admin"}}
    ).trialTemplate
    with pytest.raises(SpecError, match="serviceAccountName: 'admin' is not allowed"):
        check_service_account(template, ())
    with pytest.raises(SpecError):
        check_service_account(template, ("trainer",))
    check_service_account(template, ("trainer", "admin"))
    check_service_account(template, ("*",))
    plain = parse_spec(raw()).trialTemplate
    check_service_account(plain, ())  # none named: the namespace default, always fine
