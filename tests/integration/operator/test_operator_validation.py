"""Data and model checks on the cluster, with the real trainer image.

A dataset whose every row appears twice leaks across the train/validation split: its
Trial fails early with reason DatasetError and exactly one ``DatasetError`` Event (also
after the operator restarts). A healthy Experiment gets ``status.validation``, the
summary across its Trials, matching what ``thunderbolt validate --experiment`` computes.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from operator_helpers import GROUP, VERSION, Cluster, dump, wait_for

from thunderbolt.cli import main
from thunderbolt.cli import validate as cli


def _leaky_csv() -> bytes:
    from sklearn import datasets

    frame = datasets.load_iris(as_frame=True).frame
    out = io.StringIO()
    frame.loc[frame.index.repeat(2)].to_csv(out, index=False)  # every row twice
    return out.getvalue().encode()


@pytest.fixture
def leaky_url(host_ip: str) -> Iterator[str]:
    body = _leaky_csv()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host_ip, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host_ip}:{server.server_address[1]}/leaky.csv"
    finally:
        server.shutdown()
        server.server_close()


def _experiment(name: str, image: str, uri: str, trials: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "algorithm": {"name": "random", "seed": 7},
            "maxTrials": trials,
            "parallelTrials": trials,
            "maxFailedTrials": 0,
            "parameters": [
                {"name": "learning_rate", "type": "float", "low": 0.005, "high": 0.05},
            ],
            "trialTemplate": {
                "image": image,
                "imagePullPolicy": "Never",
                "dataset": {"uri": uri, "target": "target"},
                "epochs": 3,
                "batchSize": 16,
                "resources": {"cpu": "500m", "memory": "1Gi"},
                "backoffLimit": 0,
                "activeDeadlineSeconds": 400,
            },
        },
    }


def _events(kube: Cluster, trial: str, reason: str) -> list[Any]:
    return [e for e in kube.events(trial) if e.reason == reason]


def test_dataset_error_event_and_experiment_summary(
    kube_api, cluster, namespace, crds, operator_process, trainer_image, leaky_url, capsys
):
    kube = Cluster(kube_api, namespace)
    op = operator_process(namespace)
    kube.apply(_experiment("leaky", trainer_image, leaky_url, 1))
    kube.apply(_experiment("healthy", trainer_image, "builtin://iris", 2))

    leaky = kube.wait_phase("leaky", {"Succeeded", "Failed"}, timeout=420)
    [trial] = kube.trials("leaky")
    status = trial["status"]
    assert status["phase"] == "Failed" and status["reason"] == "DatasetError", dump(status)
    assert status["validation"]["findings"][0]["kind"] == "split_leakage", dump(status)
    name = trial["metadata"]["name"]
    events = wait_for(lambda: _events(kube, name, "DatasetError"), 30, "the DatasetError Event")
    assert len(events) == 1 and events[0].type == "Warning"
    assert events[0].message.startswith("split_leakage: "), events[0].message
    print(f"event {events[0].type} {events[0].reason}: {events[0].message}")
    marked = wait_for(
        lambda: kube.trials("leaky")[0]["status"].get("validationEvent"), 30, "the status mark"
    )
    assert marked == events[0].metadata.name
    assert leaky["status"]["phase"] == "Failed"

    healthy = kube.wait_phase("healthy", {"Succeeded", "Failed"}, timeout=420)
    trials = kube.trials("healthy")
    assert healthy["status"]["phase"] == "Succeeded", dump([t["status"] for t in trials])
    summary = wait_for(lambda: kube.experiment("healthy")["status"].get("validation"), 30,
                       "status.validation of the Experiment")  # fmt: skip
    counts = [summary[k] for k in ("passed", "warned", "failed", "unchecked")]
    assert sum(counts) == 2 and summary["unchecked"] == 0, dump(summary)
    verdicts = [t["status"]["validation"]["verdict"] for t in trials]
    assert summary["passed"] == verdicts.count("pass"), dump([summary, verdicts])
    shown = cli.experiment_summary(kube.experiment("healthy"), trials)
    assert {k: v for k, v in shown.items() if k not in ("experiment", "trials")} == summary
    where = ["--kubeconfig", str(cluster.kubeconfig), "--context", cluster.context,
             "-n", namespace]  # fmt: skip
    assert main(["describe", "experiment", "healthy", *where]) == 0
    described = capsys.readouterr().out
    print(described)  # the docs' example
    assert "Validation:" in described and f"passed {summary['passed']}," in described

    # a restarted operator resumes the finished Trials: no second Event, none missing
    reasons = {"warn": "ValidationWarned", "fail": "ValidationFailed"}
    due = [
        (t["metadata"]["name"], reasons[v])
        for t, v in zip(trials, verdicts, strict=True)
        if v in reasons
    ]
    for trial_name, reason in due:
        wait_for(lambda: _events(kube, trial_name, reason), 30, f"the {reason} Event")  # noqa: B023
    op.restart()
    time.sleep(5)  # its resume handlers have seen every finished Trial by now
    assert len(_events(kube, name, "DatasetError")) == 1
    for t in trials:
        posted = [e for e in kube.events(t["metadata"]["name"]) if e.reason in reasons.values()]
        assert len(posted) == sum(n == t["metadata"]["name"] for n, _ in due), dump(
            [t["status"]["validation"], [e.reason for e in posted]]
        )
