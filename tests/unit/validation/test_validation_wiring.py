"""The checks in the built-in trainer, the SDK and the operator's status: a real run's
result carries the digest, the termination message keeps it, the operator copies it
into status.validation, and severe data fails the Trial as DatasetError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from thunderbolt.api.trainer_config import TrainerConfig
from thunderbolt.api.trial import TrialStatus
from thunderbolt.operator.trialstatus import derive
from thunderbolt.sdk import init
from thunderbolt.sdk import validation as sdk_validation
from thunderbolt.sdk.errors import DatasetError
from thunderbolt.sdk.result import termination_message
from thunderbolt.trainer.run import train
from thunderbolt.validation import synthetic


@pytest.fixture(autouse=True)
def quiet_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("THUNDERBOLT_CONFIG", "THUNDERBOLT_OUTPUT_DIR", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THUNDERBOLT_TERMINATION_MESSAGE_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("THUNDERBOLT_CPU_THREADS", "1")
    torch.set_num_threads(1)


def _config(tmp_path: Path, **extra: Any) -> TrainerConfig:
    doc: dict[str, Any] = {
        "identity": {"namespace": "ns", "experiment": "exp", "trial": "exp-001"},
        "task": "classification",
        "dataset": {"uri": "builtin://iris"},
        "epochs": 6,
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "artifacts": {"uri": (tmp_path / "store").as_uri()},
    }
    doc.update(extra)
    return TrainerConfig.model_validate(doc)


def _status(message: str) -> dict[str, Any]:
    trial = {"metadata": {"name": "exp-001", "namespace": "ns"},
             "spec": {"objective": {"metric": "val_accuracy"}}, "status": {}}  # fmt: skip
    job = {"metadata": {"name": "exp-001"},
           "status": {"conditions": [{"type": "Failed", "status": "True"}]}}  # fmt: skip
    pod = {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "status": {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {
               "terminated": {"exitCode": 3, "message": message}}}]}}  # fmt: skip
    return derive(trial, job, [pod]).status


def test_a_healthy_run_records_a_passing_report(tmp_path: Path) -> None:
    result, code = train(_config(tmp_path), str(tmp_path / "out"), emit=lambda _m: None)
    assert code == 0 and result.validation is not None
    assert result.validation.verdict == "pass"
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    names = {d["name"] for d in report["dimensions"]}
    assert {"prediction_entropy", "effective_rank", "dead_units", "gradient_vanishing",
            "update_ratio", "loss_trend"} <= names  # fmt: skip
    assert result.validation.reportUri == (
        tmp_path / "store" / "ns" / "exp" / "exp-001" / "validation.json").as_uri()  # fmt: skip
    assert Path(result.validation.reportUri.removeprefix("file://")).is_file()


def test_leaking_split_fails_as_dataset_error_into_trial_status(tmp_path: Path) -> None:
    case = synthetic.make_case("healthy", "blobs", seed=0)
    x = np.concatenate([case.x_train, case.x_val])
    frame = pd.DataFrame(x, columns=case.feature_names)
    frame["y"] = np.concatenate([case.y_train, case.y_val])
    frame = pd.concat([frame, frame])  # every row twice: any split leaks
    path = tmp_path / "twice.csv"
    frame.to_csv(path, index=False)
    config = _config(tmp_path, dataset={"uri": path.as_uri(), "target": "y"})
    result, code = train(config, str(tmp_path / "out"), emit=lambda _m: None)
    assert result.reason == "DatasetError" and code == 3
    assert "split_leakage" in (result.message or "")
    status = _status(termination_message(result))
    assert status["phase"] == "Failed" and status["reason"] == "DatasetError"
    validation = TrialStatus.model_validate(status).validation
    assert validation is not None and validation.verdict == "fail"
    assert validation.findings[0].kind == "split_leakage"
    assert len(validation.findings[0].rows) == 10


def test_diverged_run_says_where(tmp_path: Path) -> None:
    config = _config(tmp_path, parameters={"learning_rate": 80.0, "optimizer": "sgd"})
    result, code = train(config, str(tmp_path / "out"), emit=lambda _m: None)
    assert result.reason == "Diverged" and code == 4
    assert result.validation is not None
    kinds = [f.kind for f in result.validation.findings]
    assert kinds[0] == "diverging_loss" and "exploding_gradients" in kinds
    assert result.validation.recommendations[0].action == "lower_learning_rate"
    assert "80.0 -> 8" in result.validation.recommendations[0].text


def test_checks_off_records_nothing(tmp_path: Path) -> None:
    result, code = train(_config(tmp_path, checks="off"), str(tmp_path / "out"),
                         emit=lambda _m: None)  # fmt: skip
    assert code == 0 and result.validation is None
    assert not (tmp_path / "out" / "validation.json").exists()


def test_sdk_loop_records_validation(tmp_path: Path) -> None:
    case = synthetic.make_case("label_noise_10", "blobs", seed=0)
    with pytest.raises(DatasetError) as raised:
        sdk_validation.check_dataset(case.x_train, case.y_train, case.x_train[:50],
                                     case.y_train[:50])  # fmt: skip
    assert raised.value.findings[0].kind == "split_leakage"
    report = sdk_validation.check_dataset(case.x_train, case.y_train, case.x_val, case.y_val)
    net = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    probe = sdk_validation.TrainingProbe(net, opt, every=1)
    x = torch.as_tensor(case.x_train, dtype=torch.float32)
    y = torch.as_tensor(case.y_train)
    with init(output=tmp_path / "sdk", objective="val_accuracy") as trial:
        for epoch in range(1, 6):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            probe.end_epoch(float(loss.detach()))
            trial.report(epoch, val_accuracy=0.5)
        full = sdk_validation.check_training(probe, case.x_val.astype(np.float32), case.y_val,
                                             dataset=report, x_train=x, y_train=case.y_train)  # fmt: skip
        summary = trial.record_validation(full)
    assert probe.grads.samples == 5
    assert summary.findings[0].kind == "label_noise"
    saved = json.loads((tmp_path / "sdk" / "result.json").read_text())
    assert saved["validation"]["findings"][0]["kind"] == "label_noise"
    assert (tmp_path / "sdk" / "validation.svg").read_text().startswith("<svg")
