"""The API server itself rejects bad manifests at `kubectl apply`, naming the field.

Client-side validation is switched off (--validate=false) so every rejection here comes
from the CRD's OpenAPI schema on the server, as it would for GitOps tools that bypass it.
"""

from __future__ import annotations

import copy
import pathlib
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.fixtures.crds import crds  # noqa: F401  (fixture used by usefixtures below)

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("crds")


def _load(name: str) -> dict[str, Any]:
    return next(yaml.safe_load_all((REPO / "examples" / name).read_text()))


EXPERIMENT = _load("iris-spectral-norm.yaml")
DEPLOYMENT = _load("iris-modeldeployment.yaml")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Mutation that sets a dotted path ('spec.parameters.0.low') to value."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[leaf]

    return mutate


FLOAT_PARAM = {"name": "lr", "type": "float", "low": 0.001, "high": 0.1}

# (id, base manifest, mutation, field the error must name)
BAD_MANIFESTS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None], str]] = [
    ("maxTrials-wrong-type", EXPERIMENT, _set("spec.maxTrials", "ten"), "spec.maxTrials"),
    ("maxTrials-below-minimum", EXPERIMENT, _set("spec.maxTrials", 0), "spec.maxTrials"),
    (
        "parallelTrials-above-maximum",
        EXPERIMENT,
        _set("spec.parallelTrials", 1000),
        "spec.parallelTrials",
    ),
    (
        "maxFailedTrials-negative",
        EXPERIMENT,
        _set("spec.maxFailedTrials", -1),
        "spec.maxFailedTrials",
    ),
    ("unknown-sampler", EXPERIMENT, _set("spec.algorithm.name", "bayes"), "spec.algorithm.name"),
    (
        "unknown-direction",
        EXPERIMENT,
        _set("spec.objective.direction", "up"),
        "spec.objective.direction",
    ),
    ("unknown-pruner", EXPERIMENT, _set("spec.pruner.name", "asha"), "spec.pruner.name"),
    ("missing-objective", EXPERIMENT, _drop("spec.objective"), "objective"),
    (
        "objective-and-objectives",
        EXPERIMENT,
        _set(
            "spec.objectives",
            [{"metric": "val_accuracy"}, {"metric": "latency_p50_ms", "direction": "minimize"}],
        ),
        "objective",
    ),
    (
        "one-entry-objectives",
        _load("iris-accurate-and-fast.yaml"),
        _set("spec.objectives", [{"metric": "val_accuracy"}]),
        "spec.objectives",
    ),
    ("missing-image", EXPERIMENT, _drop("spec.trialTemplate.image"), "image"),
    (
        "image-too-long",
        EXPERIMENT,
        _set("spec.trialTemplate.image", "x" * 600),
        "spec.trialTemplate.image",
    ),
    (
        "too-many-parameters",
        EXPERIMENT,
        _set("spec.parameters", [dict(FLOAT_PARAM, name=f"p{i}") for i in range(51)]),
        "spec.parameters",
    ),
    ("no-parameters", EXPERIMENT, _set("spec.parameters", []), "spec.parameters"),
    (
        "unknown-parameter-type",
        EXPERIMENT,
        _set("spec.parameters.0.type", "complex"),
        "spec.parameters[0].type",
    ),
    (
        "float-parameter-without-bounds",
        EXPERIMENT,
        _set("spec.parameters.0", {"name": "lr", "type": "float"}),
        "spec.parameters[0]",
    ),
    (
        "categorical-without-choices",
        EXPERIMENT,
        _set("spec.parameters.4", {"name": "act", "type": "categorical"}),
        "spec.parameters[4]",
    ),
    (
        "parameter-name-with-spaces",
        EXPERIMENT,
        _set("spec.parameters.0.name", "learning rate"),
        "spec.parameters[0].name",
    ),
    (
        "dataset-unknown-scheme",
        EXPERIMENT,
        _set("spec.trialTemplate.dataset.uri", "ftp://host/x.csv"),
        "spec.trialTemplate.dataset.uri",
    ),
    (
        "validation-fraction-too-big",
        EXPERIMENT,
        _set("spec.trialTemplate.dataset.validationFraction", 1.5),
        "spec.trialTemplate.dataset.validationFraction",
    ),
    (
        "negative-gpus",
        EXPERIMENT,
        _set("spec.trialTemplate.resources.gpus", -1),
        "spec.trialTemplate.resources.gpus",
    ),
    (
        "memory-not-a-quantity",
        EXPERIMENT,
        _set("spec.trialTemplate.resources.memory", "lots"),
        "spec.trialTemplate.resources.memory",
    ),
    # Values that passed the schema and then failed Job creation with 422 on every retry.
    *[
        (
            f"cpu-{label}",
            EXPERIMENT,
            _set("spec.trialTemplate.resources.cpu", value),
            "spec.trialTemplate.resources.cpu",
        )
        for label, value in (("three-dots", "1.2.3"), ("stacked-suffixes", "5MGT"))
    ],
    (
        "image-not-a-reference",
        EXPERIMENT,
        _set("spec.trialTemplate.image", "My Image:LATEST!"),
        "spec.trialTemplate.image",
    ),
    (
        "priority-class-not-a-name",
        EXPERIMENT,
        _set("spec.trialTemplate.priorityClassName", "Not Valid!"),
        "spec.trialTemplate.priorityClassName",
    ),
    (
        "node-selector-bad-value",
        EXPERIMENT,
        _set("spec.trialTemplate.nodeSelector", {"disktype": "fast ssd!"}),
        "spec.trialTemplate.nodeSelector",
    ),
    (
        "dataset-s3-without-bucket",
        EXPERIMENT,
        _set("spec.trialTemplate.dataset.uri", "s3://"),
        "spec.trialTemplate.dataset.uri",
    ),
    (
        "artifacts-s3-without-bucket",
        EXPERIMENT,
        _set("spec.artifacts", {"uri": "s3://"}),
        "spec.artifacts.uri",
    ),
    ("md-image-not-a-reference", DEPLOYMENT, _set("spec.image", "Serve Me!"), "spec.image"),
    (
        "md-uri-without-key",
        DEPLOYMENT,
        _set("spec.model", {"uri": "s3://", "checksum": "sha256:" + "a" * 64}),
        "spec.model.uri",
    ),
    (
        "md-two-model-sources",
        DEPLOYMENT,
        _set(
            "spec.model",
            {"trialRef": "t-000", "uri": "s3://b/m.onnx", "checksum": "sha256:" + "a" * 64},
        ),
        "spec.model",
    ),
    (
        "md-uri-without-checksum",
        DEPLOYMENT,
        _set("spec.model", {"uri": "s3://b/m.onnx"}),
        "spec.model",
    ),
    (
        "md-bad-checksum-format",
        DEPLOYMENT,
        _set("spec.model", {"uri": "s3://b/m.onnx", "checksum": "md5:abc"}),
        "spec.model.checksum",
    ),
    (
        "md-version-and-alias",
        DEPLOYMENT,
        _set("spec.model", {"mlflowModel": {"name": "m", "version": "1", "alias": "champion"}}),
        "spec.model.mlflowModel",
    ),
    (
        "md-canary-weight-over-100",
        DEPLOYMENT,
        _set("spec.strategy.canary.steps.0.weight", 150),
        "spec.strategy.canary.steps[0].weight",
    ),
    ("md-unknown-strategy", DEPLOYMENT, _set("spec.strategy.type", "Mirror"), "spec.strategy.type"),
    (
        "md-history-limit-zero",
        DEPLOYMENT,
        _set("spec.revisionHistoryLimit", 0),
        "spec.revisionHistoryLimit",
    ),
    (
        "md-error-rate-over-one",
        DEPLOYMENT,
        _set("spec.strategy.analysis.maxErrorRate", 2),
        "spec.strategy.analysis.maxErrorRate",
    ),
    # Misplaced names that servers before 1.25 would otherwise drop silently.
    (
        "md-canary-outside-strategy",
        DEPLOYMENT,
        _set("spec.canary", {"steps": [{"weight": 10}]}),
        "spec.canary",
    ),
    (
        "md-analysis-outside-strategy",
        DEPLOYMENT,
        _set("spec.analysis", {"minRequests": 5}),
        "spec.analysis",
    ),
    ("md-steps-outside-canary", DEPLOYMENT, _set("spec.steps", [{"weight": 10}]), "spec.steps"),
    ("exp-paralel-trials", EXPERIMENT, _set("spec.paralelTrials", 4), "spec.paralelTrials"),
    (
        "exp-resources-gpu",
        EXPERIMENT,
        _set("spec.trialTemplate.resources.gpu", 1),
        "spec.trialTemplate.resources.gpu",
    ),
    (
        "exp-param-scale-log",
        EXPERIMENT,
        _set("spec.parameters.0.scale", "log"),
        "spec.parameters[0].scale",
    ),
]


def _apply(kubectl, namespace: str, doc: dict[str, Any], tmp_path: pathlib.Path, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return kubectl("apply", "--validate=false", "-n", namespace, "-f", str(path))


def test_at_least_fifteen_bad_manifests_are_covered():
    assert len(BAD_MANIFESTS) >= 15


@pytest.mark.parametrize(
    ("case", "base", "mutate", "field"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS]
)
def test_api_server_rejects_bad_manifest(kubectl, namespace, tmp_path, case, base, mutate, field):
    doc = copy.deepcopy(base)
    doc["metadata"]["name"] = case
    mutate(doc)
    result = _apply(kubectl, namespace, doc, tmp_path, case)
    assert result.returncode != 0, f"{case} was accepted:\n{result.stdout}"
    assert "is invalid" in result.stderr, result.stderr
    # API servers before 1.22 print list paths without the index (spec.parameters.type).
    without_index = re.sub(r"\[\d+\]", "", field)
    named = field in result.stderr or without_index in re.sub(r"\[\d+\]", "", result.stderr)
    assert named, f"error does not name {field}:\n{result.stderr}"
    listed = kubectl("get", doc["kind"].lower() + ".thunderbolt.io", case, "-n", namespace)
    assert listed.returncode != 0, "a rejected manifest must not be stored"


def test_examples_are_accepted(kubectl, namespace, tmp_path):
    examples = sorted(p for p in (REPO / "examples").glob("*.yaml") if "argocd" not in p.name)
    assert examples
    for path in examples:
        result = kubectl("apply", "-n", namespace, "-f", str(path))
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
    stored = kubectl("get", "thunderbolt", "-n", namespace, "-o", "name")
    assert stored.returncode == 0, stored.stderr
    assert "experiment.thunderbolt.io/iris-sn" in stored.stdout
    assert "modeldeployment.thunderbolt.io/iris" in stored.stdout


def test_defaults_are_filled_in_by_the_server(kubectl, namespace, tmp_path):
    doc = copy.deepcopy(EXPERIMENT)
    doc["metadata"]["name"] = "defaults"
    del doc["spec"]["parallelTrials"]
    del doc["spec"]["trialTemplate"]["backoffLimit"]
    assert _apply(kubectl, namespace, doc, tmp_path, "defaults").returncode == 0
    got = kubectl("get", "tbexp", "defaults", "-n", namespace, "-o", "json")
    spec = yaml.safe_load(got.stdout)["spec"]
    assert spec["parallelTrials"] == 1
    assert spec["trialTemplate"]["backoffLimit"] == 1


def test_printer_columns_and_short_names(kubectl, namespace):
    result = kubectl(
        "apply", "-n", namespace, "-f", str(REPO / "examples" / "iris-spectral-norm.yaml")
    )
    assert result.returncode == 0, result.stderr
    table = kubectl("get", "tbexp", "-n", namespace)
    header = table.stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "PROGRESS", "BEST", "AGE"], table.stdout
