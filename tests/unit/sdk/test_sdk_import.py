"""``thunderbolt.sdk`` imports and runs a local Trial where torch, kopf and kubernetes
cannot be imported at all (a fresh interpreter with an import hook refusing them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import importlib.abc, json, sys

BLOCKED = ("torch", "kopf", "kubernetes", "mlflow", "boto3", "onnx", "onnxruntime", "pandas")

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Refuse())
from thunderbolt import sdk

with sdk.init(parameters={"lr": "0.1", "layers": 2}, objective="acc", output=sys.argv[1]) as trial:
    state = trial.load_checkpoint() or {"step": 0}
    for step in range(state["step"] + 1, 4):
        trial.report(step, acc=step / 4, loss=1 / step)
        trial.save_checkpoint({"step": step})
    saved = json.loads(open(trial.checkpoint_uri.removeprefix("file://")).read())
    trial.finish(metrics={"acc": 0.75, "loss": 0.33})
print(json.dumps({"lr": trial.params.float("lr"), "layers": trial.params.int("layers"),
                  "saved": saved["step"],
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
"""


def test_sdk_runs_without_torch_kopf_or_kubernetes(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[3] / "src"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed == {"lr": 0.1, "layers": 2, "saved": 3, "loaded": []}
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "Succeeded" and result["objective"] == 0.75
    # without torch the checkpoint is JSON (read back above); the run succeeded: it is gone
    assert not (tmp_path / "out" / "checkpoints" / "checkpoint.pt").exists()
