"""Realistic Experiment/Trial/ModelDeployment dicts, built through the API models."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from thunderbolt.api.experiment import ExperimentSpec, ExperimentStatus, TrialSummary
from thunderbolt.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from thunderbolt.api.trial import TrialSpec, TrialStatus

REPO = pathlib.Path(__file__).resolve().parents[3]


def example_experiment_spec() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "iris-spectral-norm.yaml").read_text())
    return ExperimentSpec.model_validate(doc["spec"]).model_dump(exclude_none=True)


def experiment(status: dict[str, Any] | None = None, name: str = "iris-sn") -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": example_experiment_spec(),
        "status": ExperimentStatus.model_validate(status or {}).model_dump(exclude_none=True),
    }


def trial(
    number: int,
    phase: str = "Succeeded",
    objective: float | None = None,
    spectral_norm: bool = False,
    duration: float | None = 30.0,
    experiment_name: str = "iris-sn",
    **status: Any,
) -> dict[str, Any]:
    exp_spec = ExperimentSpec.model_validate(example_experiment_spec())
    spec = TrialSpec(
        experiment=experiment_name,
        number=number,
        parameters={"learning_rate": 0.01, "hidden_dim": 32, "spectral_norm": spectral_norm},
        objective=exp_spec.objective,
        template=exp_spec.trialTemplate,
    )
    st = TrialStatus.model_validate(
        {"phase": phase, "objective": objective, "durationSeconds": duration, **status}
    )
    name = f"{experiment_name}-{number:03d}"
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "labels": {"thunderbolt.io/experiment": experiment_name},
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": spec.model_dump(exclude_none=True),
        "status": st.model_dump(exclude_none=True),
    }


def summary(t: dict[str, Any]) -> dict[str, Any]:
    return TrialSummary(
        name=t["metadata"]["name"],
        number=t["spec"]["number"],
        parameters=t["spec"]["parameters"],
        objective=t["status"].get("objective"),
    ).model_dump(exclude_none=True)


def modeldeployment(status: dict[str, Any] | None = None, name: str = "iris") -> dict[str, Any]:
    spec = ModelDeploymentSpec.model_validate({"model": {"trialRef": "iris-sn-000"}})
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": spec.model_dump(exclude_none=True),
        "status": ModelDeploymentStatus.model_validate(status or {}).model_dump(exclude_none=True),
    }
