"""The stored intermediate curve stays compact: first, last and an evenly thinned middle."""

from __future__ import annotations

import json

import pytest

from thunderbolt.api.trial import MAX_INTERMEDIATE, STORED_POINTS, TrialStatus, compact_curve
from thunderbolt.operator.trialstatus import derive


def curve(steps):
    return [(s, 1.0 - 1.0 / (s + 1)) for s in steps]


def test_a_short_curve_is_stored_as_it_is():
    points = curve(range(STORED_POINTS))
    assert compact_curve(points) == points


@pytest.mark.parametrize("length", [STORED_POINTS + 1, 300, 1000, 10_000])
def test_a_long_curve_keeps_first_last_and_an_even_middle(length):
    points = curve(range(length))
    kept = compact_curve(points)
    assert STORED_POINTS // 2 <= len(kept) <= STORED_POINTS  # compact, yet not thinned twice
    assert kept[0] == points[0] and kept[-1] == points[-1]
    middle = [s for s, _ in kept[1:-1]]
    stride = middle[1] - middle[0]
    assert stride & (stride - 1) == 0  # a power of two
    assert all(b - a == stride for a, b in zip(middle, middle[1:], strict=False))
    assert dict(kept).items() <= dict(points).items()  # values are never changed


def test_compacting_again_only_drops_points():
    points = curve(range(5000))
    once = compact_curve(points)
    grown = compact_curve(once + curve(range(5000, 9000)))
    assert set(grown) - set(once) <= set(curve(range(5000, 9000)))


def test_trials_of_different_lengths_share_their_kept_steps():
    short, long = compact_curve(curve(range(200))), compact_curve(curve(range(3000)))
    coarse = {s for s, _ in long[1:-1]}
    stride = sorted(coarse)[1] - sorted(coarse)[0]
    assert {s for s, _ in short[1:-1] if s % stride == 0} <= coarse


def test_a_stored_curve_is_a_few_kib():
    kept = compact_curve(curve(range(10_000)))
    status = TrialStatus(intermediate=[{"step": s, "value": v} for s, v in kept])
    size = len(json.dumps(status.model_dump(mode="json")["intermediate"]))
    assert size < 6 * 1024, size  # 500 points were ~20 KiB; x 10 000 Trials in etcd
    assert STORED_POINTS < MAX_INTERMEDIATE  # old objects (up to 500) still validate


def test_the_file_collector_compacts_too_instead_of_dropping_the_start():
    # points already on the Trial, then the metrics file's tail in the termination message
    known = [{"step": s, "value": s / 1000} for s, _ in curve(range(600))]
    tail = "\n".join(f"epoch={s} val_accuracy={s / 1000}" for s in range(600, 640))
    trial = {
        "metadata": {"name": "t", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "template": {"metricsCollector": {"kind": "File", "path": "/tmp/m.txt"}},
        },
        "status": {"phase": "Running", "intermediate": known},
    }
    job = {
        "metadata": {"name": "t"},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    pod = {
        "metadata": {"name": "t-x", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "trainer", "state": {"terminated": {"exitCode": 0, "message": tail}}}
            ],
        },
    }
    status = derive(trial, job, [pod]).status
    steps = [p["step"] for p in status["intermediate"]]
    assert len(steps) <= STORED_POINTS
    assert steps[0] == 0 and steps[-1] == 639  # the start of the curve is not cut off
