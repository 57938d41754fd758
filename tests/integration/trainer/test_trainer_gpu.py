"""CUDA paths: autocast training and torchrun over every GPU. Skipped without a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thunderbolt.api.trainer_config import TrainerConfig

pytestmark = pytest.mark.gpu
THUNDERBOLT = Path(sys.executable).parent / "thunderbolt"


def _config(epochs: int = 5) -> TrainerConfig:
    return TrainerConfig.model_validate(
        {
            "parameters": {"learning_rate": 0.02, "spectral_norm": True},
            "dataset": {"uri": "builtin://digits"},
            "epochs": epochs,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
        }
    )


def test_cuda_training_under_autocast_exports_a_float32_model(tmp_path: Path) -> None:
    import torch

    from thunderbolt.trainer.loop import autocast_dtype
    from thunderbolt.trainer.run import train

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    assert autocast_dtype(torch.device("cuda")) in (torch.bfloat16, torch.float16)
    result, code = train(_config(), str(tmp_path / "out"), emit=lambda m: None)
    assert code == 0, result
    assert result.extra["device"].startswith("cuda")
    assert result.metrics["val_accuracy"] > 0.8
    assert result.onnxMaxAbsDiff is not None and result.onnxMaxAbsDiff <= 1e-4


def test_more_than_one_gpu_trains_under_torchrun_automatically(tmp_path: Path) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs at least two GPUs")
    config_path = tmp_path / "config.json"
    config_path.write_text(_config(3).model_dump_json())
    prog = [str(THUNDERBOLT)] if THUNDERBOLT.exists() else [sys.executable, "-m", "thunderbolt.cli"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*prog, "train", "--config", str(config_path), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["extra"]["worldSize"] == torch.cuda.device_count()
