"""The controller's own bookkeeping (no API calls)."""

from __future__ import annotations

import time

from thunderbolt.deploy import builders as b
from thunderbolt.deploy.kube import Kube
from thunderbolt.deploy.reconcile import FORGET_AFTER_S, Controller, at_rest, drop_empty


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


def body(
    generation=2, observed=2, phase="Available", canary=None, outcomes=("Promoted",), poll=None
):
    model = (
        {"mlflowModel": {"name": "m", "alias": "a", "pollSeconds": poll}}
        if poll
        else {"trialRef": "t"}
    )
    status = {
        "phase": phase,
        "observedGeneration": observed,
        "history": [{"outcome": o} for o in outcomes],
    }
    if canary:
        status["canary"] = canary
    return {
        "metadata": {"uid": "u1", "generation": generation},
        "spec": {"model": model},
        "status": status,
    }


def test_at_rest_only_without_rollout_canary_or_unobserved_spec():
    assert at_rest(body())
    assert at_rest(body(phase="Degraded", outcomes=("Promoted", "RolledBack")))
    assert not at_rest(body(observed=1))  # a spec edit not seen yet
    assert not at_rest(body(canary={"revision": 2, "weight": 10, "step": 0}))
    assert not at_rest(body(outcomes=("Promoted", "Active")))
    assert not at_rest(body(phase="Progressing"))
    assert not at_rest({"metadata": {"generation": 1}})


def test_a_deployment_at_rest_is_ticked_rarely_but_alias_polls_stay_on_time():
    controller = Controller(Kube(), b.ServingDefaults(image="img"))
    assert controller.due(body())  # never ticked
    controller.state("u1").last_tick = time.monotonic()
    assert not controller.due(body())
    assert controller.due(body(observed=1))
    controller.state("u1").resolved_at = time.monotonic() - 10
    assert controller.due(body(poll=5)) and not controller.due(body(poll=60))


def test_a_refused_child_stops_retries_until_the_spec_changes():
    from thunderbolt.deploy.reconcile import CHILD_REFUSED, refused_for_good

    refused = {
        "metadata": {"generation": 3},
        "status": {"phase": "Degraded", "reason": CHILD_REFUSED, "observedGeneration": 3},
    }
    assert refused_for_good(refused)
    edited = {**refused, "metadata": {"generation": 4}}
    assert not refused_for_good(edited)
    other = {**refused, "status": {**refused["status"], "reason": "SourceNotReady"}}
    assert not refused_for_good(other)
