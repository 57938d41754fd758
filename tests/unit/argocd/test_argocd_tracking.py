"""Children the operator creates must not look like Argo CD-managed resources.

Argo CD tracks what an Application owns by the ``app.kubernetes.io/instance`` label
(default) or the ``argocd.argoproj.io/tracking-id`` annotation. A Trial, Job, Secret,
ConfigMap, Deployment or Service carrying either would be shown as out of sync and
pruned on the next sync. The parent Experiment/ModelDeployment here carries both, so a
builder that copies the parent's metadata fails.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
TRACKING_LABELS = {"app.kubernetes.io/instance", "argocd.argoproj.io/instance"}
TRACKING_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id",
    "kubectl.kubernetes.io/last-applied-configuration",
}
ARGO_METADATA = {
    "labels": {"app.kubernetes.io/instance": "thunderbolt-demo"},
    "annotations": {
        "argocd.argoproj.io/tracking-id": "thunderbolt-demo:thunderbolt.io/Experiment:demo/iris-sn"
    },
}


def assert_untracked(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    where = f"{obj['kind']}/{meta['name']}"
    assert not TRACKING_LABELS & set(meta.get("labels") or {}), f"{where} carries a tracking label"
    assert not TRACKING_ANNOTATIONS & set(meta.get("annotations") or {}), (
        f"{where} carries a tracking annotation"
    )
    assert meta.get("ownerReferences"), (
        f"{where} has no owner reference (Argo shows children by owner)"
    )
    template = (obj.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    assert not TRACKING_LABELS & set(labels), f"{where} pod template carries a tracking label"


def argo_experiment() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "iris-spectral-norm.yaml").read_text())
    doc["metadata"].update(namespace="demo", uid="0000-1111", generation=1, **ARGO_METADATA)
    return doc


def test_operator_trial_children_carry_no_tracking_metadata():
    builders = pytest.importorskip("thunderbolt.operator.builders")
    from thunderbolt.api import report_secret
    from thunderbolt.api.experiment import ExperimentSpec
    from thunderbolt.settings import OperatorSettings

    experiment = argo_experiment()
    spec = ExperimentSpec.model_validate(experiment["spec"])
    params = {"learning_rate": 0.01, "hidden_dim": 32, "num_layers": 1, "dropout": 0.1,
              "activation": "relu", "spectral_norm": True}  # fmt: skip
    trial = builders.build_trial(experiment, spec, 0, params)
    assert_untracked(trial)
    trial["metadata"]["uid"] = "2222"
    settings = OperatorSettings(
        report_url="http://10.0.0.1:8081", artifacts_credentials_secret="s3"
    )
    config = builders.trainer_config(trial, settings, with_report=True)
    children = [
        builders.build_configmap(trial, config),
        builders.build_job(trial, config, settings, "tok"),
    ]
    children.append(report_secret.build_report_secret(trial, "token"))
    for child in children:
        assert_untracked(child)


def test_deploy_children_carry_no_tracking_metadata():
    builders = pytest.importorskip("thunderbolt.deploy.builders")
    from thunderbolt.api.modeldeployment import ModelDeploymentSpec, Revision

    doc = yaml.safe_load((REPO / "examples" / "iris-modeldeployment.yaml").read_text())
    owner = builders.Owner(name=doc["metadata"]["name"], namespace="demo", uid="3333")
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    revision = Revision(
        number=1, modelUri="s3://models/iris.onnx", modelChecksum="sha256:" + "0" * 64
    )
    defaults = builders.ServingDefaults(image="thunderbolt-trainer:0.1.0")
    children = [
        builders.deployment(owner, spec, revision, 1, defaults),
        builders.service(owner, owner.name, builders.all_revisions_selector(owner), 8080),
    ]
    for child in children:
        assert_untracked(child)
