"""The controller's own bookkeeping (no API calls)."""

from __future__ import annotations

from thunderbolt.deploy import builders as b
from thunderbolt.deploy.kube import Kube
from thunderbolt.deploy.reconcile import FORGET_AFTER_S, Controller, drop_empty


def test_empty_strings_are_left_out_of_the_status_at_every_depth():
    status = {
        "message": "",
        "phase": "Available",
        "conditions": [{"type": "Degraded", "message": ""}],
    }
    assert drop_empty(status) == {"phase": "Available", "conditions": [{"type": "Degraded"}]}


def test_caches_of_objects_not_seen_for_a_while_are_dropped():
    controller = Controller(Kube(), b.ServingDefaults(image="img"))
    for i in range(70):
        controller.state(f"uid-{i}").seen -= FORGET_AFTER_S + 1
    kept = controller.state("uid-1")
    controller.state("fresh")
    assert "fresh" in controller.states and "uid-2" not in controller.states
    assert controller.states.get("uid-1") is kept
