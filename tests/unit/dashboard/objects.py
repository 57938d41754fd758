"""Experiment, Trial and ModelDeployment dicts shaped as the API server returns them."""

from __future__ import annotations

from typing import Any

NS = "team-a"


def experiment(name: str = "iris", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {
            "name": name, "namespace": NS, "labels": {"app": "iris", "team": "ml"},
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": {
            "maxTrials": 8, "parallelTrials": 2,
            "objective": {"metric": "accuracy", "direction": "maximize"},
            "algorithm": {"name": "tpe"},
            "parameters": [
                {"name": "lr", "type": "float", "low": 0.001, "high": 0.1, "log": True},
                {"name": "spectral_norm", "type": "categorical", "choices": [True, False]},
            ],
        },
        "status": {"phase": "Running", **status},
    }  # fmt: skip


def trial(
    number: int, phase: str, objective: float | None, sn: bool, lr: float = 0.01,
    experiment: str = "iris", **status: Any,
) -> dict[str, Any]:  # fmt: skip
    st: dict[str, Any] = {"phase": phase, **status}
    if objective is not None:
        st["objective"] = objective
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Trial",
        "metadata": {
            "name": f"{experiment}-{number}", "namespace": NS,
            "labels": {"thunderbolt.io/experiment": experiment},
            "creationTimestamp": "2026-01-01T10:00:00Z",
        },
        "spec": {
            "experiment": experiment, "number": number,
            "parameters": {"lr": lr, "spectral_norm": sn},
            "objective": {"metric": "accuracy", "direction": "maximize"},
        },
        "status": st,
    }  # fmt: skip


def trials() -> list[dict[str, Any]]:
    return [
        trial(0, "Succeeded", 0.90, True, 0.01, durationSeconds=61),
        trial(1, "Succeeded", 0.95, False, 0.02, durationSeconds=50),
        trial(2, "Failed", None, True, reason="OOMKilled"),
        trial(3, "Succeeded", 0.93, True, 0.005, durationSeconds=70),
        trial(4, "Pruned", None, False),
        trial(5, "Succeeded", 0.97, True, 0.03, durationSeconds=40),
        trial(
            6,
            "Running",
            None,
            False,
            intermediate=[{"step": 0, "value": 0.5}, {"step": 1, "value": 0.7}],
        ),
    ]
