"""An Experiment on the real cluster: Trials, Jobs, pods, status, events, metrics."""

from __future__ import annotations

import pytest
from operator_helpers import Cluster, best_of, dump, experiment, wait_for


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def test_search_with_parallel_trials_succeeds_and_reports_the_best(
    kube, namespace, base_image, operator_process, kubectl
):
    op = operator_process(namespace)
    kube.apply(experiment("search", base_image, max_trials=6, parallel=2))

    exp = kube.wait_phase("search", {"Succeeded", "Failed"}, timeout=240)
    status = exp["status"]
    assert status["phase"] == "Succeeded", dump(status)
    assert status["reason"] == "MaxTrialsReached"
    assert status["progress"] == "6/6"
    assert status["trials"]["total"] == 6 and status["trials"]["succeeded"] == 6
    assert status["observedGeneration"] == exp["metadata"]["generation"]
    waited = kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "--timeout=5s", "tbexp/search"
    )
    assert waited.returncode == 0, waited.stderr

    trials = kube.trials("search")
    assert [t["metadata"]["name"] for t in trials] == [f"search-{i:03d}" for i in range(6)]
    best = best_of(trials)
    assert status["bestTrial"]["name"] == best["metadata"]["name"]
    assert status["bestTrial"]["objective"] == best["status"]["objective"]
    assert len(status["leaderboard"]) == 5
    objectives = [e["objective"] for e in status["leaderboard"]]
    assert objectives == sorted(objectives, reverse=True)

    for trial in trials:
        s = trial["status"]
        x, sn = trial["spec"]["parameters"]["x"], trial["spec"]["parameters"]["spectral_norm"]
        assert s["objective"] == pytest.approx(1.0 - (x - 0.3) ** 2 + (0.05 if sn else 0.0))
        assert s["metrics"]["val_loss"] == pytest.approx(1.0 - s["objective"])
        assert s["durationSeconds"] >= 1.0 and s["gpuSeconds"] == 0.0
        labels = trial["metadata"]["labels"]
        assert labels["thunderbolt.io/param.spectral_norm"] == str(sn).lower()
        assert trial["metadata"]["ownerReferences"][0]["uid"] == exp["metadata"]["uid"]

    jobs = kube.jobs()
    assert sorted(j.metadata.name for j in jobs) == [t["metadata"]["name"] for t in trials]
    for job in jobs:
        assert job.metadata.owner_references[0].kind == "Trial"
        assert job.status.succeeded == 1
    nodes = {n.metadata.name for n in kube.core.list_node().items}
    pods = kube.pods()
    assert len(pods) == 6
    assert all(p.spec.node_name in nodes for p in pods)
    assert all(p.spec.security_context.run_as_non_root for p in pods)

    by_label = kube.custom.list_namespaced_custom_object(
        "thunderbolt.io",
        "v1alpha1",
        namespace,
        "trials",
        label_selector="thunderbolt.io/param.spectral_norm=true",
    )["items"]
    assert {t["metadata"]["name"] for t in by_label} == {
        t["metadata"]["name"] for t in trials if t["spec"]["parameters"]["spectral_norm"]
    }

    reasons = [e.reason for e in kube.events("search")]
    assert reasons.count("TrialCreated") == 6
    assert reasons.count("TrialSucceeded") == 6
    assert "ExperimentSucceeded" in reasons

    def metric_settled() -> float | None:
        value = op.metric("thunderbolt_trials", experiment="search", phase="succeeded")
        return value if value == 6.0 else None

    wait_for(metric_settled, 15, "thunderbolt_trials{phase=succeeded} == 6")
    assert (op.metric("thunderbolt_trials_created_total", experiment="search") or 0) >= 6
    assert op.metric("thunderbolt_suggestion_duration_seconds_count", sampler="tpe") == 6


def test_goal_reached_ends_the_search_early(kube, namespace, base_image, operator_process):
    operator_process(namespace)
    kube.apply(experiment("goal", base_image, max_trials=12, parallel=1, goal=0.5))
    status = kube.wait_phase("goal", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "GoalReached"), dump(status)
    assert status["trials"]["total"] < 12
    assert status["bestTrial"]["objective"] >= 0.5


def test_failure_budget_fails_the_experiment_with_a_reason(
    kube, namespace, base_image, operator_process
):
    operator_process(namespace)
    kube.apply(
        experiment("budget", base_image, max_trials=6, parallel=2, max_failed=1, mode=["fail"])
    )
    status = kube.wait_phase("budget", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "FailureBudgetExceeded"), dump(status)
    failed = {c["type"]: c for c in status["conditions"]}["Failed"]
    assert failed["status"] == "True" and "maxFailedTrials=1" in failed["message"]
    trial = kube.trials("budget")[0]
    assert trial["status"]["reason"] == "Error"
    assert "exit code 3" in trial["status"]["message"]
    assert "boom: failing on purpose" in trial["status"]["message"]


def test_oom_killed_and_diverged_trials_say_why(kube, namespace, base_image, operator_process):
    operator_process(namespace)
    kube.apply(experiment("oom", base_image, max_trials=1, parallel=1, mode=["oom"]))
    kube.apply(experiment("diverge", base_image, max_trials=1, parallel=1, mode=["diverge"]))

    def finished(name: str):
        trials = kube.trials(name)
        if trials and (trials[0].get("status") or {}).get("phase") in ("Failed", "Succeeded"):
            return trials[0]
        return None

    oom = wait_for(lambda: finished("oom"), 180, "the OOM trial to finish")
    assert (oom["status"]["phase"], oom["status"]["reason"]) == ("Failed", "OOMKilled"), dump(oom)
    diverged = wait_for(lambda: finished("diverge"), 180, "the diverging trial to finish")
    assert diverged["status"]["reason"] == "Diverged"
    assert diverged["status"]["message"] == "loss is nan at epoch 2"
    assert (
        kube.wait_phase("oom", {"Failed"}, timeout=60)["status"]["reason"] == "NoSuccessfulTrials"
    )
