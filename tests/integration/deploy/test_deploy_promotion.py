"""Experiment promotion against the real API server, driving the controller in-process.

No operator process: the Experiment and Trial statuses are written by the test (as the
search would), and ``Controller.promote`` / ``Controller.tick`` run against the cluster.
``replicas: 0`` keeps pods out of it, so only the API objects are exercised.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from thunderbolt.api.meta import API_VERSION, GROUP, VERSION
from thunderbolt.deploy import builders as b
from thunderbolt.deploy.kube import Kube
from thunderbolt.deploy.reconcile import Controller

CHECKSUM = "sha256:" + "c" * 64
TEMPLATE = {"image": "thunderbolt-trainer:0.1.0", "dataset": {"uri": "builtin://iris"}}


def create(custom: client.CustomObjectsApi, namespace: str, plural: str, kind: str,
           name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> None:  # fmt: skip
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    if status is not None:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status},
            _content_type="application/merge-patch+json",
        )  # fmt: skip


def trial(custom, namespace: str, name: str, objective: float) -> None:
    spec = {
        "experiment": "search",
        "number": 0,
        "objective": {"metric": "val_accuracy"},
        "template": TEMPLATE,
    }
    status = {"phase": "Succeeded", "objective": objective, "modelUri": f"s3://models/{name}.onnx",
              "modelChecksum": CHECKSUM}  # fmt: skip
    create(custom, namespace, "trials", "Trial", name, spec, status)


def experiment(
    custom, namespace: str, name: str, best: str, objective: float, when: str = "Improved"
) -> dict[str, Any]:
    spec = {
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "maxTrials": 1,
        "parameters": [{"name": "lr", "type": "float", "low": 0.001, "high": 0.1}],
        "trialTemplate": TEMPLATE,
        "promote": {"modelDeployment": "iris", "when": when},
    }
    create(custom, namespace, "experiments", "Experiment", name, spec,
           {"phase": "Succeeded", "bestTrial": {"name": best, "number": 0, "objective": objective}})  # fmt: skip
    obj: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", name)
    return dict(obj)


def test_promotion_replaces_the_model_when_improved_and_records_the_experiment(
    kube_api, crds, namespace
):
    custom = client.CustomObjectsApi(kube_api)
    trial(custom, namespace, "t-a", 0.90)
    trial(custom, namespace, "t-b", 0.95)
    trial(custom, namespace, "t-c", 0.80)
    create(
        custom,
        namespace,
        b.PLURAL,
        "ModelDeployment",
        "iris",
        {"model": {"trialRef": "t-a"}, "replicas": 0},
    )
    controller = Controller(Kube(kube_api), b.ServingDefaults(image="thunderbolt-trainer:0.1.0"))
    events: list[tuple[str, str, str]] = []

    def post(type_: str, reason: str, message: str) -> None:
        events.append((type_, reason, message))

    def tick() -> dict[str, Any]:
        controller.tick("iris", namespace, post)
        obj: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, b.PLURAL, "iris")
        return dict(obj)

    tick()
    md = tick()
    assert md["status"]["currentRevision"]["trial"] == "t-a"
    assert md["status"]["currentRevision"]["objective"] == 0.90

    better = experiment(custom, namespace, "search", "t-b", 0.95)
    controller.promote(better, post, lambda target, *event: events.append(event))
    md = tick()
    assert md["spec"]["model"] == {"trialRef": "t-b"}
    assert md["metadata"]["annotations"]["thunderbolt.io/promoted-by"] == "experiment/search"
    md = tick()
    revision = md["status"]["currentRevision"]
    assert (revision["number"], revision["trial"], revision["source"]) == (
        2,
        "t-b",
        "experiment/search",
    )
    assert revision["experiment"] == "search" and revision["objective"] == 0.95
    assert [(h["number"], h["outcome"]) for h in md["status"]["history"]] == [
        (1, "Superseded"),
        (2, "Promoted"),
    ]
    assert ("Normal", "Promoted", "iris: t-b (0.95) beats serving (0.9, maximize)") in events

    worse = experiment(custom, namespace, "search-2", "t-c", 0.80)
    controller.promote(worse, post, lambda target, *event: events.append(event))
    md = tick()
    assert md["spec"]["model"] == {"trialRef": "t-b"}
    assert events[-1][1] == "PromotionSkipped" and "does not beat" in events[-1][2]

    anyway = experiment(custom, namespace, "search-3", "t-c", 0.80, when="Always")
    controller.promote(anyway, post, lambda target, *event: events.append(event))
    assert tick()["spec"]["model"] == {"trialRef": "t-c"}
