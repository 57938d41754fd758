"""Spec validation, continuing a finished search, and garbage collection on delete."""

from __future__ import annotations

import pytest
from kubernetes import client
from operator_helpers import Cluster, dump, experiment, service_account_ready, wait_for


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def test_invalid_spec_fails_with_a_condition_and_creates_nothing(
    kube, namespace, base_image, operator_process, kubectl
):
    operator_process(namespace)
    body = experiment("bad", base_image)
    # low > high: 1.20 has no CEL, so only the operator can catch it.
    body["spec"]["parameters"][0].update(low=0.9, high=0.1)
    kube.apply(body)
    status = kube.wait_phase("bad", {"Failed"}, timeout=60)["status"]
    assert status["reason"] == "InvalidSpec"
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    assert "spec.parameters[0]" in failed["message"] and "greater than high" in failed["message"]
    waited = kubectl("wait", "-n", namespace, "--for=condition=Failed", "--timeout=5s", "tbexp/bad")
    assert waited.returncode == 0, waited.stderr
    assert kube.trials("bad") == [] and kube.jobs() == []
    assert "InvalidSpec" in [e.reason for e in kube.events("bad")]

    # Fixing the spec starts the search.
    kube.patch_spec("bad", {"parameters": experiment("bad", base_image)["spec"]["parameters"]})
    wait_for(lambda: kube.trials("bad"), 60, "a trial once the spec is fixed")


def test_raising_max_trials_continues_a_finished_search(
    kube, namespace, base_image, operator_process
):
    operator_process(namespace)
    kube.apply(experiment("more", base_image, max_trials=2, parallel=2))
    kube.wait_phase("more", {"Succeeded"}, timeout=120)
    kube.patch_spec("more", {"maxTrials": 4})
    wait_for(lambda: kube.phase("more") == "Running", 30, "phase back to Running")
    status = kube.wait_phase("more", {"Succeeded"}, timeout=120)["status"]
    assert status["trials"]["total"] == 4 and status["progress"] == "4/4", dump(status)
    assert [t["spec"]["number"] for t in kube.trials("more")] == [0, 1, 2, 3]


def test_deleting_an_experiment_removes_its_trials_jobs_and_pods(
    kube, namespace, base_image, operator_process
):
    operator_process(namespace)
    kube.apply(experiment("gone", base_image, max_trials=4, parallel=2, sleep=30))
    wait_for(lambda: len(kube.jobs()) == 2, 60, "two jobs")
    wait_for(lambda: len(kube.pods()) == 2, 60, "two pods")
    kube.delete_experiment("gone")

    def all_gone() -> bool:
        configmaps = [
            c
            for c in kube.core.list_namespaced_config_map(namespace).items
            if (c.metadata.labels or {}).get("thunderbolt.io/experiment") == "gone"
        ]
        return not kube.trials("gone") and not kube.jobs() and not kube.pods() and not configmaps

    wait_for(all_gone, 120, "garbage collection of trials, jobs, pods and configmaps")


def test_operators_side_by_side_each_handle_only_their_namespace(
    kube, kube_api, namespace, base_image, operator_process
):
    core = client.CoreV1Api(kube_api)
    other = f"{namespace[:50]}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        wait_for(lambda: service_account_ready(core, other), 60, f"ServiceAccount in {other}")
        first = operator_process(namespace)
        second = operator_process(other)
        assert len({first.metrics_port, second.metrics_port, first.health_port}) == 3
        kube_b = Cluster(kube_api, other)
        kube.apply(experiment("side", base_image, max_trials=1, parallel=1))
        kube_b.apply(experiment("side", base_image, max_trials=1, parallel=1))
        for k in (kube, kube_b):
            assert k.wait_phase("side", {"Succeeded"}, timeout=120)["status"]["progress"] == "1/1"
        assert other not in first.log_text()
        assert namespace not in second.log_text().replace(other, "")
    finally:
        core.delete_namespace(other, propagation_policy="Background")
