"""Bad manifests against the pydantic models and the CRDs' CEL rules (no cluster).

The example manifests must pass both; each bad one must fail pydantic (the operator's
check on every server version), and the ``cel`` ones a CEL rule of the generated CRD,
evaluated by a real CEL interpreter as Kubernetes >= 1.25 would.
"""

from __future__ import annotations

from typing import Any

import celpy
import pydantic
import pytest

from tests.hostile.conftest import Figures
from tests.hostile.manifests import BAD, GOOD, bad_manifest, schema_nodes
from thunderbolt.api.crdgen import KINDS, crd
from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.modeldeployment import ModelDeploymentSpec

SPECS: dict[str, type[pydantic.BaseModel]] = {
    "Experiment": ExperimentSpec,
    "ModelDeployment": ModelDeploymentSpec,
}


def _schema(kind: str) -> dict[str, Any]:
    found = next(k for k in KINDS if k.kind == kind)
    return crd(found)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _is_sorted(values: Any) -> Any:
    return celpy.celtypes.BoolType(all(a <= b for a, b in zip(values, values[1:], strict=False)))


def cel_violations(kind: str, doc: dict[str, Any]) -> list[str]:
    """The CEL rules of ``kind``'s CRD that ``doc`` breaks."""
    env = celpy.Environment()
    broken = []
    for node, value in schema_nodes(_schema(kind), doc):
        for entry in node.get("x-kubernetes-validations", []):
            program = env.program(env.compile(entry["rule"]), functions={"isSorted": _is_sorted})
            try:
                ok = bool(program.evaluate({"self": celpy.json_to_cel(value)}))
            except Exception:  # a rule that cannot evaluate on this value rejects it
                ok = False
            if not ok:
                broken.append(entry["rule"])
    return broken


def pydantic_refuses(kind: str, doc: dict[str, Any]) -> bool:
    try:
        SPECS[kind].model_validate(doc["spec"])
    except pydantic.ValidationError as exc:
        # a misspelt field in a case would be refused for the wrong reason
        assert {e["type"] for e in exc.errors()} != {"extra_forbidden"}, exc
        return True
    return False


@pytest.mark.parametrize("kind", list(GOOD))
def test_the_examples_pass_every_layer(kind: str) -> None:
    assert not pydantic_refuses(kind, GOOD[kind])
    assert cel_violations(kind, GOOD[kind]) == []


def test_there_are_enough_cases() -> None:
    assert len(BAD) >= 30
    assert sum("cel" in layers for _k, _m, layers in BAD.values()) >= 5


@pytest.mark.parametrize("name", list(BAD))
def test_bad_manifest_is_refused(figures: Figures, name: str) -> None:
    kind, _mutation, layers = BAD[name]
    doc = bad_manifest(name)
    refused_by_pydantic = pydantic_refuses(kind, doc)
    violations = cel_violations(kind, doc)
    figures.record("bad manifest (pydantic)", "refused" if refused_by_pydantic else "ACCEPTED")
    assert refused_by_pydantic, f"{name}: the pydantic models accepted it"
    if "cel" in layers:
        figures.record("bad manifest (CEL)", "refused" if violations else "ACCEPTED")
        assert violations, f"{name}: no CEL rule refused it"
