"""spec.onComplete: Trials still running when the goal is reached are stopped by default."""

from __future__ import annotations

import pytest
from operator_helpers import STANDIN, Cluster, dump, experiment, wait_for

# Trial 000 finishes at once and reaches the goal; trial 001 would run for 5 minutes.
NAP = (
    "import os\n"
    "os.environ['TRIAL_SLEEP'] = '1' if os.environ['THUNDERBOLT_TRIAL'].endswith('-000')"
    " else '300'\n"
)


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def test_goal_reached_stops_the_trial_still_running_and_deletes_its_job(
    kube, namespace, base_image, operator_process
):
    operator_process(namespace)
    body = experiment("stop", base_image, max_trials=4, parallel=2, goal=0.5)
    body["spec"]["trialTemplate"]["command"] = ["python3", "-c", NAP + STANDIN]
    kube.apply(body)
    wait_for(lambda: len(kube.jobs()) == 2, 60, "two jobs")
    status = kube.wait_phase("stop", {"Succeeded", "Failed"}, timeout=180)["status"]
    assert status["reason"] == "GoalReached", dump(status)

    def stopped() -> dict | None:
        trials = kube.trials("stop")
        late = [t for t in trials if t["spec"]["number"] == 1]
        return late[0] if late and late[0].get("status", {}).get("phase") == "Pruned" else None

    late = wait_for(stopped, 30, "trial stop-001 stopped")
    assert late["status"]["reason"] == "ExperimentComplete", dump(late["status"])
    assert "GoalReached" in late["status"]["message"]
    assert late["status"]["completionTime"]
    wait_for(lambda: "stop-001" not in [j.metadata.name for j in kube.jobs()], 60, "its Job gone")
    trials = kube.trials("stop")
    assert [t["spec"]["number"] for t in trials] == [0, 1], "nothing new started"
    assert trials[0]["status"]["phase"] == "Succeeded"
    counts = wait_for(
        lambda: (c := kube.experiment("stop")["status"]["trials"])["pruned"] == 1 and c,
        30,
        "counts",
    )
    assert counts["running"] == 0 and counts["pending"] == 0 and counts["succeeded"] == 1
    assert kube.phase("stop") == "Succeeded"
    assert "TrialPruned" in [e.reason for e in kube.events("stop-001")]
