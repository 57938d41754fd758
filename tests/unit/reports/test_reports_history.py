"""Intermediate history: ordering, idempotency and the MAX_INTERMEDIATE bound."""

from __future__ import annotations

import pytest
from reports_world import trial

from thunderbolt.api.report_schema import EpochReport, StartReport
from thunderbolt.api.trial import MAX_INTERMEDIATE, TrialStatus
from thunderbolt.reports.errors import StepBackwards, StepConflict, TrialFinished
from thunderbolt.reports.history import bound_history, overlay, plan, status_patch

NOW = "2026-01-01T00:00:00Z"


def epoch(step: int, value: float) -> EpochReport:
    return EpochReport(kind="epoch", step=step, metrics={"val_accuracy": value})


def test_bound_keeps_everything_under_the_limit():
    points = [(s, float(s)) for s in range(1, 11)]
    assert bound_history(points, 10) == points


def test_bound_keeps_first_and_latest_and_thins_the_middle_evenly():
    points = [(s, float(s)) for s in range(1, 2001)]
    kept = bound_history(points, MAX_INTERMEDIATE)
    assert len(kept) <= MAX_INTERMEDIATE
    assert kept[0] == (1, 1.0) and kept[-1] == (2000, 2000.0)
    middle = [s for s, _ in kept[1:-1]]
    stride = middle[1] - middle[0]
    assert all(b - a == stride for a, b in zip(middle, middle[1:], strict=False))
    assert all(s % stride == 0 for s in middle)  # the same steps survive in every Trial


def test_history_stays_bounded_while_reporting_forever():
    obj = trial("t", phase="Running")
    for step in range(1, 3001):
        decided = plan(obj, epoch(step, step / 3000))
        obj["status"].update(status_patch(obj, decided.add, decided.start, now=NOW) or {})
        points = obj["status"]["intermediate"]
        assert len(points) <= MAX_INTERMEDIATE
        assert points[-1]["step"] == step
    assert points[0]["step"] == 1
    TrialStatus.model_validate(obj["status"])  # what the CRD schema accepts too


def test_bound_needs_room_for_first_and_last():
    with pytest.raises(ValueError):
        bound_history([(1, 1.0)], 1)


def test_epoch_on_pending_trial_also_marks_it_running():
    obj = trial("t")
    decided = plan(obj, epoch(1, 0.5))
    assert decided.start
    assert status_patch(obj, decided.add, decided.start, now=NOW) == {
        "phase": "Running",
        "startTime": NOW,
        "intermediate": [{"step": 1, "value": 0.5}],
    }


def test_start_keeps_an_existing_start_time():
    obj = trial("t")
    obj["status"]["startTime"] = "2025-01-01T00:00:00Z"
    decided = plan(obj, StartReport(kind="start"))
    assert status_patch(obj, decided.add, decided.start, now=NOW) == {"phase": "Running"}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Pruned"])
def test_finished_trials_take_no_reports(phase):
    with pytest.raises(TrialFinished):
        plan(trial("t", phase=phase), StartReport(kind="start"))


def test_older_step_duplicate_backwards_and_conflict():
    obj = trial("t", phase="Running", intermediate=[(1, 0.1), (3, 0.3)])
    assert plan(obj, epoch(3, 0.3)).result == "duplicate"
    assert plan(obj, epoch(1, 0.1)).result == "duplicate"
    with pytest.raises(StepBackwards):
        plan(obj, epoch(2, 0.2))
    with pytest.raises(StepConflict):
        plan(obj, epoch(3, 0.31))
    decided = plan(obj, epoch(5, 0.5))
    assert status_patch(obj, decided.add, decided.start, now=NOW) == {
        "intermediate": [
            {"step": 1, "value": 0.1},
            {"step": 3, "value": 0.3},
            {"step": 5, "value": 0.5},
        ]
    }


def test_backlog_fills_gaps_and_never_overrides_the_record():
    obj = trial("t", phase="Running", intermediate=[(1, 0.1), (2, 0.2)])
    report = EpochReport(
        kind="epoch",
        step=5,
        metrics={"val_accuracy": 0.5},
        backlog=[{"step": 2, "value": 0.99}, {"step": 3, "value": 0.3}, {"step": 4, "value": 0.4}],
    )
    decided = plan(obj, report)
    assert decided.add == {3: 0.3, 4: 0.4, 5: 0.5}
    patch = status_patch(obj, decided.add, decided.start, now=NOW)
    assert [(p["step"], p["value"]) for p in patch["intermediate"]] == [
        (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (5, 0.5)
    ]  # fmt: skip


def test_backlog_must_precede_the_step():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        EpochReport(kind="epoch", step=3, metrics={"a": 1.0}, backlog=[{"step": 3, "value": 1.0}])


def test_status_patch_is_a_union_with_what_is_on_record_now():
    """A write-behind flush computed after another replica wrote: nothing lost or doubled."""
    now = trial("t", phase="Running", intermediate=[(1, 0.1), (2, 0.2), (4, 0.4)])
    patch = status_patch(now, {3: 0.3, 4: 0.41}, False, now=NOW)
    assert [(p["step"], p["value"]) for p in patch["intermediate"]] == [
        (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)
    ]  # fmt: skip
    assert status_patch(now, {4: 0.4}, False, now=NOW) is None  # nothing new
    assert status_patch(trial("t", phase="Succeeded"), {9: 1.0}, True, now=NOW) is None


def test_overlay_shows_pending_points_to_decisions():
    obj = trial("t", intermediate=[(1, 0.1)])
    seen = overlay(obj, {2: 0.2}, True)
    assert seen["status"]["phase"] == "Running"
    assert [p["step"] for p in seen["status"]["intermediate"]] == [1, 2]
    assert obj["status"]["phase"] == "Pending"  # the original is untouched
