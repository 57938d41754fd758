"""``thunderbolt train`` as the Job runs it: a real process, killed and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from thunderbolt.trainer.run import train

THUNDERBOLT = Path(sys.executable).parent / "thunderbolt"


def command(config_path: Path, out: Path) -> list[str]:
    prog = [str(THUNDERBOLT)] if THUNDERBOLT.exists() else [sys.executable, "-m", "thunderbolt.cli"]
    return [*prog, "train", "--config", str(config_path), "--output", str(out)]


def write(config, path: Path) -> Path:
    path.write_text(config.model_dump_json())
    return path


def test_sigkilled_run_resumes_from_its_checkpoint_to_the_same_result(make_config, tmp_path):
    config = make_config(
        dataset={"uri": "builtin://digits"},
        epochs=12,
        batchSize=16,
        checkpointUri=(tmp_path / "ckpt").as_uri(),
        parameters={"learning_rate": 0.003, "dropout": 0.1},
    )
    reference, code = train(
        config.model_copy(update={"checkpointUri": None}),
        str(tmp_path / "ref"),
        emit=lambda m: None,
    )
    assert code == 0
    config_path = write(config, tmp_path / "config.json")
    out = tmp_path / "out"
    proc = subprocess.Popen(command(config_path, out), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("epoch 3/"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()
    assert not (out / "result.json").exists()

    again = subprocess.run(command(config_path, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resumed from checkpoint after epoch" in again.stdout
    assert "epoch 1/12" not in again.stdout
    resumed = json.loads((out / "result.json").read_text())
    for name, value in reference.metrics.items():
        if not name.startswith("latency_"):  # measured, not computed
            assert resumed["metrics"][name] == pytest.approx(value, abs=1e-5)
    # Succeeded: the checkpoint that made the resume possible is gone, the model is not.
    assert not (tmp_path / "ckpt" / "checkpoint.pt").exists()
    assert (out / "model.onnx").is_file()


def test_failed_run_exits_nonzero_with_a_one_line_reason(make_config, tmp_path):
    config_path = write(make_config(parameters={"learning_rate": 10}), tmp_path / "c.json")
    # no --config: the path comes from THUNDERBOLT_CONFIG, as the operator may set it
    argv = [
        a for a in command(config_path, tmp_path / "out") if a not in ("--config", str(config_path))
    ]
    env = {**os.environ, "THUNDERBOLT_CONFIG": str(config_path)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 4
    assert "epoch 1/" not in done.stdout  # it diverged in the first epoch
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Failed: Diverged: ")
    assert json.loads((tmp_path / "out" / "result.json").read_text())["reason"] == "Diverged"


def test_unreadable_config_is_reported_in_the_result(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset": {"uri": "builtin://iris"}}))
    done = subprocess.run(command(bad, tmp_path / "out"), capture_output=True, text=True)
    assert done.returncode == 8
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["reason"] == "InvalidConfig" and "objective" in result["message"]
