"""The generated CRDs must be structural schemas the API server accepts."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from thunderbolt.api.crdgen import KINDS, crd, render

REPO = pathlib.Path(__file__).resolve().parents[3]
# Keys allowed inside anyOf/oneOf by the structural-schema rules.
_JUNCTOR_KEYS = {"required", "properties", "enum"}


def _walk(node: Any, path: str, in_junctor: bool = False):
    if isinstance(node, dict):
        yield path, node, in_junctor
        for key, value in node.items():
            junctor = in_junctor or key in ("anyOf", "oneOf", "allOf", "not")
            if key in ("properties",):
                for name, sub in value.items():
                    yield from _walk(sub, f"{path}.{name}", junctor)
            elif key in ("items", "additionalProperties"):
                yield from _walk(value, f"{path}[]", junctor)
            elif key in ("anyOf", "oneOf", "allOf"):
                for i, sub in enumerate(value):
                    yield from _walk(sub, f"{path}<{key}{i}>", True)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind):
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(schema)
    assert "$ref" not in text
    assert "type: 'null'" not in text and "type: null" not in text
    for path, node, in_junctor in _walk(schema, kind.kind):
        if in_junctor:
            assert set(node) <= _JUNCTOR_KEYS, f"{path}: {sorted(node)} not allowed in a junctor"
            continue
        typed = "type" in node or node.get("x-kubernetes-preserve-unknown-fields")
        assert typed, f"{path} has no type"
        assert node.get("additionalProperties") is not False, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_names_and_columns(kind):
    body = crd(kind)
    names = body["spec"]["names"]
    assert names["shortNames"] == [kind.short_name]
    assert names["categories"] == ["thunderbolt"]
    version = body["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    # Age ends the default columns (`-o wide` ones, priority 1, may follow)
    printed = version["additionalPrinterColumns"]
    columns = [c["name"] for c in printed if not c.get("priority")]
    assert columns[0] == "Phase" and columns[-1] == "Age"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "x-kubernetes-preserve-unknown-fields" not in spec


def test_experiment_spec_carries_bounds_and_enums():
    spec = crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    assert set(spec["required"]) >= {"maxTrials", "parameters", "trialTemplate"}
    # one objective or several: the API server (1.20 too) requires exactly one of the two
    assert spec["oneOf"] == [{"required": ["objective"]}, {"required": ["objectives"]}]
    assert props["objectives"]["minItems"] == 2 and props["objectives"]["maxItems"] == 4
    assert props["maxTrials"]["minimum"] == 1
    assert props["parameters"]["maxItems"] == 50
    assert props["algorithm"]["properties"]["name"]["enum"] == [
        "tpe",
        "random",
        "grid",
        "cmaes",
        "gp",
        "nsga2",
    ]
    assert props["objective"]["properties"]["direction"]["enum"] == ["maximize", "minimize"]
    template = props["trialTemplate"]["properties"]
    assert template["image"]["maxLength"] == 512
    assert template["resources"]["properties"]["gpus"]["maximum"] == 16


def test_committed_crds_match_the_models():
    """The same check as `make verify`, runnable without git."""
    for kind in KINDS:
        committed = (REPO / "crds" / f"{kind.plural}.yaml").read_text()
        assert committed == render(kind), f"crds/{kind.plural}.yaml drifted: run make crds"
