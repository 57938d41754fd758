"""Kopf's peering rule as the resync loop applies it (operator/leadership.py)."""

from __future__ import annotations

import datetime as dt

from thunderbolt.operator.leadership import own_identity, standby_reason

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
ME = "me@host/1"


def peer(priority: int, seen_ago: float = 5, lifetime: int = 60) -> dict:
    lastseen = (NOW - dt.timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lastseen": lastseen, "lifetime": lifetime}


def test_alone_or_highest_is_active():
    assert standby_reason({}, ME, 10, NOW) is None
    assert standby_reason({ME: peer(10)}, ME, 10, NOW) is None
    assert standby_reason({ME: peer(10), "other": peer(3)}, ME, 10, NOW) is None


def test_a_live_peer_with_higher_priority_makes_a_standby():
    reason = standby_reason({ME: peer(10), "other": peer(11)}, ME, 10, NOW)
    assert reason is not None and "other" in reason and "higher" in reason


def test_equal_priorities_pause_both_as_kopf_does():
    reason = standby_reason({ME: peer(7), "twin": peer(7)}, ME, 7, NOW)
    assert reason is not None and "same priority" in reason


def test_a_dead_peer_no_longer_holds_the_lead():
    # lastseen 61 s ago with a 60 s lifetime: Kopf resumes the standby; so does the resync.
    assert standby_reason({"old": peer(99, seen_ago=61)}, ME, 1, NOW) is None
    assert standby_reason({"old": peer(99, seen_ago=59)}, ME, 1, NOW) is not None


def test_malformed_entries_are_ignored_not_fatal():
    peers = {"x": "garbage", "y": {"priority": 50}, "z": {"lastseen": "not a time"}}
    assert standby_reason(peers, ME, 1, NOW) is None  # type: ignore[arg-type]


def test_naive_timestamps_are_taken_as_utc():
    naive = {"priority": 5, "lastseen": NOW.replace(tzinfo=None).isoformat(), "lifetime": 60}
    assert standby_reason({"p": naive}, ME, 1, NOW) is not None


def test_identity_is_stable_within_a_process():
    assert own_identity() == own_identity()
