"""Cross-field validation the schema cannot express on old API servers."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml
from pydantic import ValidationError

from thunderbolt.api.experiment import parse_spec
from thunderbolt.api.modeldeployment import parse_spec as parse_md_spec

REPO = pathlib.Path(__file__).resolve().parents[3]


def _example(name: str) -> dict:
    docs = list(yaml.safe_load_all((REPO / "examples" / name).read_text()))
    return docs[0]


def test_examples_validate():
    for path in sorted((REPO / "examples").glob("**/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Experiment":
                parse_spec(doc["spec"])
            elif doc["kind"] == "ModelDeployment":
                parse_md_spec(doc["spec"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["parameters"][0].update(low=1.0, high=0.1), "greater than high"),
        (lambda s: s["parameters"][0].update(log=True, low=0.0), "log scale needs low > 0"),
        (lambda s: s["parameters"].append(dict(s["parameters"][0])), "duplicate names"),
        (lambda s: s["parameters"][4].update(choices=[]), "choices"),
        (lambda s: s["parameters"][1].update(low=1.5), "whole numbers"),
        (lambda s: s["algorithm"].update(name="grid"), "grid sampler needs a 'step'"),
        (lambda s: s.update(maxTrials=0), "maxTrials"),
        (lambda s: s["objective"].update(direction="up"), "direction"),
    ],
)
def test_bad_experiment_specs_name_the_problem(mutate, message):
    spec = copy.deepcopy(_example("iris-spectral-norm.yaml")["spec"])
    mutate(spec)
    with pytest.raises(ValidationError) as err:
        parse_spec(spec)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({}, "exactly one of"),
        (
            {"trialRef": "a", "uri": "s3://b/m.onnx", "checksum": "sha256:" + "0" * 64},
            "exactly one of",
        ),
        ({"uri": "s3://b/m.onnx"}, "needs model.checksum"),
        ({"mlflowModel": {"name": "m"}}, "exactly one of 'version' or 'alias'"),
    ],
)
def test_bad_model_sources_are_rejected(model, message):
    with pytest.raises(ValidationError) as err:
        parse_md_spec({"model": model})
    assert message in str(err.value)
