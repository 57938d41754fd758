"""examples/iris-accurate-and-fast.yaml end to end: several objectives on the cluster.

The real trainer image reports each model's serving cost (onnxruntime latency, size,
parameters) as metrics; NSGA-II trades val_accuracy against latency; the operator writes
the Pareto front to status and picks the best Trial by promote.select; the CLI
leaderboard marks the front. The operator is SIGKILLed once the first Trials finished,
so the multi-objective study is rebuilt from the Trials mid-search.
"""

from __future__ import annotations

import pathlib

import yaml
from operator_helpers import Cluster, dump, wait_for

from thunderbolt import objectives
from thunderbolt.api.experiment import parse_spec
from thunderbolt.cli import main

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_multi_objective_example_runs_with_its_pareto_front_in_status_and_cli(
    kube_api, namespace, crds, operator_process, trainer_image, cluster, capsys
):
    doc = yaml.safe_load((REPO / "examples" / "iris-accurate-and-fast.yaml").read_text())
    template = doc["spec"]["trialTemplate"]
    template.update(image=trainer_image, imagePullPolicy="Never", backoffLimit=0)
    kube = Cluster(kube_api, namespace)
    op = operator_process(namespace)
    kube.apply(doc)
    name = doc["metadata"]["name"]

    def two_finished():
        done = [t for t in kube.trials(name) if t.get("status", {}).get("phase") == "Succeeded"]
        return done if len(done) >= 2 else None

    wait_for(two_finished, timeout=600, what="two finished trials")
    op.restart()  # SIGKILL: the next reconcile rebuilds the study from the Trials

    exp = kube.wait_phase(name, {"Succeeded", "Failed"}, timeout=900)
    trials = kube.trials(name)
    status = exp["status"]
    assert status["phase"] == "Succeeded", dump([status, *[t.get("status") for t in trials]])
    assert sorted(t["spec"]["number"] for t in trials) == list(range(8))  # none twice
    for trial in trials:
        metrics = trial["status"]["metrics"]
        assert trial["status"]["phase"] == "Succeeded", dump(trial["status"])
        assert metrics["latency_p50_ms_batch32"] > 0 and metrics["model_size_bytes"] > 0
        assert metrics["parameter_count"] >= 4 * 8 + 8 + 8 * 3 + 3, dump(metrics)

    spec = parse_spec(doc["spec"])
    front = objectives.pareto_front(trials, spec.goals)
    assert front and status["paretoFrontSize"] == len(front)
    assert [s["name"] for s in status["paretoFront"]] == [t["metadata"]["name"] for t, _ in front]
    for summary, (_, values) in zip(status["paretoFront"], front, strict=True):
        assert summary["values"] == dict(
            zip(["val_accuracy", "latency_p50_ms_batch32"], values, strict=True)
        )
    chosen = objectives.choose(trials, spec.goals, spec.promote.select if spec.promote else None)
    assert (status.get("bestTrial") or {}).get("name") == (
        chosen["metadata"]["name"] if chosen else None
    ), dump(status)

    code = main(
        ["leaderboard", name, "--front", "--kubeconfig", str(cluster.kubeconfig),
         "--context", cluster.context, "-n", namespace]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[2:5] == ["FRONT", "VAL_ACCURACY", "LATENCY_P50_MS_BATCH32"]
    assert [line.split()[1] for line in lines[1 : 1 + len(front)]] == [
        t["metadata"]["name"] for t, _ in front
    ]
    assert f"{len(front)} trial(s) on the Pareto front" in out
