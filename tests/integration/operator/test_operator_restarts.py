"""The search survives SIGKILLs of the operator at any point: Trials are the truth."""

from __future__ import annotations

import random
import time

import optuna
import pytest
from operator_helpers import Cluster, best_of, dump, experiment, wait_for

MAX_TRIALS = 8
MIN_KILLS = 20


@pytest.fixture
def kube(kube_api, namespace, crds) -> Cluster:
    return Cluster(kube_api, namespace)


def _phases(kube: Cluster) -> list[str]:
    return [(t.get("status") or {}).get("phase", "") for t in kube.trials("chaos")]


def test_sigkilled_operator_runs_exactly_max_trials_with_one_job_each(
    kube, namespace, base_image, operator_process, tmp_path
):
    storage = f"sqlite:///{tmp_path}/study.db"
    op = operator_process(namespace)
    kube.apply(
        experiment("chaos", base_image, max_trials=MAX_TRIALS, parallel=2, sleep=2, storage=storage)
    )
    kills: list[str] = []

    def kill(point: str) -> None:
        op.kill()
        kills.append(point)

    # 1. Before (or while) the first Trials are created.
    time.sleep(0.3)
    kill("right after the Experiment was applied")
    op.start()
    # 2. As soon as a Trial exists: its Job may or may not be there yet.
    wait_for(lambda: kube.trials("chaos"), 60, "a first trial")
    kill("as soon as a trial existed")
    op.start()
    # 3. While a Trial runs; stay down until one finishes, so it is seen only on restart.
    wait_for(lambda: "Running" in _phases(kube) or kube.pods(), 60, "a running trial")
    kill("while a trial was running")
    wait_for(
        lambda: any(j.status.succeeded for j in kube.jobs()), 60, "a job to complete while down"
    )
    op.start()
    # 4. During start-up, before the operator has even reported healthy.
    op.restart(wait=False)
    time.sleep(1.0)
    kill("during start-up")
    op.start()
    # 5. Right after a Trial finished (its successor is being created).
    finished = sum(p in ("Succeeded", "Failed") for p in _phases(kube))
    if finished < MAX_TRIALS - 1:
        wait_for(
            lambda: sum(p in ("Succeeded", "Failed") for p in _phases(kube)) > finished,
            60,
            "another trial to finish",
            interval=0.1,
        )
        kill("right after a trial finished")
        op.start()
    # 6+. At random moments until MIN_KILLS; a search that ends first is extended by
    # raising maxTrials (which continues it), so every kill lands in a live search.
    rng = random.Random(7)
    max_trials = MAX_TRIALS
    while len(kills) < MIN_KILLS:
        if kube.phase("chaos") in ("Succeeded", "Failed"):
            max_trials += 2
            kube.patch_spec("chaos", {"maxTrials": max_trials})
        time.sleep(rng.uniform(0.2, 1.5))
        kill("at a random moment")
        op.start()

    exp = wait_for(
        lambda: (
            e
            if (e := kube.experiment("chaos")).get("status", {}).get("phase")
            in ("Succeeded", "Failed")
            and e["status"]["trials"]["total"] == max_trials
            else None
        ),
        240,
        f"the search to finish {max_trials} trials",
    )
    status = exp["status"]
    assert status["phase"] == "Succeeded", dump(status)

    trials = kube.trials("chaos")
    names = [t["metadata"]["name"] for t in trials]
    assert names == [f"chaos-{i:03d}" for i in range(max_trials)], names
    assert status["trials"]["succeeded"] == max_trials

    jobs = kube.jobs()
    assert sorted(j.metadata.name for j in jobs) == names
    uids = {t["metadata"]["name"]: t["metadata"]["uid"] for t in trials}
    for job in jobs:
        (owner,) = job.metadata.owner_references
        assert owner.uid == uids[job.metadata.name]
    pods_per_job: dict[str, int] = {}
    for pod in kube.pods():
        job_name = pod.metadata.labels["thunderbolt.io/trial"]
        pods_per_job[job_name] = pods_per_job.get(job_name, 0) + 1
    assert pods_per_job == {name: 1 for name in names}

    best = best_of(trials)
    assert status["bestTrial"]["name"] == best["metadata"]["name"]
    assert status["bestTrial"]["objective"] == best["status"]["objective"]

    # The RDB study: every Trial told exactly once, with the parameters the Trial ran.
    (study_name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=study_name, storage=storage)
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    numbers = sorted(t.user_attrs["thunderbolt.number"] for t in complete)
    assert numbers == list(range(max_trials)), numbers
    params = {t.user_attrs["thunderbolt.number"]: t.params for t in complete}
    for trial in trials:
        assert params[trial["spec"]["number"]] == trial["spec"]["parameters"]
    values = {t.user_attrs["thunderbolt.number"]: t.value for t in complete}
    assert all(values[t["spec"]["number"]] == t["status"]["objective"] for t in trials)
    print(f"{len(kills)} kills over {max_trials} trials:", kills)
