"""A run records the code revision its image provides and what it cost (CPU-seconds, peak
memory): measured by the SDK, carried to the Trial's status, shown by the CLI, and logged
to MLflow (a real local sqlite MLflow)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from mlflow.tracking import MlflowClient

from thunderbolt import sdk
from thunderbolt.api import lineage
from thunderbolt.cli.describe import usage_fields
from thunderbolt.cli.history import render, with_trial
from thunderbolt.operator.trialstatus import derive
from thunderbolt.sdk.usage import CODE_REVISION_ENV, code_revision, measure


def burn(seconds: float) -> None:
    """Busy CPU in a child process, so only RUSAGE_CHILDREN can see it."""
    subprocess.run([sys.executable, "-c", f"import time\nt=time.process_time()\n"
                    f"while time.process_time()-t<{seconds}: pass"], check=True)  # fmt: skip


def test_usage_includes_children_and_peak_memory_is_bytes():
    before = measure()
    assert before is not None
    burn(0.3)
    block = bytearray(64 * 2**20)  # 64 MiB touched in this process
    block[::4096] = b"x" * len(block[::4096])
    after = measure()
    assert after is not None
    assert after.cpu_seconds - before.cpu_seconds >= 0.25
    assert after.peak_memory_bytes >= 64 * 2**20
    del block


def test_code_revision_only_when_well_formed():
    assert code_revision({CODE_REVISION_ENV: "0123abcd" * 5}) == "0123abcd" * 5
    assert code_revision({CODE_REVISION_ENV: " v1.2.3-4-gabc-dirty\n"}) == "v1.2.3-4-gabc-dirty"
    assert code_revision({}) is None
    assert code_revision({CODE_REVISION_ENV: "$(rm -rf /)"}) is None
    assert code_revision({CODE_REVISION_ENV: "a" * 101}) is None


def test_the_result_the_trial_and_mlflow_all_record_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CODE_REVISION_ENV, "f00dfeed" * 5)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = {
        "identity": {"namespace": "ns", "experiment": "iris", "trial": "iris-001",
                     "uid": "u1", "number": 1},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "tracking": {"trackingUri": uri},
    }  # fmt: skip
    with sdk.init(config, output=tmp_path / "out", emit=lambda _m: None) as trial:
        burn(0.2)
        trial.report(1, val_accuracy=0.9)
    result = trial.result
    assert result is not None and result.status == "Succeeded"
    assert result.codeRevision == "f00dfeed" * 5
    assert result.cpuSeconds is not None and result.cpuSeconds >= 0.15
    assert result.peakMemoryBytes is not None and result.peakMemoryBytes > 10 * 2**20

    run = MlflowClient(tracking_uri=uri).get_run(result.mlflowRunId)
    assert run.data.tags[lineage.CODE_REVISION_TAG] == "f00dfeed" * 5
    assert run.data.metrics["cpu_seconds"] == result.cpuSeconds
    assert run.data.metrics["peak_memory_bytes"] == float(result.peakMemoryBytes)

    # The operator reads it from the termination message into the Trial's status.
    message = (tmp_path / "out" / "result.json").read_text()
    body = {"metadata": {"name": "iris-001", "namespace": "ns"},
            "spec": {"objective": {"metric": "val_accuracy"}}, "status": {}}  # fmt: skip
    job = {"metadata": {"name": "iris-001"},
           "status": {"conditions": [{"type": "Complete", "status": "True"}]}}  # fmt: skip
    pod = {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "status": {"phase": "Succeeded", "containerStatuses": [{
               "name": "trainer", "image": "img:1", "imageID": "img@sha256:" + "d" * 64,
               "state": {"terminated": {"exitCode": 0, "message": message}}}]}}  # fmt: skip
    status = derive(body, job, [pod], datetime(2026, 1, 1, tzinfo=UTC)).status
    assert status["codeRevision"] == "f00dfeed" * 5
    assert status["cpuSeconds"] == result.cpuSeconds
    assert status["peakMemoryBytes"] == result.peakMemoryBytes

    shown = dict(usage_fields(status))
    assert shown["Image"] == "img:1@sha256:" + "d" * 64 and shown["Code"] == "f00dfeed" * 5
    assert shown["Peak memory"].endswith(" MiB")
    row = {"revision": 1, "outcome": "Promoted", "trial": "iris-001", "mlflowRunId": "r",
           "mlflowModel": None, "checksum": None, "objective": 0.9, "decision": None,
           "deprecated": None, "servedFrom": None, "reason": "ok"}  # fmt: skip
    wide = render([with_trial(row, {"status": status})], wide=True).splitlines()
    assert "CODE" in wide[0] and "f00dfeedf00d" in wide[1] and "dddddddddddd" in wide[1]
    gone = with_trial(row, None)
    assert gone["codeRevision"] is None and json.dumps(gone)
