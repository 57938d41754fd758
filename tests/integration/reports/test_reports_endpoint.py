"""The report endpoint against real Trial objects on the real cluster.

Endpoints run as separate ``python -m thunderbolt.reports`` processes (one per simulated
operator replica); the Trials, Secrets and Events are real API objects.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from reports_cluster import Endpoint, create_experiment, create_trial, get_trial, post

from tests.fixtures.crds import crds  # noqa: F401
from thunderbolt.api.experiment import Pruner
from thunderbolt.api.trainer_config import (
    DatasetConfig,
    ObjectiveConfig,
    ReportConfig,
    TrainerConfig,
    TrainResult,
    TrialIdentity,
)
from thunderbolt.sdk.reporter import HttpReporter

pytestmark = pytest.mark.usefixtures("crds")


@pytest.fixture
def endpoints(cluster, tmp_path) -> Iterator[list[Endpoint]]:
    """Start endpoint processes on demand: ``endpoints.append(...)`` is done by ``spawn``."""
    started: list[Endpoint] = []
    yield started
    for endpoint in started:
        endpoint.stop()


def spawn(cluster, endpoints: list[Endpoint], log_dir: Path, **kwargs) -> Endpoint:
    endpoint = Endpoint(cluster.kubeconfig, cluster.context, log_dir=log_dir, **kwargs)
    endpoints.append(endpoint)
    return endpoint.start()


def epoch(step: int, value: float) -> dict:
    return {"kind": "epoch", "step": step, "metrics": {"val_accuracy": value, "loss": 1 - value}}


def snapshot(api, namespace: str, names: list[str]) -> dict[str, tuple[str, dict]]:
    out = {}
    for name in names:
        obj = get_trial(api, namespace, name)
        out[name] = (obj["metadata"]["resourceVersion"], obj.get("status") or {})
    return out


def test_bad_reports_are_rejected_and_leave_trials_unchanged(
    cluster, kube_api, namespace, endpoints, tmp_path
):
    create_experiment(kube_api, namespace, "exp")
    running = {"phase": "Running", "intermediate": [{"step": 1, "value": 0.5}, {"step": 2, "value": 0.6}]}  # fmt: skip
    a, token_a = create_trial(kube_api, namespace, "exp", 0, status=running)
    b, token_b = create_trial(kube_api, namespace, "exp", 1, status={"phase": "Running"})
    done, token_done = create_trial(
        kube_api, namespace, "exp", 2, status={"phase": "Succeeded", "objective": 0.9}
    )
    endpoint = spawn(cluster, endpoints, tmp_path)
    A, B, DONE = a["metadata"]["name"], b["metadata"]["name"], done["metadata"]["name"]
    url = endpoint.url(namespace, A)
    nan = b'{"kind":"epoch","step":3,"metrics":{"val_accuracy":NaN}}'
    inf = b'{"kind":"epoch","step":3,"metrics":{"val_accuracy":1e999}}'
    cases = [
        ("no credential", url, epoch(3, 0.7), {"token": None}, 401),
        ("malformed credential", url, epoch(3, 0.7), {"token": None, "auth": "Basic eA=="}, 401),
        ("wrong credential", url, epoch(3, 0.7), {"token": "W" * 43}, 403),
        ("credential of trial B", url, epoch(3, 0.7), {"token": token_b}, 403),
        ("unknown trial", endpoint.url(namespace, "exp-999"), epoch(3, 0.7), {"token": token_a}, 403),
        ("other namespace", endpoint.url("default", A), epoch(3, 0.7), {"token": token_a}, 403),
        ("not json", url, b"{kind: epoch", {"token": token_a}, 400),
        ("wrong content type", url, epoch(3, 0.7), {"token": token_a, "content_type": "text/plain"}, 415),
        ("oversized", url, b'{"kind":"epoch","pad":"' + b"x" * 20000 + b'"}', {"token": token_a}, 413),
        ("unknown kind", url, {"kind": "finish", "step": 3}, {"token": token_a}, 422),
        ("NaN", url, nan, {"token": token_a}, 422),
        ("infinity", url, inf, {"token": token_a}, 422),
        ("string step", url, {"kind": "epoch", "step": "3", "metrics": {"val_accuracy": 0.7}}, {"token": token_a}, 422),
        ("unknown field", url, {**epoch(3, 0.7), "phase": "Succeeded"}, {"token": token_a}, 422),
        ("missing objective metric", url, {"kind": "epoch", "step": 3, "metrics": {"loss": 0.3}}, {"token": token_a}, 422),
        ("step backwards", url, epoch(0, 0.1), {"token": token_a}, 409),
        ("same step, other value", url, epoch(2, 0.99), {"token": token_a}, 409),
        ("finished trial", endpoint.url(namespace, DONE), epoch(1, 0.5), {"token": token_done}, 409),
        ("path traversal", endpoint.base + f"/v1/namespaces/{namespace}/trials/..%2F{B}/reports", epoch(3, 0.7), {"token": token_b}, 404),
    ]  # fmt: skip
    before = snapshot(kube_api, namespace, [A, B, DONE])
    for label, target, body, kwargs, expected in cases:
        status, reply = post(target, body, **kwargs)
        assert status == expected, (label, status, reply)
        assert reply.get("error") and reply.get("message"), (label, reply)
    assert snapshot(kube_api, namespace, [A, B, DONE]) == before
    # and the same endpoint still takes a good report for A
    status, reply = post(url, epoch(3, 0.7), token=token_a)
    assert (status, reply["result"]) == (200, "accepted")
    after = get_trial(kube_api, namespace, A)["status"]["intermediate"]
    assert after[-1] == {"step": 3, "value": 0.7}


def test_reports_update_status_and_emit_events(cluster, kube_api, namespace, endpoints, tmp_path):
    create_experiment(kube_api, namespace, "exp")
    trial, token = create_trial(kube_api, namespace, "exp", 0)
    name = trial["metadata"]["name"]
    endpoint = spawn(cluster, endpoints, tmp_path)
    url = endpoint.url(namespace, name)
    assert post(url, {"kind": "start"}, token=token)[1]["result"] == "accepted"
    assert get_trial(kube_api, namespace, name)["status"]["phase"] == "Running"
    for step in range(1, 4):
        assert post(url, epoch(step, 0.5 + step / 10), token=token)[0] == 200
    stop = {"kind": "stop", "step": 3, "status": "Succeeded", "objective": 0.8}
    assert post(url, stop, token=token)[0] == 200
    assert post(url, stop, token=token)[0] == 200  # repeated: no second Event
    status = get_trial(kube_api, namespace, name)["status"]
    assert status["intermediate"] == [{"step": s, "value": 0.5 + s / 10} for s in range(1, 4)]
    core = client.CoreV1Api(kube_api)
    deadline = time.monotonic() + 20
    while True:
        items = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        ).items
        reasons = sorted(e.reason for e in items)
        if "TrainingStopped" in reasons or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert reasons == ["EpochReported", "TrainingStarted", "TrainingStopped"]
    stopped = next(e for e in items if e.reason == "TrainingStopped")
    assert "objective 0.8" in stopped.message
    assert stopped.involved_object.uid == trial["metadata"]["uid"]


WRITE_MODES = [pytest.param(0.0, id="write-through"), pytest.param(0.2, id="write-behind")]


@pytest.mark.parametrize("write_delay", WRITE_MODES)
def test_two_replicas_accept_reports_for_one_trial_without_loss_or_duplicates(
    cluster, kube_api, namespace, endpoints, tmp_path, write_delay
):
    """Every report goes to BOTH replicas at once: each value must land exactly once."""
    create_experiment(kube_api, namespace, "exp")
    trial, token = create_trial(kube_api, namespace, "exp", 0, status={"phase": "Running"})
    name = trial["metadata"]["name"]
    replicas = [
        spawn(cluster, endpoints, tmp_path, write_delay=write_delay),
        spawn(cluster, endpoints, tmp_path, write_delay=write_delay),
    ]
    results: dict[int, list[tuple[int, str]]] = {}

    def send(step: int, endpoint: Endpoint, into: list) -> None:
        status, reply = post(endpoint.url(namespace, name), epoch(step, step / 100), token=token)
        into.append((status, reply.get("result") or reply.get("error")))

    steps = range(1, 41)
    for step in steps:
        results[step] = []
        threads = [threading.Thread(target=send, args=(step, r, results[step])) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for step, answers in results.items():
        if write_delay == 0:  # written before answering: the second sees the first's write
            assert sorted(answers) == [(200, "accepted"), (200, "duplicate")], (step, answers)
        else:  # both acknowledge; the union merge at write time keeps one copy
            assert [status for status, _ in answers] == [200, 200], (step, answers)
    expected = [{"step": s, "value": s / 100} for s in steps]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        values = get_trial(kube_api, namespace, name)["status"].get("intermediate")
        if values == expected:
            break
        time.sleep(0.2)
    assert values == expected


@pytest.mark.parametrize("write_delay", WRITE_MODES)
def test_endpoint_restart_mid_reporting_loses_and_duplicates_nothing(
    cluster, kube_api, namespace, endpoints, tmp_path, write_delay
):
    """SIGKILL the endpoint while a trainer reports, restart it: the curve stays whole.

    Write-behind acknowledges before writing, so the kill loses acknowledged points in
    the endpoint; the trainer's backlog (replies carry ``storedStep``) brings them back.
    """
    create_experiment(kube_api, namespace, "exp", epochs=60)
    trial, token = create_trial(kube_api, namespace, "exp", 0, epochs=60)
    name = trial["metadata"]["name"]
    endpoint = spawn(cluster, endpoints, tmp_path, write_delay=write_delay)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    config = TrainerConfig(
        identity=TrialIdentity(namespace=namespace, experiment="exp", trial=name),
        dataset=DatasetConfig(uri="builtin://iris"),
        objective=ObjectiveConfig(metric="val_accuracy", direction="maximize"),
        report=ReportConfig(url=endpoint.base, tokenFile=str(token_file)),
    )
    # the trainer's own client, with enough patience to ride out a restart
    reporter = HttpReporter(config, timeout=2.0, attempts=40, backoff=0.1)
    reporter._sleep = lambda s: time.sleep(min(s, 0.3))
    killed = threading.Event()
    steps = list(range(1, 61))

    def train() -> None:
        reporter.start()
        for step in steps:
            reporter.epoch(step, {"val_accuracy": step / 100})
            time.sleep(0.02)
            if step == 20:
                killed.wait(30)
        reporter.stop(TrainResult(status="Succeeded", objective=0.6, epochs=60))

    trainer = threading.Thread(target=train)
    trainer.start()
    time.sleep(0.3)
    endpoint.kill()  # mid-reporting, no clean shutdown
    killed.set()
    time.sleep(1.0)  # reports fail while it is down; the trainer keeps going (retrying)
    endpoint.start()  # same port, fresh process, empty caches
    trainer.join(120)
    assert not trainer.is_alive()
    got = [p["step"] for p in get_trial(kube_api, namespace, name)["status"]["intermediate"]]
    assert got == sorted(set(got)), "no duplicates, in order"
    missing = sorted(set(steps) - set(got))
    assert len(missing) <= 1, f"lost more than the one in flight: {missing}"
    values = get_trial(kube_api, namespace, name)["status"]["intermediate"]
    assert all(p["value"] == p["step"] / 100 for p in values)


def test_median_pruner_answers_prune_from_real_trials(
    cluster, kube_api, namespace, endpoints, tmp_path
):
    create_experiment(
        kube_api, namespace, "exp", pruner=Pruner(name="median", startupTrials=3, warmupSteps=2)
    )
    curve = [{"step": s, "value": 0.5 + 0.05 * s} for s in range(1, 6)]
    for number in range(3):
        create_trial(
            kube_api, namespace, "exp", number,
            status={"phase": "Succeeded", "objective": 0.75, "intermediate": curve},
        )  # fmt: skip
    good, good_token = create_trial(kube_api, namespace, "exp", 3, status={"phase": "Running"})
    bad, bad_token = create_trial(kube_api, namespace, "exp", 4, status={"phase": "Running"})
    endpoint = spawn(cluster, endpoints, tmp_path)
    good_url = endpoint.url(namespace, good["metadata"]["name"])
    bad_url = endpoint.url(namespace, bad["metadata"]["name"])
    answers = {"good": [], "bad": []}
    for step in range(1, 5):
        answers["good"].append(post(good_url, epoch(step, 0.56 + 0.05 * step), token=good_token)[1]["prune"])  # fmt: skip
        answers["bad"].append(post(bad_url, epoch(step, 0.1), token=bad_token)[1]["prune"])
    assert answers["good"] == [False] * 4
    assert answers["bad"] == [False, True, True, True]  # steps 0-1 are warm-up
    # a repeated report gets the same answer (the decision is derived, not remembered)
    assert post(bad_url, epoch(4, 0.1), token=bad_token)[1] == {
        "result": "duplicate", "kind": "epoch", "step": 4, "prune": True, "storedStep": 4,
    }  # fmt: skip
    json.dumps(answers)
