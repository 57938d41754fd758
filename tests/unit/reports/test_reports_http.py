"""The aiohttp endpoint and the trainer's HttpReporter, over real loopback sockets."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from reports_world import NS, RunningEndpoint, World, experiment, trial

from thunderbolt.api.report_schema import report_url
from thunderbolt.api.trainer_config import (
    DatasetConfig,
    ObjectiveConfig,
    ReportConfig,
    TrainerConfig,
    TrainResult,
    TrialIdentity,
)
from thunderbolt.reports.service import ServiceConfig
from thunderbolt.sdk.callbacks import make_reporter
from thunderbolt.sdk.reporter import HttpReporter


@pytest.fixture
def world() -> World:
    w = World(config=ServiceConfig(rate=1000, burst=1000))
    w.add_experiment(experiment(pruner={"name": "median", "startupTrials": 3, "warmupSteps": 2}))
    for n in range(3):
        curve = [(s, 0.5 + 0.05 * s) for s in range(1, 6)]
        w.add_trial(
            trial(f"exp-{n}", number=n, phase="Succeeded", intermediate=curve, objective=0.75)
        )
    w.add_trial(trial("exp-3", number=3))
    return w


@pytest.fixture
def endpoint(world: World) -> Iterator[RunningEndpoint]:
    running = RunningEndpoint(world)
    yield running
    running.close()


def config_for(base: str, token_file: Path, trial_name: str = "exp-3") -> TrainerConfig:
    return TrainerConfig(
        identity=TrialIdentity(namespace=NS, experiment="exp", trial=trial_name, number=3),
        dataset=DatasetConfig(uri="builtin://iris"),
        objective=ObjectiveConfig(metric="val_accuracy", direction="maximize"),
        report=ReportConfig(url=base, tokenFile=str(token_file)),
    )


def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_reporter_drives_a_trial_and_gets_a_prune_answer(world, endpoint, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(world.tokens["exp-3"] + "\n")
    reporter = make_reporter(config_for(endpoint.base, token_file))
    assert isinstance(reporter, HttpReporter)
    reporter.start()
    assert world.get("exp-3")["status"]["phase"] == "Running"
    assert reporter.epoch(1, {"val_accuracy": 0.02, "loss": 0.1}) is False  # warm-up
    assert reporter.epoch(2, {"val_accuracy": 0.01, "loss": float("nan")}) is True  # clearly worse
    reporter.stop(TrainResult(status="Pruned", reason="Pruned", objective=0.01, epochs=2))
    points = world.get("exp-3")["status"]["intermediate"]
    assert points == [{"step": 1, "value": 0.02}, {"step": 2, "value": 0.01}]


def test_http_errors_are_json_with_stable_codes(world, endpoint):
    url = endpoint.base + f"/v1/namespaces/{NS}/trials/exp-3/reports"
    auth = {"Authorization": f"Bearer {world.tokens['exp-3']}", "Content-Type": "application/json"}
    status, reply = post(url, b"x" * 20000, auth)
    assert (status, reply["error"]) == (413, "too_large")
    status, reply = post(endpoint.base + "/v1/nowhere", b"{}", auth)
    assert (status, reply["error"]) == (404, "not_found")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=5)  # GET
    assert info.value.code == 405
    status, reply = post(url, json.dumps({"kind": "start"}).encode(), auth)
    assert (status, reply["result"]) == (200, "accepted")
    with urllib.request.urlopen(endpoint.base + "/healthz", timeout=5) as response:
        assert response.status == 200


def test_reporter_survives_an_unreachable_endpoint_quickly(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token_file = tmp_path / "token"
    token_file.write_text("A" * 43)
    sleeps: list[float] = []
    reporter = HttpReporter(config_for(f"http://127.0.0.1:{port}", token_file), sleep=sleeps.append)
    began = time.monotonic()
    reporter.start()
    for step in range(1, 11):
        assert reporter.epoch(step, {"val_accuracy": 0.5}) is False
    reporter.stop(TrainResult(status="Succeeded", objective=0.5))
    assert time.monotonic() - began < 5
    # three reports retried (2 back-offs each), then one attempt per report
    assert len(sleeps) == 6


def test_reporter_times_out_on_a_silent_endpoint(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections, never answers
    token_file = tmp_path / "token"
    token_file.write_text("A" * 43)
    try:
        reporter = HttpReporter(
            config_for(f"http://127.0.0.1:{silent.getsockname()[1]}", token_file),
            timeout=0.3,
            attempts=2,
            sleep=lambda _s: None,
        )
        began = time.monotonic()
        assert reporter.epoch(1, {"val_accuracy": 0.5}) is False
        assert time.monotonic() - began < 2
    finally:
        silent.close()


def test_reporter_without_token_file_reports_nothing_and_never_raises(tmp_path, endpoint):
    reporter = HttpReporter(config_for(endpoint.base, tmp_path / "missing"))
    reporter.start()
    assert reporter.epoch(1, {"val_accuracy": 0.5}) is False
    reporter.stop(TrainResult(status="Failed", reason="Diverged"))


def test_rejected_reports_are_not_retried(world, endpoint, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(world.tokens["exp-3"])
    sleeps: list[float] = []
    reporter = HttpReporter(config_for(endpoint.base, token_file), sleep=sleeps.append)
    assert reporter.epoch(5, {"val_accuracy": 0.8}) is False
    assert reporter.epoch(4, {"val_accuracy": 0.8}) is False  # 409: older step
    assert sleeps == []


def test_report_url_accepts_base_or_full_url():
    assert (
        report_url("http://op:8081/", "ns", "t")
        == "http://op:8081/v1/namespaces/ns/trials/t/reports"
    )
    full = "http://op:8081/v1/namespaces/ns/trials/t/reports"
    assert report_url(full, "x", "y") == full


def test_reporter_resends_what_a_crashed_write_behind_replica_acknowledged(tmp_path):
    w = World(config=ServiceConfig(rate=1000, burst=1000, write_delay=3600))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-3", number=3))
    a = RunningEndpoint(w)  # acknowledges, would write an hour later: it "crashes" before that
    b = RunningEndpoint(w)
    token_file = tmp_path / "token"
    token_file.write_text(w.tokens["exp-3"])
    reporter = HttpReporter(config_for(a.base, token_file))
    try:
        reporter.start()
        for step in range(1, 6):
            reporter.epoch(step, {"val_accuracy": step / 10})
        assert "intermediate" not in w.get("exp-3")["status"]
        reporter.url = report_url(b.base, NS, "exp-3")  # the trainer's retry lands on B
        reporter.epoch(6, {"val_accuracy": 0.6})
        reporter.stop(TrainResult(status="Succeeded", objective=0.6, epochs=6))
        points = w.get("exp-3")["status"]["intermediate"]
        assert points == [{"step": s, "value": s / 10} for s in range(1, 7)]
        assert reporter._unstored == {}
    finally:
        b.close()
