"""Manifests for a Trial and its children: pure functions of the inputs, no API calls.

Names are deterministic (``<experiment>-NNN`` for the Trial and its Job), so creating
twice is a 409, never a duplicate. Every child carries a controlling owner reference:
deleting the Experiment lets the garbage collector remove Trials, Jobs, pods,
ConfigMaps and Secrets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from thunderbolt.api import trial_parameters
from thunderbolt.api.experiment import ExperimentSpec, TrialTemplate
from thunderbolt.api.meta import (
    API_VERSION,
    EXPERIMENT_LABEL,
    MANAGED_BY,
    NUMBER_LABEL,
    PARAM_LABEL_PREFIX,
    TRIAL_LABEL,
    owner_reference,
    restricted_container_security,
    restricted_pod_security,
)
from thunderbolt.api.pod import Container
from thunderbolt.api.trainer_config import (
    CONFIG_MOUNT_DIR,
    CONFIG_PATH,
    REPORT_TOKEN_DIR,
    REPORT_TOKEN_PATH,
    ArtifactsConfig,
    DatasetConfig,
    MlflowConfig,
    ObjectiveConfig,
    ReportConfig,
    TrainerConfig,
    TrialIdentity,
)
from thunderbolt.api.trial import TrialSpec
from thunderbolt.operator.search import split_seed, trial_seed
from thunderbolt.settings import OperatorSettings

CONTAINER_NAME = "trainer"
# Which collector reads the pod's metrics (the StdOut collector follows only these pods).
COLLECTOR_ANNOTATION = "thunderbolt.io/metrics-collector"
SHM_DIR = "/dev/shm"
WORKSPACE_DIR = "/workspace"
TMP_DIR = "/tmp"
# The trainer's root filesystem is read-only; these are the places it may write, each
# bounded so a runaway Trial is evicted instead of filling the node's disk.
WORKSPACE_SIZE = "8Gi"  # checkpoints, exported models, MLflow's local files, datasets
TMP_SIZE = "1Gi"  # temporary files of torch/onnx export
ARTIFACTS_SECRET_DIR = "/var/run/secrets/thunderbolt.io/artifacts"
ARTIFACTS_CREDENTIALS_PATH = f"{ARTIFACTS_SECRET_DIR}/credentials"
GPU_RESOURCE = "nvidia.com/gpu"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def trial_name(experiment: str, number: int) -> str:
    return f"{experiment}-{number:03d}"


def configmap_name(trial: str) -> str:
    return f"{trial}-config"


def label_value(value: Any) -> str | None:
    """``value`` as a label value, or None when it cannot be one (too long, bad chars)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > 63 or not _LABEL_VALUE.match(text):
        return None
    return text


def parameter_labels(parameters: dict[str, Any]) -> dict[str, str]:
    labels = {}
    for name, value in parameters.items():
        key = PARAM_LABEL_PREFIX + name
        text = label_value(value)
        if text is not None and len(key.split("/", 1)[1]) <= 63:
            labels[key] = text
    return labels


def build_trial(
    experiment: dict[str, Any], spec: ExperimentSpec, number: int, parameters: dict[str, Any]
) -> dict[str, Any]:
    """The Trial resource for trial ``number`` of ``experiment``."""
    meta = experiment["metadata"]
    name = trial_name(meta["name"], number)
    trial_spec = TrialSpec(
        experiment=meta["name"],
        number=number,
        parameters=parameters,
        objective=spec.primary,
        seed=trial_seed(spec, number),
        splitSeed=split_seed(spec, meta.get("uid", "")),
        template=spec.trialTemplate,
        tracking=spec.tracking,
        artifacts=spec.artifacts,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                **MANAGED_BY,
                EXPERIMENT_LABEL: meta["name"],
                NUMBER_LABEL: str(number),
                **parameter_labels(parameters),
            },
            "ownerReferences": [owner_reference(experiment)],
        },
        "spec": trial_spec.model_dump(mode="json", exclude_none=True),
    }


def _artifacts(spec: TrialSpec, settings: OperatorSettings) -> ArtifactsConfig | None:
    art = spec.artifacts
    uri = (art.uri if art else None) or settings.artifacts_uri
    if not uri:
        return None
    endpoint = (art.s3EndpointUrl if art else None) or settings.s3_endpoint_url
    return ArtifactsConfig(uri=uri, s3EndpointUrl=endpoint)


def credentials_secret(spec: TrialSpec, settings: OperatorSettings) -> str | None:
    art = spec.artifacts
    return (art.credentialsSecret if art else None) or settings.artifacts_credentials_secret


def trainer_config(
    trial: dict[str, Any], settings: OperatorSettings, with_report: bool
) -> TrainerConfig:
    """What the trainer reads at CONFIG_PATH: identity, parameters and where things go."""
    meta = trial["metadata"]
    spec = TrialSpec.model_validate(trial["spec"])
    template = spec.template
    mlflow = spec.tracking.mlflow if spec.tracking else None
    tracking_uri = (mlflow.trackingUri if mlflow else None) or settings.mlflow_tracking_uri
    tracking = None
    if tracking_uri:
        tracking = MlflowConfig(
            trackingUri=tracking_uri,
            experimentName=(mlflow.experimentName if mlflow else None) or spec.experiment,
            registeredModelName=mlflow.registeredModelName if mlflow else None,
        )
    artifacts = _artifacts(spec, settings)
    checkpoint = None
    if artifacts and artifacts.uri.startswith(("s3://", "file://")):
        checkpoint = f"{artifacts.uri.rstrip('/')}/checkpoints/{meta['name']}"
    report = None
    if with_report and settings.report_url:
        report = ReportConfig(url=settings.report_url, tokenFile=REPORT_TOKEN_PATH)
    return TrainerConfig(
        identity=TrialIdentity(
            namespace=meta["namespace"],
            experiment=spec.experiment,
            trial=meta["name"],
            uid=meta.get("uid", ""),
            number=spec.number,
        ),
        parameters=dict(spec.parameters),
        task=template.task,
        model=template.model,
        dataset=DatasetConfig(**template.dataset.model_dump()) if template.dataset else None,
        epochs=template.epochs,
        batchSize=template.batchSize,
        seed=spec.seed,
        splitSeed=spec.splitSeed,
        folds=template.validation.folds if template.validation else None,
        objective=ObjectiveConfig(metric=spec.objective.metric, direction=spec.objective.direction),
        earlyStoppingPatience=template.earlyStoppingPatience,
        checks=template.validation.checks if template.validation else "cheap",
        tracking=tracking,
        artifacts=artifacts,
        checkpointUri=checkpoint,
        report=report,
    )


def child_labels(trial: dict[str, Any]) -> dict[str, str]:
    meta = trial["metadata"]
    labels = meta.get("labels") or {}
    out = {**MANAGED_BY, TRIAL_LABEL: meta["name"]}
    for key in (EXPERIMENT_LABEL, NUMBER_LABEL):
        if key in labels:
            out[key] = labels[key]
    return out


def build_configmap(trial: dict[str, Any], config: TrainerConfig) -> dict[str, Any]:
    meta = trial["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": child_labels(trial),
            "ownerReferences": [owner_reference(trial)],
        },
        "data": {"config.json": config.model_dump_json(exclude_none=True, indent=2)},
    }


def _resources(template: TrialTemplate) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Container resources and the tolerations GPU nodes need."""
    res = template.resources
    requests: dict[str, str] = {"cpu": res.cpu, "memory": res.memory}
    limits: dict[str, str] = {"memory": res.memory}
    tolerations: list[dict[str, Any]] = []
    if res.gpus > 0:
        limits[GPU_RESOURCE] = str(res.gpus)
        requests[GPU_RESOURCE] = str(res.gpus)
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    return {"requests": requests, "limits": limits}, tolerations


@dataclass
class _PodFiles:
    """What the trainer container sees: environment, mounts and the pod's volumes."""

    env: list[dict[str, Any]]
    user_env: list[dict[str, Any]]
    mounts: list[dict[str, Any]]
    volumes: list[dict[str, Any]]


def _pod_files(
    trial: dict[str, Any],
    spec: TrialSpec,
    settings: OperatorSettings,
    report_secret: str | None,
) -> _PodFiles:
    """The config file, workspace, artifact credentials, report token, shared memory and
    the user's own volumes, and the env that goes with them."""
    name = trial["metadata"]["name"]
    template = spec.template
    env: list[dict[str, Any]] = [
        {"name": "THUNDERBOLT_CONFIG", "value": CONFIG_PATH},
        {"name": "THUNDERBOLT_PARAMETERS", "value": json.dumps(spec.parameters, sort_keys=True)},
        {"name": "THUNDERBOLT_TRIAL", "value": name},
        {"name": "HOME", "value": WORKSPACE_DIR},
        *trial_parameters.parameter_env(spec.parameters),
    ]
    # The user's env wins over our defaults, except where the config file is.
    user_env = [e.manifest() for e in template.env if e.name != "THUNDERBOLT_CONFIG"]
    user_names = {e["name"] for e in user_env}
    files = _PodFiles(
        env=[e for e in env if e["name"] not in user_names],
        user_env=user_env,
        mounts=[
            {"name": "config", "mountPath": CONFIG_MOUNT_DIR, "readOnly": True},
            {"name": "workspace", "mountPath": WORKSPACE_DIR},
            {"name": "tmp", "mountPath": TMP_DIR},
        ],
        volumes=[
            {"name": "config", "configMap": {"name": configmap_name(name), "defaultMode": 0o444}},
            {"name": "workspace", "emptyDir": {"sizeLimit": WORKSPACE_SIZE}},
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}},
        ],
    )
    secret = credentials_secret(spec, settings)
    if secret:
        files.user_env = [e for e in user_env if e["name"] != "AWS_SHARED_CREDENTIALS_FILE"]
        files.env.append(
            {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": ARTIFACTS_CREDENTIALS_PATH}
        )
        files.mounts.append(
            {"name": "artifacts-credentials", "mountPath": ARTIFACTS_SECRET_DIR, "readOnly": True}
        )
        files.volumes.append(
            {
                "name": "artifacts-credentials",
                "secret": {
                    "secretName": secret,
                    "items": [{"key": "credentials", "path": "credentials"}],
                    "defaultMode": 0o440,
                },
            }
        )
    if report_secret:
        files.mounts.append(
            {"name": "report-token", "mountPath": REPORT_TOKEN_DIR, "readOnly": True}
        )
        files.volumes.append(
            {"name": "report-token", "secret": {"secretName": report_secret, "defaultMode": 0o440}}
        )
    if template.shmSize:
        files.mounts.append({"name": "dshm", "mountPath": SHM_DIR})
        files.volumes.append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": template.shmSize}}
        )
    files.volumes += [dict(v) for v in template.volumes]
    files.mounts += [m.model_dump(exclude_none=True) for m in template.volumeMounts]
    return files


def _pod_spec(spec: TrialSpec, files: _PodFiles) -> dict[str, Any]:
    """The restricted, never-restarting pod that runs the trainer container (with the
    template's init containers and sidecars, under the same restrictions)."""
    template = spec.template
    resources, tolerations = _resources(template)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": template.image,
        "imagePullPolicy": template.imagePullPolicy,
        "env": files.env + files.user_env,
        "resources": resources,
        "securityContext": restricted_container_security(read_only_root=True),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": files.mounts,
        "workingDir": template.workingDir or WORKSPACE_DIR,
    }
    collector = template.metricsCollector
    if collector.kind == "File":
        # The kubelet reads the file's last 4 KiB into the termination message at exit.
        container["terminationMessagePath"] = collector.path
    if template.command:
        container["command"] = _substitute(template.command, spec.parameters)
    if template.args:
        container["args"] = _substitute(template.args, spec.parameters)
    extra = [_extra_container(c, template, spec.parameters, files.env) for c in template.sidecars]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [container, *extra],
        "volumes": files.volumes,
    }
    if template.initContainers:
        pod_spec["initContainers"] = [
            _extra_container(c, template, spec.parameters, files.env)
            for c in template.initContainers
        ]
    tolerations += [t.model_dump(exclude_none=True) for t in template.tolerations]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if template.affinity:
        pod_spec["affinity"] = dict(template.affinity)
    if template.serviceAccountName:
        pod_spec["serviceAccountName"] = template.serviceAccountName
    if template.nodeSelector:
        pod_spec["nodeSelector"] = dict(template.nodeSelector)
    if template.priorityClassName:
        pod_spec["priorityClassName"] = template.priorityClassName
    return pod_spec


def build_job(
    trial: dict[str, Any],
    config: TrainerConfig,
    settings: OperatorSettings,
    report_secret: str | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job that runs one Trial (name = Trial name, owned by the Trial)."""
    meta = trial["metadata"]
    spec = TrialSpec.model_validate(trial["spec"])
    labels = child_labels(trial)
    pod_spec = _pod_spec(spec, _pod_files(trial, spec, settings, report_secret))
    pod_meta: dict[str, Any] = {"labels": labels}
    kind = spec.template.metricsCollector.kind
    if kind != "Push":
        pod_meta["annotations"] = {COLLECTOR_ANNOTATION: kind}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(trial)],
        },
        "spec": {
            "backoffLimit": spec.template.backoffLimit,
            "activeDeadlineSeconds": spec.template.activeDeadlineSeconds,
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }


def _substitute(texts: list[str], parameters: dict[str, Any]) -> list[str]:
    return [trial_parameters.substitute(t, parameters) for t in texts]


def _extra_container(
    c: Container,
    template: TrialTemplate,
    parameters: dict[str, Any],
    base_env: list[dict[str, Any]],
) -> dict[str, Any]:
    """An init container or sidecar: the same restricted security and parameter env as
    the trainer (not its volumes: each container mounts what it names)."""
    own = [e.manifest() for e in c.env]
    names = {e["name"] for e in own}
    out: dict[str, Any] = {
        "name": c.name,
        "image": c.image,
        "imagePullPolicy": c.imagePullPolicy,
        "env": [e for e in base_env if e["name"] not in names] + own,
        "resources": {
            "requests": {"cpu": c.resources.cpu, "memory": c.resources.memory},
            "limits": {"memory": c.resources.memory},
        },
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE_DIR},
            *[m.model_dump(exclude_none=True) for m in c.volumeMounts if m.name != "workspace"],
        ],
        "workingDir": c.workingDir or template.workingDir or WORKSPACE_DIR,
    }
    if c.command:
        out["command"] = _substitute(c.command, parameters)
    if c.args:
        out["args"] = _substitute(c.args, parameters)
    return out
