"""Model health on small trained cases: each injected failure raises its finding,
healthy controls raise none, and gradient problems name their layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thunderbolt.validation import ModelEvidence, check_model, synthetic


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("base", ["iris", "blobs"])
@pytest.mark.parametrize("kind", synthetic.MODEL_KINDS)
def test_each_model_kind_raises_its_finding(kind: str, base: str) -> None:
    case = synthetic.make_case(kind, base, seed=0)
    case.recipe["epochs"] = min(case.recipe["epochs"], 20)
    report, _times = synthetic.train_case(case)
    if case.expected is None:
        assert report.verdict == "pass", report.render()
        assert {d.status for d in report.dimensions} <= {"pass", "warn"}
    else:
        assert report.primary == case.expected, report.render()


def test_sequence_model_dead_units_name_the_projection() -> None:
    case = synthetic.make_case("dead_relu", "trajectories", seed=0)
    case.recipe["epochs"] = 2
    report, _ = synthetic.train_case(case)
    dead = report.finding("dead_units")
    assert dead is not None and dead.layers == ["project.1"]
    assert report.finding("vanishing_gradients") is not None


def test_diverging_run_names_layers_and_recommends_lower_lr() -> None:
    case = synthetic.make_case("diverging_lr", "blobs", seed=0)
    report, _ = synthetic.train_case(case)
    assert report.finding("diverging_loss") is not None
    actions = [r.action for r in report.recommendations]
    assert actions[0] == "lower_learning_rate"
    exploding = report.finding("exploding_gradients")
    assert exploding is not None and exploding.layers  # which layers blew up


def test_label_noise_refined_by_the_model_keeps_precision() -> None:
    case = synthetic.make_case("label_noise_10", "breast_cancer", seed=0)
    report, _ = synthetic.train_case(case)
    finding = report.finding("label_noise")
    assert finding is not None
    k = len(case.noisy_rows)
    assert len(set(finding.row_indices[:k]) & set(case.noisy_rows.tolist())) / k >= 0.8


def test_regression_dimensions() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    good = check_model(ModelEvidence(outputs=y + 0.1 * rng.normal(size=500), y_true=y,
                                     task="regression"))  # fmt: skip
    assert good.verdict == "pass"
    flat = check_model(ModelEvidence(outputs=np.full(500, 0.2), y_true=y, task="regression"))
    assert flat.primary == "collapse"
    assert "output_variance" in flat.as_dict()["failedDimensions"]
