"""ReportService over a MemoryStore: every bad report is rejected and changes nothing."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from reports_world import NS, World, epoch, experiment, run, trial

from thunderbolt.api.report_schema import MAX_BODY_BYTES
from thunderbolt.reports.service import ServiceConfig


@pytest.fixture
def world() -> World:
    w = World()
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0", number=0, phase="Running", intermediate=[(1, 0.5), (2, 0.6)]))
    w.add_trial(trial("exp-1", number=1, phase="Running"))
    w.add_trial(trial("exp-done", number=2, phase="Succeeded", objective=0.9))
    w.add_trial(trial("exp-nosecret", number=3, phase="Running"), with_secret=False)
    return w


def _huge() -> bytes:
    metrics = {f"m{i}": 1.0 for i in range(60)}
    body = {"kind": "epoch", "step": 3, "metrics": metrics, "pad": "x" * MAX_BODY_BYTES}
    return json.dumps(body).encode()


# (id, trial, body, kwargs, expected status, expected error code)
BAD_REPORTS = [
    ("missing-token", "exp-0", epoch(3, 0.7), {"auth": ""}, 401, "unauthenticated"),
    ("not-bearer", "exp-0", epoch(3, 0.7), {"auth": "Basic dXNlcjpwYXNz"}, 401, "unauthenticated"),
    ("wrong-token", "exp-0", epoch(3, 0.7), {"token": "A" * 43}, 403, "forbidden"),
    ("unknown-trial", "exp-nope", epoch(3, 0.7), {"token": "A" * 43}, 403, "forbidden"),
    ("trial-without-secret", "exp-nosecret", epoch(1, 0.7), {}, 403, "forbidden"),
    ("bad-namespace", "exp-0", epoch(3, 0.7), {"namespace": "Bad_NS"}, 404, "not_found"),
    ("not-json", "exp-0", b"{kind: epoch", {}, 400, "invalid_json"),
    (
        "wrong-content-type",
        "exp-0",
        epoch(3, 0.7),
        {"content_type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    (
        "no-content-type",
        "exp-0",
        epoch(3, 0.7),
        {"content_type": None},
        415,
        "unsupported_media_type",
    ),
    ("oversized", "exp-0", _huge(), {}, 413, "too_large"),
    ("unknown-kind", "exp-0", {"kind": "explode", "step": 3}, {}, 422, "invalid_report"),
    ("no-kind", "exp-0", {"step": 3, "metrics": {"val_accuracy": 0.7}}, {}, 422, "invalid_report"),
    ("not-an-object", "exp-0", [1, 2, 3], {}, 422, "invalid_report"),
    (
        "nan-metric",
        "exp-0",
        b'{"kind":"epoch","step":3,"metrics":{"val_accuracy":NaN}}',
        {},
        422,
        "invalid_report",
    ),
    (
        "inf-metric",
        "exp-0",
        b'{"kind":"epoch","step":3,"metrics":{"val_accuracy":1e999}}',
        {},
        422,
        "invalid_report",
    ),
    (
        "infinity-value",
        "exp-0",
        b'{"kind":"epoch","step":3,"metrics":{"a":1},"value":-Infinity}',
        {},
        422,
        "invalid_report",
    ),
    (
        "string-step",
        "exp-0",
        {"kind": "epoch", "step": "3", "metrics": {"val_accuracy": 0.7}},
        {},
        422,
        "invalid_report",
    ),
    (
        "float-step",
        "exp-0",
        {"kind": "epoch", "step": 3.0, "metrics": {"val_accuracy": 0.7}},
        {},
        422,
        "invalid_report",
    ),
    (
        "bool-step",
        "exp-0",
        {"kind": "epoch", "step": True, "metrics": {"val_accuracy": 0.7}},
        {},
        422,
        "invalid_report",
    ),
    ("negative-step", "exp-0", epoch(-1, 0.7), {}, 422, "invalid_report"),
    (
        "string-metric",
        "exp-0",
        {"kind": "epoch", "step": 3, "metrics": {"val_accuracy": "0.7"}},
        {},
        422,
        "invalid_report",
    ),
    ("extra-field", "exp-0", {**epoch(3, 0.7), "phase": "Succeeded"}, {}, 422, "invalid_report"),
    (
        "bad-metric-name",
        "exp-0",
        {"kind": "epoch", "step": 3, "metrics": {"a b": 1.0}},
        {},
        422,
        "invalid_report",
    ),
    (
        "too-many-metrics",
        "exp-0",
        {"kind": "epoch", "step": 3, "metrics": {f"m{i}": 1.0 for i in range(65)}},
        {},
        422,
        "invalid_report",
    ),
    (
        "no-objective-metric",
        "exp-0",
        {"kind": "epoch", "step": 3, "metrics": {"loss": 0.1}},
        {},
        422,
        "invalid_report",
    ),
    (
        "bad-stop-status",
        "exp-0",
        {"kind": "stop", "step": 3, "status": "Great"},
        {},
        422,
        "invalid_report",
    ),
    ("step-backwards", "exp-0", epoch(0, 0.1), {}, 409, "step_backwards"),
    ("same-step-new-value", "exp-0", epoch(2, 0.99), {}, 409, "step_conflict"),
    (
        "stop-before-last-epoch",
        "exp-0",
        {"kind": "stop", "step": 1, "status": "Succeeded"},
        {},
        409,
        "step_backwards",
    ),
    ("finished-trial", "exp-done", epoch(1, 0.7), {}, 409, "trial_finished"),
]


@pytest.mark.parametrize(
    ("name", "body", "kwargs", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REPORTS],
)
def test_bad_report_is_rejected_and_changes_nothing(world, name, body, kwargs, status, code):
    before = {n: world.get(n) for n in ("exp-0", "exp-1", "exp-done")}
    got_status, reply = world.post(name, body, **kwargs)
    assert (got_status, reply["error"]) == (status, code), reply
    assert reply["message"]
    assert {n: world.get(n) for n in before} == before


def test_token_of_one_trial_cannot_write_another(world):
    before = world.get("exp-1")
    status, reply = world.post("exp-1", epoch(5, 0.9), token=world.tokens["exp-0"])
    assert status == 403, reply
    assert world.get("exp-1") == before


def test_epoch_appends_and_repeat_is_duplicate(world):
    status, reply = world.post("exp-0", epoch(3, 0.7))
    assert (status, reply["result"], reply["prune"]) == (200, "accepted", False)
    after = world.get("exp-0")
    assert after["status"]["intermediate"][-1] == {"step": 3, "value": 0.7}
    status, reply = world.post("exp-0", epoch(3, 0.7))
    assert (status, reply["result"]) == (200, "duplicate")
    assert world.get("exp-0") == after
    # an older step that is on record with the same value is also a duplicate
    assert world.post("exp-0", epoch(1, 0.5))[1]["result"] == "duplicate"
    assert world.get("exp-0") == after


def test_start_moves_pending_to_running_once(world):
    world.add_trial(trial("exp-new", number=5))
    status, reply = world.post("exp-new", {"kind": "start"})
    assert (status, reply["result"]) == (200, "accepted")
    started = world.get("exp-new")
    assert started["status"]["phase"] == "Running"
    assert started["status"]["startTime"].endswith("Z")
    assert world.post("exp-new", {"kind": "start"})[1]["result"] == "duplicate"
    assert world.get("exp-new") == started


def test_explicit_value_overrides_metric(world):
    body = {"kind": "epoch", "step": 3, "metrics": {"loss": 0.2}, "value": 0.42}
    assert world.post("exp-0", body)[0] == 200
    assert world.get("exp-0")["status"]["intermediate"][-1] == {"step": 3, "value": 0.42}


def test_stop_is_accepted_without_touching_status(world):
    before = world.get("exp-0")
    body = {"kind": "stop", "step": 2, "status": "Pruned", "objective": 0.6, "reason": "Pruned"}
    status, reply = world.post("exp-0", body)
    assert (status, reply["result"]) == (200, "accepted")
    assert world.get("exp-0") == before


def test_rate_limit_answers_429_with_retry_after_and_changes_nothing():
    w = World(config=ServiceConfig(rate=1.0, burst=3.0))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0", phase="Running"))
    statuses = [w.post("exp-0", epoch(step, 0.5))[0] for step in range(1, 6)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    assert [p["step"] for p in w.get("exp-0")["status"]["intermediate"]] == [1, 2, 3]
    _, _, headers = run(
        w.svc().handle(NS, "exp-0", authorization=f"Bearer {w.tokens['exp-0']}",
                       content_type="application/json", body=json.dumps(epoch(9, 0.5)).encode())
    )  # fmt: skip
    assert int(headers["Retry-After"]) >= 1


def test_recreated_trial_rejects_token_of_its_predecessor(world):
    old_token = world.tokens["exp-1"]
    world.store.delete("trials", NS, "exp-1")
    world.add_trial(trial("exp-1", number=1, phase="Running"), with_secret=False)
    # the old Secret (owned by the old uid) is still there until garbage collection
    status, reply = world.post("exp-1", epoch(1, 0.5), token=old_token)
    assert (status, reply["error"]) == (403, "forbidden")
    assert "intermediate" not in world.get("exp-1")["status"]


def test_concurrent_reports_from_one_trial_keep_every_value_once():
    """Out-of-order arrivals are rejected, never written; accepted steps stay increasing."""
    w = World(config=ServiceConfig(rate=1000, burst=1000))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0", phase="Running"))

    async def go() -> list[int]:
        results = await asyncio.gather(*(w.apost("exp-0", epoch(s, s / 100)) for s in range(1, 41)))
        return [status for status, _ in results]

    statuses = run(go())
    steps = [p["step"] for p in w.get("exp-0")["status"]["intermediate"]]
    assert steps == sorted(set(steps))
    assert statuses.count(200) == len(steps)
    assert all(s in (200, 409) for s in statuses)


def test_two_services_on_one_store_neither_lose_nor_duplicate():
    """Two replicas (two services with their own caches) alternate reports of one Trial."""
    w = World(config=ServiceConfig(rate=1000, burst=1000))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0", phase="Running"))
    from thunderbolt.reports.service import ReportService

    replicas = [w.svc(), ReportService(w.store, w.config)]
    token = w.tokens["exp-0"]

    async def go() -> None:
        for step in range(1, 31):
            service = replicas[step % 2]
            for _attempt in range(2):  # the client retries; the retry may hit the other one
                status, reply, _ = await service.handle(
                    NS, "exp-0", authorization=f"Bearer {token}",
                    content_type="application/json",
                    body=json.dumps(epoch(step, step / 10)).encode(),
                )  # fmt: skip
                assert status == 200, reply
                service = replicas[(step + 1) % 2]

    run(go())
    values = w.get("exp-0")["status"]["intermediate"]
    assert values == [{"step": s, "value": s / 10} for s in range(1, 31)]


def test_events_for_start_sampled_epochs_and_stop():
    w = World(config=ServiceConfig(epoch_event_every=5))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0"))

    async def go() -> None:
        service = w.svc()
        await service.start()
        await w.apost("exp-0", {"kind": "start"})
        for step in range(1, 11):
            await w.apost("exp-0", epoch(step, 0.1 * step))
        await w.apost("exp-0", epoch(10, 1.0))  # duplicate: no second event
        await w.apost(
            "exp-0", {"kind": "stop", "step": 10, "status": "Succeeded", "objective": 1.0}
        )
        await w.apost(
            "exp-0", {"kind": "stop", "step": 10, "status": "Succeeded", "objective": 1.0}
        )
        await service.stop()

    run(go())
    reasons = [(e["reason"], e["metadata"]["name"].rsplit(".", 1)[-1]) for e in w.store.events]
    assert reasons == [
        ("TrainingStarted", "0"),
        ("EpochReported", "1"),
        ("EpochReported", "5"),
        ("EpochReported", "10"),
        ("TrainingStopped", "10"),
    ]
    stopped = w.store.events[-1]
    assert stopped["involvedObject"]["kind"] == "Trial"
    assert "objective 1" in stopped["message"]


def test_metrics_count_results_by_kind(world):
    from prometheus_client import REGISTRY

    def count(result: str) -> float:
        value = REGISTRY.get_sample_value(
            "thunderbolt_reports_total", {"kind": "epoch", "result": result}
        )
        return value or 0.0

    accepted, conflict = count("accepted"), count("step_conflict")
    world.post("exp-0", epoch(3, 0.7))
    world.post("exp-0", epoch(3, 0.8))
    assert count("accepted") == accepted + 1
    assert count("step_conflict") == conflict + 1
    gauge = REGISTRY.get_sample_value(
        "thunderbolt_trial_last_reported_value",
        {"namespace": NS, "experiment": "exp", "trial": "exp-0"},
    )
    assert gauge is not None and math.isclose(gauge, 0.7)


def test_the_same_report_at_two_replicas_at_once_is_accepted_once():
    w = World(config=ServiceConfig(rate=1000, burst=1000))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0", phase="Running"))
    from thunderbolt.reports.service import ReportService

    a, b = w.svc(), ReportService(w.store, w.config)
    token = w.tokens["exp-0"]

    async def both(step: int) -> list[str]:
        body = json.dumps(epoch(step, step / 10)).encode()
        replies = await asyncio.gather(*(
            s.handle(NS, "exp-0", authorization=f"Bearer {token}",
                     content_type="application/json", body=body)
            for s in (a, b)
        ))  # fmt: skip
        return sorted(reply["result"] for _, reply, _ in replies)

    async def go() -> None:
        for step in range(1, 11):
            assert await both(step) == ["accepted", "duplicate"], step

    run(go())
    assert [p["step"] for p in w.get("exp-0")["status"]["intermediate"]] == list(range(1, 11))


def test_a_stop_report_leaves_no_copy_of_the_trial_in_memory(world):
    """10 000 finished Trials must not stay in the endpoint's memory (one object each)."""
    assert world.post("exp-0", epoch(3, 0.7))[1]["result"] == "accepted"
    assert world.post("exp-1", epoch(1, 0.2))[1]["result"] == "accepted"
    writer = world.service.writer
    assert writer.known_count() == 2
    stop = {"kind": "stop", "step": 3, "status": "Succeeded", "objective": 0.7}
    status, reply = world.post("exp-0", stop)
    assert (status, reply["result"], reply["storedStep"]) == (200, "accepted", 3)
    assert writer.known_count() == 1  # exp-1 is still training
    # a retried stop is still answered from a fresh read, and dropped again
    assert world.post("exp-0", stop)[0] == 200
    assert writer.known_count() == 1
