"""Argo CD health checks (docs/argocd/*.lua) run in Lua 5.1, as Argo CD's gopher-lua does,
against status objects built from the API's pydantic status models."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from thunderbolt.api.experiment import ExperimentStatus, TrialCounts, TrialSummary
from thunderbolt.api.modeldeployment import CanaryStatus, ModelDeploymentStatus, Revision
from thunderbolt.api.trial import TrialStatus

DOCS = pathlib.Path(__file__).resolve().parents[3] / "docs" / "argocd"
SCRIPTS = {
    "Experiment": DOCS / "health-experiment.lua",
    "Trial": DOCS / "health-trial.lua",
    "ModelDeployment": DOCS / "health-modeldeployment.lua",
}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(lua: Any, value: Any) -> Any:
    """JSON-like Python value -> Lua value, as Argo CD hands the object to the script."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    from lupa.lua51 import LuaRuntime

    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    script = SCRIPTS[kind].read_text()
    result = lua.execute(script)
    status, message = result["status"], result["message"]
    assert status in ARGO_STATUSES
    return status, message


def resource(kind: str, status: Any | None, generation: int = 1, spec: dict | None = None) -> dict:
    obj: dict[str, Any] = {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "demo", "generation": generation},
        "spec": spec or {"maxTrials": 6},
    }
    if status is not None:
        obj["status"] = status.model_dump(mode="json", exclude_none=True)
    return obj


BEST = TrialSummary(
    name="iris-sn-003", number=3, objective=0.9667, parameters={"spectral_norm": True}
)


@pytest.mark.parametrize(
    ("status", "generation", "expected", "fragment"),
    [
        (None, 1, "Progressing", "Waiting for the operator"),
        (ExperimentStatus(phase="Pending", observedGeneration=1), 1, "Progressing", "Pending"),
        (
            ExperimentStatus(
                phase="Running",
                observedGeneration=1,
                trials=TrialCounts(total=4, running=2, succeeded=1, pruned=1),
                bestTrial=BEST,
            ),
            1,
            "Progressing",
            "2/6 trials finished, 2 running, best 0.9667 (iris-sn-003)",
        ),
        (
            ExperimentStatus(
                phase="Succeeded",
                observedGeneration=2,
                trials=TrialCounts(total=6, succeeded=5, failed=1),
                bestTrial=BEST,
            ),
            2,
            "Healthy",
            "6/6 trials",
        ),
        (
            ExperimentStatus(phase="Failed", observedGeneration=1, message="3 trials failed"),
            1,
            "Degraded",
            "3 trials failed",
        ),
        # A Succeeded status for an older spec: the new spec is not searched yet.
        (
            ExperimentStatus(phase="Succeeded", observedGeneration=1),
            2,
            "Progressing",
            "generation 2",
        ),
        (ExperimentStatus(phase="Succeeded"), 1, "Progressing", "generation 1"),
    ],
)
def test_experiment_health(status, generation, expected, fragment):
    got, message = health("Experiment", resource("Experiment", status, generation))
    assert got == expected
    assert fragment in message


@pytest.mark.parametrize(
    ("status", "expected", "fragment"),
    [
        (None, "Progressing", "Waiting"),
        (TrialStatus(phase="Pending"), "Progressing", "Pending"),
        (TrialStatus(phase="Running", jobName="iris-sn-001"), "Progressing", "job iris-sn-001"),
        (TrialStatus(phase="Succeeded", objective=0.95), "Healthy", "0.95"),
        (TrialStatus(phase="Pruned", message="below median at step 3"), "Healthy", "median"),
        (
            TrialStatus(phase="Failed", reason="Diverged", message="loss is NaN at epoch 4"),
            "Degraded",
            "Diverged: loss is NaN",
        ),
        (TrialStatus(phase="Succeeded", objective=0.9, observedGeneration=1), "Healthy", "0.9"),
    ],
)
def test_trial_health(status, expected, fragment):
    got, message = health("Trial", resource("Trial", status))
    assert (got, fragment in message) == (expected, True), message


def test_trial_stale_generation_is_progressing():
    status = TrialStatus(phase="Succeeded", objective=0.9, observedGeneration=1)
    assert health("Trial", resource("Trial", status, generation=2))[0] == "Progressing"


REV = Revision(number=4, trial="iris-sn-003")
ENDPOINT = "http://iris.demo.svc:8080/v2/models/iris"


@pytest.mark.parametrize(
    ("status", "generation", "expected", "fragment"),
    [
        (None, 1, "Progressing", "Waiting"),
        (
            ModelDeploymentStatus(
                phase="Available", observedGeneration=1, currentRevision=REV, endpoint=ENDPOINT
            ),
            1,
            "Healthy",
            f"revision 4 at {ENDPOINT}",
        ),
        (
            ModelDeploymentStatus(
                phase="Available",
                observedGeneration=1,
                currentRevision=REV,
                canary=CanaryStatus(revision=5, weight=10, step=0),
            ),
            1,
            "Progressing",
            "Canary revision 5 at 10%",
        ),
        (
            ModelDeploymentStatus(phase="Progressing", observedGeneration=1),
            1,
            "Progressing",
            "Progressing",
        ),
        (
            ModelDeploymentStatus(
                phase="Degraded",
                observedGeneration=1,
                currentRevision=REV,
                message="canary rolled back: p99 80ms > 50ms",
            ),
            1,
            "Degraded",
            "rolled back",
        ),
        (
            ModelDeploymentStatus(phase="Available", observedGeneration=3, currentRevision=REV),
            4,
            "Progressing",
            "generation 4",
        ),
    ],
)
def test_modeldeployment_health(status, generation, expected, fragment):
    got, message = health("ModelDeployment", resource("ModelDeployment", status, generation))
    assert got == expected
    assert fragment in message


def test_argocd_cm_snippet_carries_the_same_scripts():
    cm = yaml.safe_load((DOCS / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    expected = {
        f"resource.customizations.health.thunderbolt.io_{kind}": path.read_text()
        for kind, path in SCRIPTS.items()
    }
    assert cm["data"] == expected
