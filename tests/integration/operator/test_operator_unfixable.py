"""Trials that can never run fail once, with a reason, instead of being retried forever.

Both cases are Trials a user created by hand (as `kubectl apply` of a Trial allows): one
whose spec passes the 1.20 API server (no CEL) but not the operator's model, and one whose
Job the API server refuses (a 70-character name cannot be a pod's job-name label).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from operator_helpers import GROUP, VERSION, Cluster, experiment, wait_for


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def _trial(name: str, image: str, **template_changes: Any) -> dict[str, Any]:
    template = copy.deepcopy(experiment("unused", image)["spec"]["trialTemplate"])
    template.update(template_changes)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trial",
        "metadata": {"name": name},
        "spec": {
            "experiment": "by-hand",
            "number": 0,
            "parameters": {"x": 0.5},
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "template": template,
        },
    }


def _final(kube: Cluster, name: str) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        trial = kube.custom.get_namespaced_custom_object(GROUP, VERSION, kube.ns, "trials", name)
        return trial if (trial.get("status") or {}).get("phase") == "Failed" else None

    return wait_for(failed, 60, f"trial {name} Failed")


@pytest.mark.parametrize(
    ("name", "changes", "reason", "says"),
    [
        ("t" * 70, {}, "InvalidJobSpec", "must be no more than 63 characters"),
        ("bad-selector", {"nodeSelector": {"bad key!": "x"}}, "InvalidSpec", "nodeSelector"),
    ],
    ids=["job-refused", "spec-invalid"],
)
def test_trial_that_cannot_run_fails_once_with_a_reason(
    kube, namespace, base_image, operator_process, name, changes, reason, says
):
    op = operator_process(namespace)
    kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials", _trial(name, base_image, **changes)
    )

    status = _final(kube, name)["status"]
    assert status["reason"] == reason, status
    assert says in status["message"], status["message"]
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", reason)
    assert kube.jobs() == []

    # Final means final: no retries keep hammering the API server afterwards.
    time.sleep(8)
    tries = op.log_text().count(f"trial {namespace}/{name} cannot run")
    assert tries == 1, op.log_text()[-3000:]
    events = [e.reason for e in kube.events(name)]
    assert events.count("TrialFailed") == 1, events
