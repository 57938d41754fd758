"""Forged reports: limited before authentication, and never a flood of Secret reads.

Before, 300 forged reports naming random Trials caused 300 Secret reads in 0.24 s.
"""

from __future__ import annotations

from reports_world import World, epoch, experiment, run, trial

from thunderbolt.reports.service import ReportService, ServiceConfig


def _counting(world: World) -> list[str]:
    reads: list[str] = []
    original = world.store.get_secret

    async def get_secret(namespace: str, name: str):
        reads.append(name)
        return await original(namespace, name)

    world.store.get_secret = get_secret  # type: ignore[method-assign]
    return reads


def test_forged_reports_naming_random_trials_cost_a_bounded_number_of_reads():
    world = World(config=ServiceConfig(lookup_rate=50, lookup_burst=100))
    reads = _counting(world)
    # a stopped clock: nothing refills, however slowly a loaded machine runs the loop
    world.service = ReportService(world.store, world.config, clock=lambda: 1000.0)

    async def flood() -> list[int]:
        codes = []
        for i in range(300):
            status, _ = await world.apost(f"ghost-{i}", epoch(1, 0.5), token="F" * 43)
            codes.append(status)
        return codes

    codes = run(flood())
    # one source gets a tenth of the lookup budget; the rest is answered without reading
    assert len(reads) <= 10, len(reads)
    assert codes.count(429) >= 290 and set(codes) <= {403, 429}
    print(f"300 forged reports -> {len(reads)} Secret reads, {codes.count(429)} x 429")


def test_many_sources_together_stay_within_the_global_budget():
    world = World(config=ServiceConfig(lookup_rate=50, lookup_burst=100))
    reads = _counting(world)
    # a stopped clock: nothing refills, however slowly a loaded machine runs the loop
    world.service = ReportService(world.store, world.config, clock=lambda: 1000.0)

    async def flood() -> None:
        for i in range(600):
            await world.apost(f"ghost-{i}", epoch(1, 0.5), token="F" * 43, source=f"10.88.{i}.1")

    run(flood())
    assert 0 < len(reads) <= 100  # the burst, and no more


def test_a_real_trial_is_rate_limited_before_its_token_is_checked():
    world = World(config=ServiceConfig(rate=1, burst=5))
    world.add_experiment(experiment())
    world.add_trial(trial("exp-000"))
    reads = _counting(world)

    async def forged() -> list[int]:
        return [(await world.apost("exp-000", epoch(1, 0.5), token="F" * 43))[0] for _ in range(50)]

    codes = run(forged())
    assert codes[:5] == [403] * 5 and set(codes[5:]) == {429}
    assert len(reads) <= 2  # the first lookup, and at most one refresh on mismatch


def test_one_source_flooding_does_not_lock_out_other_pods():
    world = World(config=ServiceConfig(source_rate=10, source_burst=20))
    world.add_experiment(experiment())
    world.add_trial(trial("exp-000"))

    async def scenario() -> tuple[list[int], int]:
        noisy = [
            (await world.apost(f"ghost-{i}", epoch(1, 0.5), token="F" * 43, source="10.88.9.9"))[0]
            for i in range(100)
        ]
        good, _ = await world.apost("exp-000", epoch(1, 0.5), source="10.88.1.2")
        return noisy, good

    noisy, good = run(scenario())
    assert noisy.count(429) >= 75
    assert good == 200


def test_trials_in_namespaces_outside_the_operators_scope_look_nonexistent():
    world = World(config=ServiceConfig(in_scope=lambda namespace: namespace != "team-a"))
    world.add_experiment(experiment())
    world.add_trial(trial("exp-000"))
    reads = _counting(world)
    status, reply = world.post("exp-000", epoch(1, 0.5))
    assert (status, reply["error"]) == (404, "not_found")
    assert reads == []  # refused before any Secret is read
    # In scope, the same request goes on to authentication (no such Trial there: 403).
    assert world.post("exp-000", epoch(1, 0.5), namespace="team-b")[0] == 403
