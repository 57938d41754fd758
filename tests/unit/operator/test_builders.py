import json

from operator_specs import spec

from thunderbolt.api.trainer_config import (
    CONFIG_MOUNT_DIR,
    CONFIG_PATH,
    REPORT_TOKEN_DIR,
    TrainerConfig,
)
from thunderbolt.api.trial import TrialSpec
from thunderbolt.operator.builders import (
    ARTIFACTS_CREDENTIALS_PATH,
    build_configmap,
    build_job,
    build_trial,
    label_value,
    trainer_config,
    trial_name,
)
from thunderbolt.settings import OperatorSettings

EXPERIMENT = {
    "apiVersion": "thunderbolt.io/v1alpha1",
    "kind": "Experiment",
    "metadata": {"name": "iris-sn", "namespace": "ml", "uid": "exp-uid"},
}
PARAMS = {"learning_rate": 0.01, "hidden_dim": 64, "activation": "gelu", "spectral_norm": True}


def trial(**changes):
    obj = build_trial(EXPERIMENT, spec(**changes), 7, PARAMS)
    obj["metadata"]["uid"] = "trial-uid"
    return obj


def job_for(obj, settings=None, report_secret=None):
    settings = settings or OperatorSettings()
    config = trainer_config(obj, settings, with_report=report_secret is not None)
    return build_job(obj, config, settings, report_secret)


def pod_spec(job):
    return job["spec"]["template"]["spec"]


def test_trial_is_named_by_number_and_owned_by_its_experiment():
    obj = trial()
    assert obj["metadata"]["name"] == "iris-sn-007" == trial_name("iris-sn", 7)
    assert trial_name("x", 1234) == "x-1234"
    (owner,) = obj["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "name": "iris-sn",
        "uid": "exp-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_trial_labels_carry_experiment_number_and_label_safe_parameters():
    labels = trial()["metadata"]["labels"]
    assert labels["thunderbolt.io/experiment"] == "iris-sn"
    assert labels["thunderbolt.io/trial-number"] == "7"
    assert labels["thunderbolt.io/param.spectral_norm"] == "true"
    assert labels["thunderbolt.io/param.activation"] == "gelu"
    assert labels["thunderbolt.io/param.hidden_dim"] == "64"
    assert labels["thunderbolt.io/param.learning_rate"] == "0.01"


def test_values_that_cannot_be_labels_are_left_out():
    assert label_value(-0.5) is None
    assert label_value("a b") is None
    assert label_value("x" * 64) is None
    assert label_value(1e-05) == "1e-05"
    assert label_value(False) == "false"


def test_trial_spec_is_valid_and_records_seed_and_template():
    obj = trial()
    parsed = TrialSpec.model_validate(obj["spec"])
    assert parsed.number == 7
    assert parsed.seed == 7 + 7  # algorithm.seed + number
    assert parsed.parameters == PARAMS
    assert parsed.template.image == "thunderbolt-trainer:0.1.0"


def test_job_has_the_trial_name_and_is_owned_by_the_trial():
    obj = trial()
    job = job_for(obj)
    assert job["metadata"]["name"] == "iris-sn-007"
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Trial", "iris-sn-007", "trial-uid")
    assert owner["controller"] and owner["blockOwnerDeletion"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["thunderbolt.io/trial"] == "iris-sn-007"
    assert labels["thunderbolt.io/experiment"] == "iris-sn"


def test_job_pod_meets_pod_security_restricted():
    pod = pod_spec(job_for(trial()))
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 1000
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_cpu_job_requests_cpu_and_memory_and_limits_memory_without_gpu():
    job = job_for(trial())
    pod = pod_spec(job)
    resources = pod["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "256Mi"}
    assert resources["limits"] == {"memory": "256Mi"}
    assert "tolerations" not in pod
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["activeDeadlineSeconds"] == 3600


def test_gpu_job_limits_nvidia_gpus_and_tolerates_the_gpu_taint():
    obj = trial(**{"trialTemplate.resources": {"gpus": 2, "cpu": "4", "memory": "8Gi"}})
    pod = pod_spec(job_for(obj))
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_job_mounts_config_and_workspace_and_passes_parameters_in_env():
    obj = trial(**{"trialTemplate.command": ["python3", "-c", "pass"]})
    pod = pod_spec(job_for(obj))
    container = pod["containers"][0]
    assert container["command"] == ["python3", "-c", "pass"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == CONFIG_MOUNT_DIR and mounts["config"]["readOnly"]
    assert mounts["workspace"]["mountPath"] == "/workspace"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "iris-sn-007-config"
    assert volumes["workspace"] == {"name": "workspace", "emptyDir": {"sizeLimit": "8Gi"}}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["THUNDERBOLT_CONFIG"] == CONFIG_PATH
    assert json.loads(env["THUNDERBOLT_PARAMETERS"]) == PARAMS


def test_the_trainer_writes_only_to_bounded_volumes():
    """Read-only root; /workspace and /tmp are emptyDirs with a sizeLimit; mounted files
    are not writable or readable by others."""
    settings = OperatorSettings(artifacts_credentials_secret="s3-creds")
    pod = pod_spec(job_for(trial(), settings, report_secret="iris-sn-007-report"))
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/tmp"] == "tmp" and mounts["/workspace"] == "workspace"
    for volume in pod["volumes"]:
        if "emptyDir" in volume:
            assert volume["emptyDir"].get("sizeLimit"), volume
        for kind in ("secret", "configMap"):
            if kind in volume:
                mode = volume[kind].get("defaultMode")
                assert mode is not None and mode & 0o003 == 0 and mode & 0o220 == 0, volume


def test_user_env_is_kept_but_cannot_move_the_config_file():
    env_spec = [{"name": "EXTRA", "value": "1"}, {"name": "THUNDERBOLT_CONFIG", "value": "/x"}]
    container = pod_spec(job_for(trial(**{"trialTemplate.env": env_spec})))["containers"][0]
    pairs = [(e["name"], e["value"]) for e in container["env"]]
    assert ("EXTRA", "1") in pairs
    assert [v for n, v in pairs if n == "THUNDERBOLT_CONFIG"] == [CONFIG_PATH]


def test_artifact_credentials_are_mounted_as_files_never_env_values():
    settings = OperatorSettings(artifacts_credentials_secret="s3-creds")
    pod = pod_spec(job_for(trial(), settings))
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"]["value"] == ARTIFACTS_CREDENTIALS_PATH
    assert all("valueFrom" not in e for e in container["env"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["artifacts-credentials"]["secret"]["secretName"] == "s3-creds"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["artifacts-credentials"]["readOnly"] is True


def test_report_token_secret_is_mounted_read_only_when_given():
    pod = pod_spec(
        job_for(trial(), OperatorSettings(report_url="http://h:1"), "iris-sn-007-report")
    )
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["report-token"] == {
        "name": "report-token",
        "mountPath": REPORT_TOKEN_DIR,
        "readOnly": True,
    }


def test_trainer_config_links_back_and_uses_operator_defaults():
    obj = trial()
    settings = OperatorSettings(
        mlflow_tracking_uri="http://mlflow:5000",
        artifacts_uri="s3://thunderbolt/models/",
        s3_endpoint_url="http://10.88.0.1:9000",
        report_url="http://10.88.0.1:8081",
    )
    config = trainer_config(obj, settings, with_report=True)
    assert config.identity.model_dump() == {
        "namespace": "ml",
        "experiment": "iris-sn",
        "trial": "iris-sn-007",
        "uid": "trial-uid",
        "number": 7,
    }
    assert config.parameters == PARAMS
    assert config.seed == 14 and config.epochs == 5
    assert config.objective.metric == "val_accuracy"
    assert config.tracking and config.tracking.trackingUri == "http://mlflow:5000"
    assert config.tracking.experimentName == "iris-sn"
    assert config.artifacts and config.artifacts.s3EndpointUrl == "http://10.88.0.1:9000"
    assert config.checkpointUri == "s3://thunderbolt/models/checkpoints/iris-sn-007"
    assert config.report and config.report.url == "http://10.88.0.1:8081"


def test_spec_tracking_and_artifacts_override_operator_defaults():
    obj = trial(
        tracking={"mlflow": {"trackingUri": "http://other:5000", "experimentName": "e"}},
        artifacts={"uri": "file:///data/models"},
    )
    config = trainer_config(obj, OperatorSettings(mlflow_tracking_uri="http://x"), False)
    assert config.tracking and config.tracking.trackingUri == "http://other:5000"
    assert config.artifacts and config.artifacts.uri == "file:///data/models"
    assert config.report is None


def test_without_defaults_the_config_has_no_tracking_artifacts_or_report():
    config = trainer_config(trial(), OperatorSettings(), with_report=False)
    assert config.tracking is None and config.artifacts is None
    assert config.checkpointUri is None and config.report is None


def test_configmap_holds_the_trainer_config_and_is_owned_by_the_trial():
    obj = trial()
    config = trainer_config(obj, OperatorSettings(), False)
    cm = build_configmap(obj, config)
    assert cm["metadata"]["name"] == "iris-sn-007-config"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "trial-uid"
    assert TrainerConfig.model_validate_json(cm["data"]["config.json"]) == config
