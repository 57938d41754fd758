"""Misplaced names are refused everywhere, not dropped (api/common.py ``misplaced``).

Kubernetes before 1.25 prunes unknown fields silently: a ``canary`` put beside
``strategy`` would roll a model out at 100%. Each trap must be refused by pydantic with
a hint, and carry a schema nothing satisfies (``not: {}``) in the generated CRD, which
tests/integration/test_schema.py applies to the real API server.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from thunderbolt.api.crdgen import KINDS, crd
from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.modeldeployment import ModelDeploymentSpec

REPO = pathlib.Path(__file__).resolve().parents[3]
EXPERIMENT = next(yaml.safe_load_all((REPO / "examples/iris-spectral-norm.yaml").read_text()))
DEPLOYMENT = next(yaml.safe_load_all((REPO / "examples/iris-modeldeployment.yaml").read_text()))

CASES = [
    (ModelDeploymentSpec, DEPLOYMENT, ("canary",), {"steps": [{"weight": 10}]}, "spec.strategy"),
    (ModelDeploymentSpec, DEPLOYMENT, ("analysis",), {"minRequests": 1}, "spec.strategy"),
    (ModelDeploymentSpec, DEPLOYMENT, ("steps",), [{"weight": 10}], "strategy.canary"),
    (ExperimentSpec, EXPERIMENT, ("paralelTrials",), 4, "parallelTrials"),
    (ExperimentSpec, EXPERIMENT, ("trialTemplate", "resources", "gpu"), 1, "gpus"),
    (ExperimentSpec, EXPERIMENT, ("parameters", 0, "scale"), "log", "log: true"),
]


def _with(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    spec = yaml.safe_load(yaml.safe_dump(doc["spec"]))
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(("model", "doc", "path", "value", "hint"), CASES)
def test_pydantic_refuses_the_misplaced_name_with_a_hint(model, doc, path, value, hint):
    model.model_validate(doc["spec"])  # the example itself is fine
    with pytest.raises(ValidationError) as error:
        model.model_validate(_with(doc, path, value))
    assert f"{path[-1]} is not a field here" in str(error.value)
    assert hint in str(error.value)


def _node(schema: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    for key in path:
        schema = schema["items"] if isinstance(key, int) else schema["properties"][key]
    return schema


@pytest.mark.parametrize(("model", "doc", "path", "value", "hint"), CASES)
def test_the_crd_schema_refuses_any_value_there(model, doc, path, value, hint):
    kind = next(k for k in KINDS if k.spec is model)
    spec = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    node = _node(spec, path)
    assert node["not"] == {} and node["x-kubernetes-preserve-unknown-fields"] is True
    assert "type" not in node and hint in node["description"]


def test_traps_never_appear_in_dumped_objects():
    dumped = ExperimentSpec.model_validate(EXPERIMENT["spec"]).model_dump()
    assert "paralelTrials" not in dumped and "scale" not in dumped["parameters"][0]
    assert "gpu" not in dumped["trialTemplate"]["resources"]
    assert "canary" not in ModelDeploymentSpec.model_validate(DEPLOYMENT["spec"]).model_dump()
