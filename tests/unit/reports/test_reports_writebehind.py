"""Write-behind: acknowledge after validation, write soon after; nothing lost on a crash."""

from __future__ import annotations

import asyncio

from reports_world import NS, World, epoch, experiment, run, trial

from thunderbolt.reports.service import ReportService, ServiceConfig


def steps_of(world: World, name: str = "exp-0") -> list[int]:
    return [p["step"] for p in world.get(name)["status"].get("intermediate") or []]


def make(delay: float) -> World:
    w = World(config=ServiceConfig(rate=1000, burst=1000, write_delay=delay))
    w.add_experiment(experiment())
    w.add_trial(trial("exp-0"))
    return w


def test_acknowledged_points_are_written_together_within_the_delay():
    w = make(delay=0.05)

    async def go() -> None:
        for step in range(1, 6):
            status, reply = await w.apost("exp-0", epoch(step, step / 10))
            assert (status, reply["result"]) == (200, "accepted")
        written = await w.store.get_trial(NS, "exp-0")
        assert "intermediate" not in written["status"]  # acknowledged, not yet written
        assert w.svc().writer.pending_count() == 5
        await asyncio.sleep(0.2)

    run(go())
    status = w.get("exp-0")["status"]
    assert status["phase"] == "Running"
    assert status["intermediate"] == [{"step": s, "value": s / 10} for s in range(1, 6)]


def test_duplicates_and_stale_steps_are_judged_with_pending_points():
    w = make(delay=10)

    async def go() -> None:
        assert (await w.apost("exp-0", epoch(1, 0.1)))[1]["result"] == "accepted"
        assert (await w.apost("exp-0", epoch(2, 0.2)))[1]["result"] == "accepted"
        assert (await w.apost("exp-0", epoch(2, 0.2)))[1]["result"] == "duplicate"
        assert (await w.apost("exp-0", epoch(2, 0.3)))[0] == 409
        stop = {"kind": "stop", "step": 2, "status": "Succeeded", "objective": 0.2}
        status, reply = await w.apost("exp-0", stop)  # a stop writes everything first
        assert (status, reply["storedStep"]) == (200, 2)

    run(go())
    assert steps_of(w) == [1, 2]


def test_a_crashed_replica_loses_nothing_the_trainer_resends():
    """Replica A acknowledges 1..5 and dies before writing; B gets 6 with the backlog."""
    w = make(delay=3600)
    a, b = w.svc(), ReportService(w.store, w.config)
    token = w.tokens["exp-0"]
    unstored: dict[int, float] = {}

    async def report(service: ReportService, step: int) -> dict:
        body = epoch(step, step / 10)
        body["backlog"] = [{"step": s, "value": v} for s, v in sorted(unstored.items())]
        import json

        status, reply, _ = await service.handle(
            NS, "exp-0", authorization=f"Bearer {token}", content_type="application/json",
            body=json.dumps(body).encode(),
        )  # fmt: skip
        assert status == 200, reply
        unstored[step] = step / 10
        stored = reply["storedStep"]
        for s in [s for s in unstored if stored is not None and s <= stored]:
            del unstored[s]
        return reply

    async def go() -> None:
        for step in range(1, 6):
            assert (await report(a, step))["storedStep"] is None
        # A is gone (no flush ever happens); B never heard of 1..5
        reply = await report(b, 6)
        assert reply["result"] == "accepted"
        await b.writer.flush(("team-a", "exp-0"))

    run(go())
    assert steps_of(w) == [1, 2, 3, 4, 5, 6]


def test_write_behind_survives_another_writer_in_between():
    w = make(delay=0.05)

    async def go() -> None:
        await w.apost("exp-0", epoch(1, 0.1))
        # someone else (another replica, the operator) changes the Trial meanwhile
        obj = await w.store.get_trial(NS, "exp-0")
        obj["status"]["message"] = "pod running"
        w.store.put("trials", obj)
        await w.apost("exp-0", epoch(2, 0.2))
        await asyncio.sleep(0.3)

    run(go())
    status = w.get("exp-0")["status"]
    assert [p["step"] for p in status["intermediate"]] == [1, 2]
    assert status["message"] == "pod running"


def test_shutdown_flushes_pending_points():
    w = make(delay=3600)

    async def go() -> None:
        await w.svc().start()
        for step in (1, 2, 3):
            await w.apost("exp-0", epoch(step, step / 10))
        await w.svc().stop()

    run(go())
    assert steps_of(w) == [1, 2, 3]
