"""Per-Trial tokens: the Secret builder and the verifier's cache."""

from __future__ import annotations

import base64

from reports_world import run, trial

from thunderbolt.api.report_secret import (
    build_report_secret,
    credential_from_secret,
    owned_by,
    secret_name,
)
from thunderbolt.reports.credentials import LookupBudgetSpent, TokenVerifier, parse_bearer


def stored_trial(name: str = "exp-007", uid: str = "1234-uid") -> dict:
    obj = trial(name)
    obj["metadata"].update(uid=uid, namespace="team-a")
    return obj


def test_secret_is_owned_by_the_trial_and_holds_a_fresh_token():
    first, second = build_report_secret(stored_trial()), build_report_secret(stored_trial())
    meta = first["metadata"]
    assert meta["name"] == secret_name("exp-007") == "exp-007-report"
    assert meta["namespace"] == "team-a"
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Trial", "exp-007", "1234-uid", True
    )  # fmt: skip
    assert meta["labels"]["thunderbolt.io/trial"] == "exp-007"
    assert meta["labels"]["thunderbolt.io/experiment"] == "exp"
    token = base64.b64decode(first["data"]["token"]).decode()
    assert len(token) >= 43 and parse_bearer(f"Bearer {token}") == token
    assert first["data"]["token"] != second["data"]["token"]


def test_long_trial_names_give_valid_unique_secret_names():
    a, b = "a" * 250 + "x", "a" * 250 + "y"
    assert len(secret_name(a)) <= 253 and secret_name(a) != secret_name(b)


def test_parse_bearer_rejects_malformed_headers():
    good = "A" * 43
    assert parse_bearer(f"Bearer {good}") == good
    for header in (
        None,
        "",
        good,
        f"bearer{good}",
        f"Basic {good}",
        "Bearer short",
        f"Bearer {good} x",
    ):
        assert parse_bearer(header) is None, header


def test_only_a_secret_labelled_for_the_trial_counts():
    secret = build_report_secret(stored_trial())
    assert credential_from_secret(secret, "exp-007") is not None
    assert credential_from_secret(secret, "exp-008") is None
    secret["metadata"]["labels"] = {}
    assert credential_from_secret(secret, "exp-007") is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_verifier_caches_and_refreshes_on_mismatch_at_most_once_a_second():
    secrets = {"exp-007-report": build_report_secret(stored_trial(), token="T" * 43)}
    reads: list[str] = []

    async def read(ns: str, name: str):
        reads.append(name)
        return secrets.get(name)

    clock = Clock()
    verifier = TokenVerifier(read, ttl=30, refresh_interval=1.0, clock=clock)

    async def scenario() -> None:
        assert await verifier.verify("team-a", "exp-007", "T" * 43) is not None
        assert await verifier.verify("team-a", "exp-007", "T" * 43) is not None
        assert len(reads) == 1  # cached
        for _ in range(50):  # forged tokens do not turn into API reads
            assert await verifier.verify("team-a", "exp-007", "F" * 43) is None
        assert len(reads) == 1
        # the Trial was recreated with a new token: picked up after the refresh interval
        secrets["exp-007-report"] = build_report_secret(stored_trial(uid="new"), token="N" * 43)
        clock.now = 1.5
        credential = await verifier.verify("team-a", "exp-007", "N" * 43)
        assert credential is not None and credential.owner_uid == "new"
        assert len(reads) == 2
        assert await verifier.verify("team-a", "exp-007", "T" * 43) is None
        # unknown trials are cached negatively for a short while
        assert await verifier.verify("team-a", "ghost", "T" * 43) is None
        assert await verifier.verify("team-a", "ghost", "T" * 43) is None
        assert reads.count("ghost-report") == 1

    run(scenario())


def test_a_secret_without_the_trials_owner_reference_never_authenticates():
    """A Secret planted under the report Secret's name before the Trial existed (or by
    anyone else) carries no owner reference to the Trial: it proves nothing."""
    secret = build_report_secret(stored_trial(), token="P" * 43)
    secret["metadata"]["ownerReferences"] = []
    assert credential_from_secret(secret, "exp-007") is None
    secret["metadata"]["ownerReferences"] = [{"kind": "Trial", "name": "exp-007"}]  # no uid
    assert credential_from_secret(secret, "exp-007") is None

    async def read(ns: str, name: str):
        return secret

    verifier = TokenVerifier(read)
    assert run(verifier.verify("team-a", "exp-007", "P" * 43)) is None


def test_owned_by_tells_the_trials_own_secret_from_a_planted_or_older_one():
    trial = stored_trial(uid="u-1")
    assert owned_by(build_report_secret(trial), trial)
    assert not owned_by(build_report_secret(stored_trial(uid="u-0")), trial)  # an earlier Trial
    planted = build_report_secret(trial)
    planted["metadata"]["ownerReferences"] = []
    assert not owned_by(planted, trial)


def test_reads_for_unknown_tokens_are_charged_to_the_budget_and_caches_stay_bounded():
    reads: list[str] = []
    secrets = {"exp-007-report": build_report_secret(stored_trial(), token="T" * 43)}

    async def read(ns: str, name: str):
        reads.append(name)
        return secrets.get(name)

    clock = Clock()
    verifier = TokenVerifier(read, clock=clock, max_entries=10, max_negative=5)
    allowed = iter([0.0] * 3 + [2.5] * 100)

    async def scenario() -> None:
        assert await verifier.verify("team-a", "exp-007", "T" * 43) is not None
        spent = 0
        for i in range(50):  # forged reports, each naming a different Trial
            try:
                await verifier.verify(
                    "team-a", f"ghost-{i}", "F" * 43, budget=lambda: next(allowed)
                )
            except LookupBudgetSpent as exc:
                assert exc.retry_after == 2.5
                spent += 1
        assert len(reads) == 1 + 3 and spent == 47
        assert len(verifier._negative) <= 5
        # the real Trial's entry survived the flood: no read, no budget needed
        assert await verifier.verify("team-a", "exp-007", "T" * 43, budget=lambda: 9.0)
        assert len(reads) == 4

    run(scenario())
