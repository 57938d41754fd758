"""Noise-aware promotion: a best trial must beat the serving model by more than the noise."""

import pytest

from thunderbolt.api.experiment import Promote
from thunderbolt.deploy import promotion


def md(objective):
    return {
        "spec": {"model": {"trialRef": "old"}},
        "status": {"currentRevision": {"objective": objective}},
    }


@pytest.mark.parametrize(
    ("floor", "stds", "std", "expected"),
    [
        (None, None, None, 0.0),
        (0.01, None, 0.05, 0.01),  # no std rule: the floor alone
        (None, 2.0, 0.005, 0.01),
        (0.02, 2.0, 0.005, 0.02),  # the larger of the two
        (0.001, 2.0, 0.005, 0.01),
        (None, 2.0, None, 0.0),  # std unknown (no folds): nothing to scale
    ],
)
def test_required_margin_is_the_larger_of_floor_and_scaled_std(floor, stds, std, expected):
    assert promotion.required_margin(floor, stds, std) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("direction", "best", "serving", "margin", "expected"),
    [
        ("maximize", 0.95, 0.94, 0.0, True),
        ("maximize", 0.95, 0.94, 0.02, False),  # better, but within the noise
        ("maximize", 0.97, 0.94, 0.02, True),
        ("minimize", 0.10, 0.12, 0.05, False),
        ("minimize", 0.10, 0.20, 0.05, True),
        ("maximize", 0.96, 0.94, 0.02, False),  # exactly the margin is not more than it
    ],
)
def test_improved_promotion_needs_more_than_the_margin(direction, best, serving, margin, expected):
    decision = promotion.decide("Improved", direction, "best", best, md(serving), margin=margin)
    assert decision.promote is expected, decision.reason
    if margin and not expected:
        assert f"by more than {margin:g}" in decision.reason


def test_always_ignores_the_margin_and_nothing_serving_still_promotes():
    assert promotion.decide("Always", "maximize", "best", 0.1, md(0.9), margin=1.0).promote
    empty = {"spec": {"model": {"trialRef": "old"}}, "status": {}}
    assert promotion.decide("Improved", "maximize", "best", 0.1, empty, margin=1.0).promote


def test_promote_fields_are_optional_and_non_negative():
    assert Promote(modelDeployment="iris").minImprovement is None
    parsed = Promote(modelDeployment="iris", minImprovement=0.01, minImprovementStds=2)
    assert (parsed.minImprovement, parsed.minImprovementStds) == (0.01, 2)
    with pytest.raises(ValueError):
        Promote(modelDeployment="iris", minImprovement=-0.1)
