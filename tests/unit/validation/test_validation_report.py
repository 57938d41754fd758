"""Reports: the summary fits status, JSON is strict, recommendations are tied to
findings and ranked, and search ranges get Experiment-level advice."""

from __future__ import annotations

import json

from thunderbolt.api.trial import TrialStatus
from thunderbolt.api.validation_summary import FINDING_KINDS
from thunderbolt.validation import check_dataset, search_range_findings, synthetic
from thunderbolt.validation.recommend import experiment_recommendations


def _noisy_report():  # noqa: ANN202
    case = synthetic.make_case("label_noise_20", "digits", seed=0)
    return check_dataset(case.x_train, case.y_train, case.x_val, case.y_val)


def test_summary_is_small_and_a_valid_trial_status() -> None:
    report = _noisy_report()
    summary = report.summary("s3://bucket/validation.json")
    text = summary.model_dump_json(exclude_none=True)
    assert len(text) < 2048
    status = TrialStatus.model_validate({"phase": "Succeeded", "validation": json.loads(text)})
    assert status.validation is not None and status.validation.findings[0].kind == "label_noise"
    assert len(status.validation.findings[0].rows) == 10


def test_full_json_is_strict_and_lists_rows_with_explanations() -> None:
    doc = json.loads(_noisy_report().to_json())
    assert doc["verdict"] == "warn"
    noise = doc["findings"][0]
    assert noise["kind"] in FINDING_KINDS
    assert noise["rows"][0]["why"].startswith("label ")
    assert doc["recommendations"][0]["finding"] == "label_noise"


def test_recommendations_ranked_by_impact_per_cost_and_tied_to_findings() -> None:
    case = synthetic.make_case("split_leakage", "iris", seed=0)
    report = check_dataset(case.x_train, case.y_train, case.x_val, case.y_val)
    recs = report.recommendations
    assert recs[0].action == "drop_leaking_rows"
    assert all(r.finding in report.kinds() for r in recs)
    scores = [r.rank_score for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_render_is_readable() -> None:
    text = _noisy_report().render()
    assert text.startswith("verdict: WARN")
    assert "[warn] label_noise" in text and "recommendations" in text


def test_search_range_edge_widen_and_narrow() -> None:
    space = [{"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-2, "log": True},
             {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5}]  # fmt: skip
    trials = [({"learning_rate": 1e-2 * (0.95 - 0.01 * i), "dropout": 0.05 * (i % 10)},
               0.9 - 0.01 * i) for i in range(10)]  # fmt: skip
    trials += [({"learning_rate": 1e-4 * (1 + i), "dropout": 0.25}, 0.5) for i in range(10)]
    found = search_range_findings(space, trials, maximize=True)
    assert [f.details["parameter"] for f in found] == ["learning_rate"]
    assert found[0].details["side"] == "high" and found[0].details["action"] == "widen_search_range"
    recs = experiment_recommendations(space, trials, maximize=True)
    assert recs[0].action == "widen_search_range"
    assert recs[0].parameters == {"learning_rate": {"high": 0.1}}
    # every top trial in a narrow middle band of dropout: narrow it
    narrow = [({"learning_rate": 1e-4 * 10 ** (i / 2), "dropout": 0.25 + 0.001 * i}, 0.9 - 0.01 * i)
              for i in range(5)] + [({"learning_rate": 1e-3, "dropout": 0.5 * (i % 2)}, 0.1)
                                    for i in range(12)]  # fmt: skip
    found = search_range_findings(space, narrow, maximize=True)
    assert [f.details["action"] for f in found] == ["narrow_search_range"]
    assert search_range_findings(space, trials[:3], maximize=True) == []
