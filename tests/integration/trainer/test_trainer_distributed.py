"""DistributedDataParallel under torchrun, exercised on CPU with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort

from thunderbolt.api.trainer_config import TrainerConfig

THUNDERBOLT = Path(sys.executable).parent / "thunderbolt"


def test_two_processes_train_one_model_and_rank_zero_publishes_it(tmp_path: Path) -> None:
    config = TrainerConfig.model_validate(
        {
            "parameters": {"learning_rate": 0.02, "spectral_norm": True},
            "dataset": {"uri": "builtin://breast_cancer"},
            "epochs": 3,
            # 455 training rows: shards of 228 and 227 rows, 2 and 1 batches unless the
            # trainer evens them out (DDP ranks with different step counts hang)
            "batchSize": 227,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
        }
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(config.model_dump_json())
    prog = [str(THUNDERBOLT)] if THUNDERBOLT.exists() else [sys.executable, "-m", "thunderbolt.cli"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*prog, "train", "--config", str(config_path), "--output", str(out), "--nproc", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "THUNDERBOLT_CPU_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    assert "device cpu (1 threads) x2" in done.stdout
    assert done.stdout.count("epoch 3/3") == 1  # only rank 0 prints
    result = json.loads((out / "result.json").read_text())
    assert result["extra"]["worldSize"] == 2 and result["metrics"]["val_accuracy"] > 0.6
    session = ort.InferenceSession(str(out / "model.onnx"))
    assert session.get_inputs()[0].shape[1] == 30
