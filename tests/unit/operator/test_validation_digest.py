"""The validation Event of a finished Trial and the Experiment's validation summary."""

from __future__ import annotations

from typing import Any

from thunderbolt.api.meta import now_utc
from thunderbolt.api.validation_summary import ExperimentValidation
from thunderbolt.cli import validate as cli
from thunderbolt.cli.describe import experiment_view
from thunderbolt.operator import validation_digest as digest

SPACE = [{"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}]


def _trial(i: int, phase: str = "Succeeded", validation: dict[str, Any] | None = None,
           **status: Any) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"phase": phase, **status}
    if validation is not None:
        body["validation"] = validation
    return {"metadata": {"name": f"e-{i:03d}", "namespace": "ns", "uid": f"{i:08d}-uid"},
            "spec": {"number": i, "parameters": {"lr": 0.09 + 0.001 * i}}, "status": body}  # fmt: skip


def _finding(kind: str, message: str = "m", severity: str = "warn") -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "message": message}


def test_dataset_error_event_names_the_top_finding_once() -> None:
    validation = {"verdict": "fail", "failed": [],
                  "findings": [_finding("split_leakage", "40 training rows are in validation",
                                        "fail"), _finding("constant_feature")]}  # fmt: skip
    trial = _trial(3, "Failed", validation, reason="DatasetError", message="long text")
    event = digest.trial_event(trial, trial["status"])
    assert event is not None
    assert (event.reason, event.warning) == ("DatasetError", True)
    assert event.message == "split_leakage: 40 training rows are in validation"
    assert event.name == "e-003.00000003.validation"
    assert digest.trial_event(trial, trial["status"]) == event  # deterministic: a 409 repeats
    marked = {**trial["status"], "validationEvent": event.name}
    assert digest.trial_event(trial, marked) is None  # posted before (restart): nothing


def test_dataset_error_without_a_digest_uses_the_status_message() -> None:
    trial = _trial(1, "Failed", None, reason="DatasetError", message="dataset x has no rows")
    event = digest.trial_event(trial, trial["status"])
    assert event is not None and event.message == "dataset x has no rows"


def test_fail_warn_pass_and_unfinished() -> None:
    fail = _trial(1, "Failed", {"verdict": "fail", "failed": ["loss_trend"],
                                "findings": [_finding("diverging_loss", "x " * 400, "fail")]})  # fmt: skip
    event = digest.trial_event(fail, fail["status"])
    assert event is not None and event.reason == "ValidationFailed" and event.warning
    assert len(event.message) <= digest.MESSAGE_LIMIT and event.message.endswith("…")
    warn = _trial(2, "Succeeded", {"verdict": "warn", "warned": ["entropy"], "findings": []})
    event = digest.trial_event(warn, warn["status"])
    assert event is not None and (event.reason, event.warning) == ("ValidationWarned", False)
    assert event.message == "warned: entropy"
    assert digest.trial_event(_trial(3, validation={"verdict": "pass"}), {"phase": "Succeeded",
                              "validation": {"verdict": "pass"}}) is None  # fmt: skip
    running = _trial(4, "Running", {"verdict": "fail"})
    assert digest.trial_event(running, running["status"]) is None
    assert digest.trial_event(_trial(5), {"phase": "Succeeded"}) is None


def test_long_trial_names_still_give_a_valid_event_name() -> None:
    trial = _trial(1, "Failed", {"verdict": "fail"})
    trial["metadata"]["name"] = "x" * 250
    assert len(digest.event_name(trial)) <= 253


def test_experiment_summary_counts_kinds_and_ranks_advice() -> None:
    leak = {"verdict": "fail", "findings": [_finding("split_leakage", severity="fail"),
                                            _finding("class_imbalance")],
            "recommendations": [{"action": "drop_leaking_rows", "finding": "split_leakage",
                                 "text": "drop them"}]}  # fmt: skip
    noisy = {"verdict": "warn", "findings": [_finding("class_imbalance")],
             "recommendations": [{"action": "rebalance_classes", "finding": "class_imbalance",
                                  "text": "rebalance"}]}  # fmt: skip
    trials = [_trial(0, "Failed", leak, reason="DatasetError")]
    trials += [_trial(i, "Succeeded", noisy, objective=0.9 - 0.01 * i) for i in range(1, 7)]
    trials += [_trial(7, "Succeeded", {"verdict": "pass"}, objective=0.1),
               _trial(8, "Pruned", None), _trial(9, "Running", noisy)]  # fmt: skip
    spec = {"parameters": SPACE, "objective": {"metric": "acc", "direction": "maximize"}}
    summary = digest.experiment_summary(spec, trials)
    assert summary is not None
    ExperimentValidation.model_validate(summary)  # fits the API's bounds
    assert (summary["passed"], summary["warned"], summary["failed"], summary["unchecked"]) == (
        1, 6, 1, 1)  # fmt: skip
    assert summary["findings"] == [{"kind": "class_imbalance", "trials": 7},
                                   {"kind": "split_leakage", "trials": 1}]  # fmt: skip
    actions = [r["action"] for r in summary["recommendations"]]
    # the top trials crowd lr's upper edge: the search advice first, then by trial count
    assert actions == ["widen_search_range", "rebalance_classes", "drop_leaking_rows"]
    # the CLI's `validate --experiment` computes the same summary
    shown = cli.experiment_summary({"metadata": {"name": "e"}, "spec": spec}, trials)
    assert {k: v for k, v in shown.items() if k not in ("experiment", "trials")} == summary


def test_summary_is_bounded_and_absent_before_any_trial_finished() -> None:
    spec = {"parameters": SPACE, "objective": {"metric": "acc"}}
    assert digest.experiment_summary(spec, [_trial(0, "Running")]) is None
    assert digest.with_summary({"phase": "Running"}, {"spec": spec}, [_trial(0, "Running")]) == {
        "phase": "Running"}  # fmt: skip
    kinds = ["missing_values", "constant_feature", "duplicate_rows", "split_leakage",
             "class_imbalance", "label_noise", "feature_shift", "collapse"]  # fmt: skip
    validation = {"verdict": "warn", "findings": [_finding(k) for k in kinds],
                  "recommendations": [{"action": f"a{i}", "finding": k, "text": "t"}
                                      for i, k in enumerate(kinds)]}  # fmt: skip
    trials = [_trial(i, "Succeeded", validation) for i in range(50)]
    summary = digest.experiment_summary(spec, trials)
    assert summary is not None
    ExperimentValidation.model_validate(summary)
    assert len(summary["findings"]) == 5 and len(summary["recommendations"]) == 3


def test_describe_experiment_shows_the_summary() -> None:
    experiment = {"metadata": {"name": "e", "namespace": "ns"},
                  "spec": {"parameters": SPACE, "objective": {"metric": "acc"}},
                  "status": {"phase": "Succeeded", "validation": {
                      "passed": 2, "warned": 1, "failed": 1, "unchecked": 0,
                      "findings": [{"kind": "label_noise", "trials": 2}],
                      "recommendations": [{"action": "fix_rows", "finding": "label_noise",
                                           "text": "relabel rows 3, 9"}]}}}  # fmt: skip
    text = experiment_view(experiment, [], None, now_utc())
    assert "Validation:" in text
    assert "passed 2, warned 1, failed 1, unchecked 0" in text
    assert "label_noise in 2" in text and "1. relabel rows 3, 9  [fix_rows]" in text
    del experiment["status"]["validation"]
    assert "Validation:" not in experiment_view(experiment, [], None, now_utc())
