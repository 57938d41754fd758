"""The SDK's Trial: config sources, typed parameters, reports and pruning, checkpoints,
results, and the ``with`` block's handling of each way a script ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thunderbolt import sdk
from thunderbolt.api.trainer_config import TrainResult
from thunderbolt.sdk.errors import EXIT_CODES, DatasetError, InvalidConfig

POD_CONFIG = {
    "identity": {
        "namespace": "ns",
        "experiment": "digits",
        "trial": "digits-004",
        "uid": "u-4",
        "number": 4,
    },  # fmt: skip
    "parameters": {"learning_rate": 0.01, "channels": 16, "spectral_norm": "true"},
    "seed": 7,
    "epochs": 5,
    "batchSize": 64,
    "objective": {"metric": "val_accuracy", "direction": "maximize"},
}


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_a_local_run_takes_its_keyword_arguments(tmp_path):
    trial = sdk.init(parameters={"lr": 0.1}, objective="loss", direction="minimize", seed=3)
    assert trial.params.float("lr") == 0.1
    assert (trial.seed, trial.objective_metric, trial.maximize) == (3, "loss", False)
    assert not trial.in_cluster
    assert trial.output_dir == Path("thunderbolt-output/local")
    assert trial.name == "local"


def test_the_mounted_config_wins_over_the_script_defaults(tmp_path, monkeypatch):
    path = write_config(tmp_path / "config.json", POD_CONFIG)
    monkeypatch.setenv("THUNDERBOLT_CONFIG", str(path))
    monkeypatch.setenv("THUNDERBOLT_OUTPUT_DIR", str(tmp_path / "out"))
    trial = sdk.init(parameters={"learning_rate": 0.5, "dropout": 0.1}, objective="loss", epochs=99)
    assert trial.in_cluster
    assert trial.params.float("learning_rate") == 0.01  # the Trial's value
    assert trial.params.float("dropout") == 0.1  # the script's default fills the gap
    assert trial.objective_metric == "val_accuracy" and trial.maximize
    assert (trial.epochs, trial.batch_size, trial.seed, trial.number) == (5, 64, 7, 4)
    assert trial.name == "digits-004" and trial.experiment == "digits"
    assert trial.output_dir == tmp_path / "out"


def test_a_config_file_can_be_named_explicitly(tmp_path):
    trial = sdk.init(write_config(tmp_path / "c.json", POD_CONFIG), output=tmp_path / "o")
    assert trial.params.int("channels") == 16 and not trial.in_cluster


def test_typed_parameters_coerce_or_say_which_parameter_is_wrong(tmp_path):
    trial = sdk.init(POD_CONFIG)
    assert trial.params.bool("spectral_norm") is True
    assert trial.params.int("channels") == 16
    assert trial.params.str("channels") == "16"
    assert trial.params.int("missing", 3) == 3
    with pytest.raises(InvalidConfig, match="parameter learning_rate"):
        trial.params.int("learning_rate")
    with pytest.raises(KeyError, match="channels, learning_rate, spectral_norm"):
        trial.params.float("missing")


def test_an_unreadable_or_invalid_config_is_an_invalid_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("THUNDERBOLT_CONFIG", str(tmp_path / "absent.json"))
    with pytest.raises(InvalidConfig, match="cannot read config"):
        sdk.init()
    bad = write_config(tmp_path / "bad.json", {**POD_CONFIG, "epochs": "many"})
    with pytest.raises(InvalidConfig, match="epochs"):
        sdk.init(bad)


def test_reports_reach_the_endpoint_and_a_prune_raises(tmp_path, report_endpoint):
    endpoint = report_endpoint(lambda body: body.get("step") == 2)
    config = {**POD_CONFIG, "report": {"url": endpoint.url, "tokenFile": endpoint.token_file}}
    with sdk.init(config, output=tmp_path / "out") as trial:
        for step in range(1, 6):
            trial.report(step, val_accuracy=0.5 + step / 10, loss=1.0 / step)
    assert trial.should_prune
    result = trial.result
    assert result is not None and result.status == "Pruned" and result.reason == "Pruned"
    assert result.objective == pytest.approx(0.7) and result.epochs == 2
    assert endpoint.kinds() == ["start", "epoch", "epoch", "stop"]
    epoch = endpoint.received[1]
    assert epoch["path"] == "/v1/namespaces/ns/trials/digits-004/reports"
    assert epoch["auth"] == "Bearer secret-token"
    assert epoch["metrics"] == {"val_accuracy": 0.6, "loss": 1.0}
    assert endpoint.received[-1]["status"] == "Pruned"
    on_disk = TrainResult.model_validate_json((tmp_path / "out" / "result.json").read_text())
    assert on_disk.status == "Pruned"


def test_without_raising_a_prune_is_a_flag_the_script_reads(tmp_path, report_endpoint):
    endpoint = report_endpoint(lambda body: body.get("step", 0) >= 3)
    config = {**POD_CONFIG, "report": {"url": endpoint.url, "tokenFile": endpoint.token_file}}
    trial = sdk.init(config, output=tmp_path / "out", raise_on_prune=False)
    answers = [trial.report(step, val_accuracy=0.1 * step) for step in range(1, 5)]
    assert answers == [False, False, True, True]
    assert trial.finish().status == "Pruned"


def test_an_unreachable_endpoint_never_stops_training(tmp_path):
    token = tmp_path / "token"
    token.write_text("t")
    config = {**POD_CONFIG, "report": {"url": "http://127.0.0.1:9", "tokenFile": str(token)}}
    with sdk.init(config, output=tmp_path / "out") as trial:
        for step in (1, 2):
            assert trial.report(step, val_accuracy=0.5) is False
    assert trial.result is not None and trial.result.status == "Succeeded"


def test_the_objective_defaults_to_the_best_reported_value_in_its_direction(tmp_path):
    trial = sdk.init(objective="loss", direction="minimize", output=tmp_path)
    for step, loss in enumerate([0.9, 0.4, 0.6], start=1):
        trial.report(step, loss=loss, acc=step)
    result = trial.finish()
    assert (result.objective, result.metrics, result.epochs) == (0.4, {"loss": 0.4, "acc": 2.0}, 3)


def test_an_explicit_objective_and_metrics_win(tmp_path):
    trial = sdk.init(objective="acc", output=tmp_path)
    trial.report(1, acc=0.2)
    result = trial.finish(metrics={"acc": 0.9, "f1": 0.8}, extra={"note": "final eval"})
    assert result.objective == 0.9 and result.metrics == {"acc": 0.9, "f1": 0.8}
    assert result.extra["note"] == "final eval"
    assert trial.finish(objective=0.1) is result  # once


def test_finishing_without_any_objective_fails_as_no_objective(tmp_path):
    trial = sdk.init(objective="acc", output=tmp_path)
    trial.report(1, loss=0.3)
    result = trial.finish()
    assert result.status == "Failed" and result.reason == "NoObjective"
    assert trial.exit_code == EXIT_CODES["NoObjective"]


def test_non_numeric_metrics_are_refused_at_the_call(tmp_path):
    trial = sdk.init(objective="acc", output=tmp_path)
    with pytest.raises(TypeError, match="metric 'acc'"):
        trial.report(1, acc="high")


def test_the_termination_message_is_written_where_the_kubelet_reads_it(tmp_path, monkeypatch):
    message = tmp_path / "termination-log"
    message.write_text("")
    monkeypatch.setenv("THUNDERBOLT_TERMINATION_MESSAGE_PATH", str(message))
    trial = sdk.init(objective="acc", output=tmp_path / "out")
    trial.finish(objective=0.8)
    written = json.loads(message.read_text())
    assert written["status"] == "Succeeded" and written["objective"] == 0.8


def test_checkpoints_resume_the_same_run_only(tmp_path):
    first = sdk.init(POD_CONFIG, output=tmp_path / "out")
    assert first.load_checkpoint() is None
    first.save_checkpoint({"epoch": 3, "weights": [1.0, 2.0]})
    again = sdk.init(POD_CONFIG, output=tmp_path / "out")  # the restarted pod
    state = again.load_checkpoint()
    assert state is not None and state["epoch"] == 3 and state["weights"] == [1.0, 2.0]
    other = {**POD_CONFIG, "parameters": {**POD_CONFIG["parameters"], "channels": 32}}
    assert sdk.init(other, output=tmp_path / "out").load_checkpoint() is None


def test_a_succeeded_run_clears_its_checkpoints_and_a_failed_one_keeps_them(tmp_path):
    config = {**POD_CONFIG, "checkpointUri": (tmp_path / "store").as_uri()}
    with sdk.init(config, output=tmp_path / "ok") as trial:
        trial.save_checkpoint({"epoch": 1})
        trial.checkpoint_store("fold-1").save({"epoch": 2})
        assert (tmp_path / "store" / "fold-1" / "checkpoint.pt").is_file()
        trial.report(1, val_accuracy=0.9)
    assert trial.result is not None and trial.result.status == "Succeeded"
    assert not (tmp_path / "store" / "checkpoint.pt").exists()
    assert not (tmp_path / "store" / "fold-1" / "checkpoint.pt").exists()

    failed = sdk.init(config, output=tmp_path / "failed")
    failed.save_checkpoint({"epoch": 1})
    failed.fail(RuntimeError("node lost"))
    assert (tmp_path / "store" / "checkpoint.pt").is_file()  # the retry resumes from it


def test_checkpoints_go_to_the_configured_store(tmp_path):
    config = {**POD_CONFIG, "checkpointUri": (tmp_path / "store").as_uri()}
    trial = sdk.init(config, output=tmp_path / "out")
    trial.save_checkpoint({"epoch": 1})
    assert (tmp_path / "store" / "checkpoint.pt").is_file()
    assert trial.checkpoint_uri == (tmp_path / "store").as_uri() + "/checkpoint.pt"


def test_only_rank_zero_reports_checkpoints_and_writes(tmp_path, monkeypatch, report_endpoint):
    endpoint = report_endpoint(lambda body: False)
    config = {**POD_CONFIG, "report": {"url": endpoint.url, "tokenFile": endpoint.token_file}}
    monkeypatch.setenv("RANK", "1")
    trial = sdk.init(config, output=tmp_path / "out")
    trial.report(1, val_accuracy=0.5)
    trial.save_checkpoint({"epoch": 1})
    trial.finish()
    assert endpoint.received == []
    assert not (tmp_path / "out" / "result.json").exists()
    assert not (tmp_path / "out" / "checkpoints").exists()


SCRIPT_FAILING = r"""
import sys
from thunderbolt import sdk
from thunderbolt.sdk.errors import DatasetError
with sdk.init(objective="acc", output=sys.argv[1]) as trial:
    trial.report(1, acc=0.5)
    if sys.argv[2] == "dataset":
        raise DatasetError("column 'x' is not numeric")
    raise ZeroDivisionError("a bug")
"""


@pytest.mark.parametrize(("how", "reason"), [("dataset", "DatasetError"), ("bug", "Error")])
def test_a_failing_script_records_the_reason_and_exits_with_its_code(tmp_path, how, reason):
    src = Path(__file__).resolve().parents[3] / "src"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT_FAILING, str(tmp_path / "out"), how],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert done.returncode == EXIT_CODES[reason], done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "Failed" and result["reason"] == reason
    assert f"Failed: {reason}" in done.stderr
    assert ("Traceback" in done.stderr) == (how == "bug")


def test_errors_keep_their_exit_codes():
    assert DatasetError("x").exit_code == EXIT_CODES["DatasetError"] == 3
