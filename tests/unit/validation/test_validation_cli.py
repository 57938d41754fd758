"""`thunderbolt validate`: a local dataset (streamed), a Trial's status, an Experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thunderbolt.cli import main
from thunderbolt.cli import validate as cli
from thunderbolt.validation import synthetic


def _write(case: synthetic.Case, path: Path, labels: list[str] | None = None) -> None:
    x = np.concatenate([case.x_train, case.x_val]).reshape(len(case.x_train) + len(case.x_val), -1)
    frame = pd.DataFrame(x, columns=[f"c{j}" for j in range(x.shape[1])])
    y = np.concatenate([case.y_train, case.y_val])
    frame["label"] = np.array(labels)[y] if labels else y
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)


def test_readable_report_of_a_noisy_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    case = synthetic.make_case("label_noise_20", "blobs", seed=0)
    path = tmp_path / "noisy.csv"
    _write(case, path, ["north", "east", "south", "west"])
    monkeypatch.setattr(cli, "CHUNK_ROWS", 97)  # several chunks
    code = main(["validate", "--dataset", str(path), "--target", "label"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("verdict: WARN")
    assert "[warn] label_noise" in out and "(they say " in out
    assert "task=classification" in out


def test_json_and_exit_code_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = synthetic.make_case("healthy", "iris", seed=0)
    path = tmp_path / "twice.parquet"
    case.x_train = np.concatenate([case.x_train, case.x_train])
    case.y_train = np.concatenate([case.y_train, case.y_train])
    _write(case, path)
    code = main(["validate", "--dataset", path.as_uri(), "--target", "label", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == cli.FAIL_EXIT
    assert doc["verdict"] == "fail" and doc["findings"][0]["kind"] == "split_leakage"
    rows = doc["context"]["trainRows"] + doc["context"]["validationRows"]
    assert rows == len(case.y_train) + len(case.y_val)


def test_builtin_dataset_and_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", "--dataset", "builtin://wine"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate("1234x6789")))
    assert main(["validate", "--dataset", str(bad), "--target", "label"]) == 1
    assert "not numeric" in capsys.readouterr().err
    assert main(["validate", "--dataset", str(tmp_path / "none.csv")]) == 1
    assert main(["validate"]) == 1


def test_trial_and_experiment_views() -> None:
    validation = {"verdict": "fail", "failed": ["loss_trend"],
                  "findings": [{"kind": "diverging_loss", "severity": "fail",
                                "message": "the training loss diverged", "layers": ["body.0"]}],
                  "recommendations": [{"action": "lower_learning_rate",
                                       "finding": "diverging_loss", "text": "lower it"}]}  # fmt: skip
    trial = {"metadata": {"name": "e-001"}, "spec": {"parameters": {"lr": 0.1}},
             "status": {"phase": "Failed", "validation": validation}}  # fmt: skip
    text = cli.trial_text(trial)
    assert "verdict FAIL" in text and "layers: body.0" in text and "1. lower it" in text
    space = [{"name": "lr", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}]
    trials = [{"metadata": {"name": f"e-{i}"}, "spec": {"parameters": {"lr": 0.09 + 0.001 * i}},
               "status": {"phase": "Succeeded", "objective": 0.9 - 0.01 * i}} for i in range(6)]  # fmt: skip
    experiment = {"metadata": {"name": "e"}, "spec": {"parameters": space,
                                                      "objective": {"direction": "maximize"}}}  # fmt: skip
    summary = cli.experiment_summary(experiment, [trial, *trials])
    assert (summary["failed"], summary["passed"], summary["unchecked"]) == (1, 0, 6)
    assert summary["findings"] == [{"kind": "diverging_loss", "trials": 1}]
    assert summary["recommendations"][0]["action"] == "widen_search_range"
