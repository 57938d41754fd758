"""Bad manifests: each a small change to an example Experiment or ModelDeployment.

``BAD`` maps a name to (kind, mutation, layers): every case must be refused by the
pydantic models (what the operator checks on any server); ``"cel"`` cases also by a CRD
``x-kubernetes-validations`` rule (Kubernetes >= 1.25); ``"schema"`` cases also by the
CRD's structural schema on the real API server (test_hostile_manifests_cluster.py).
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
Mutation = Callable[[dict[str, Any]], None]


def _load(name: str) -> dict[str, Any]:
    return next(yaml.safe_load_all((REPO / "examples" / name).read_text()))


EXPERIMENT = _load("iris-spectral-norm.yaml")
DEPLOYMENT = _load("iris-modeldeployment.yaml")
GOOD = {"Experiment": EXPERIMENT, "ModelDeployment": DEPLOYMENT}


def _node(doc: dict[str, Any], path: str, create: bool = True) -> tuple[Any, str]:
    *parents, leaf = path.split(".")
    node: Any = doc
    for key in parents:
        if isinstance(node, list):
            node = node[int(key)]
        else:
            node = node.setdefault(key, {}) if create else node[key]
    return node, leaf


def put(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node, leaf = _node(doc, path)
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node, leaf = _node(doc, path, create=False)
        del node[leaf]

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        for m in mutations:
            m(doc)

    return mutate


TT = "spec.trialTemplate"
E, D = "Experiment", "ModelDeployment"
# name -> (kind, mutation, extra layers that must refuse it too)
BAD: dict[str, tuple[str, Mutation, set[str]]] = {
    "cpu 1.2.3": (E, put(f"{TT}.resources.cpu", "1.2.3"), {"schema"}),
    "memory 5MGT": (E, put(f"{TT}.resources.memory", "5MGT"), {"schema"}),
    "negative cpu": (E, put(f"{TT}.resources.cpu", "-1"), {"schema"}),
    "image with spaces": (E, put(f"{TT}.image", "My Image:LATEST!"), {"schema"}),
    "empty image": (E, put(f"{TT}.image", ""), {"schema"}),
    "priority class not DNS": (E, put(f"{TT}.priorityClassName", "Not Valid!"), {"schema"}),
    "node selector key": (E, put(f"{TT}.nodeSelector", {"bad key!": "x"}), {"cel"}),
    "node selector value": (E, put(f"{TT}.nodeSelector", {"disk": "no spaces!"}), {"schema"}),
    "dataset s3 without bucket": (E, put(f"{TT}.dataset.uri", "s3://"), {"schema"}),
    "maxTrials zero": (E, put("spec.maxTrials", 0), {"schema"}),
    "maxTrials negative": (E, put("spec.maxTrials", -5), {"schema"}),
    "maxTrials a string": (E, put("spec.maxTrials", "ten"), {"schema"}),
    "parallelTrials zero": (E, put("spec.parallelTrials", 0), {"schema"}),
    "low above high": (E, put("spec.parameters.0", {"name": "lr", "type": "float", "low": 0.5, "high": 0.1}), {"cel"}),  # noqa: E501
    "unknown parameter type": (E, put("spec.parameters.0.type", "complex"), {"schema"}),
    "categorical without choices": (E, put("spec.parameters.0", {"name": "act", "type": "categorical"}), set()),  # noqa: E501
    "no parameters": (E, put("spec.parameters", []), {"schema"}),
    "objective direction sideways": (E, put("spec.objective.direction", "sideways"), {"schema"}),
    "no objective metric": (E, drop("spec.objective.metric"), {"schema"}),
    "no trial template": (E, drop("spec.trialTemplate"), {"schema"}),
    "spec a list": (E, put("spec", [1, 2]), {"schema"}),
    "env not a list": (E, put(f"{TT}.env", {"A": "b"}), {"schema"}),
    "canary weights decreasing": (D, put("spec.strategy.canary", {"steps": [{"weight": 50}, {"weight": 10}]}), {"cel"}),  # noqa: E501
    "canary weight over 100": (D, put("spec.strategy.canary", {"steps": [{"weight": 150}]}), {"schema"}),  # noqa: E501
    "replicas negative": (D, put("spec.replicas", -1), {"schema"}),
    "grpc port equals http": (D, put("spec.serving", {"grpcPort": 8080}), {"cel"}),
    "grpc port privileged": (D, put("spec.serving", {"grpcPort": 80}), {"cel"}),
    "serving memory 1.2.3": (D, put("spec.resources.memory", "1.2.3"), {"schema"}),
    "serving cpu words": (D, put("spec.resources.cpu", "two"), {"schema"}),
    "model source empty": (D, put("spec.model", {}), set()),
    "max batch size zero": (D, put("spec.serving", {"batching": {"maxBatchSize": 0}}), {"schema"}),
    "serving port privileged": (D, put("spec.serving", {"port": 80}), {"schema"}),
}  # fmt: skip


def bad_manifest(name: str) -> dict[str, Any]:
    kind, mutate, _layers = BAD[name]
    doc = copy.deepcopy(GOOD[kind])
    mutate(doc)
    return doc


def schema_nodes(schema: dict[str, Any], obj: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """(schema node, value) for every value of ``obj`` the CRD schema describes."""
    yield schema, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            sub = schema.get("properties", {}).get(key) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                yield from schema_nodes(sub, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for value in obj:
            yield from schema_nodes(schema["items"], value)
