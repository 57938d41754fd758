"""``thunderbolt check mlflow``: Trials vs the runs the SDK really wrote to MLflow (a local
sqlite MLflow, no server), with each kind of disagreement introduced on purpose."""

from __future__ import annotations

from tests.fixtures.mlflow_runs import train
from thunderbolt.cli.check import compare, fetch_runs, render


def test_the_records_agree_and_each_kind_of_disagreement_is_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sqlite MLflow keeps artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = [train(uri, tmp_path, n, 0.8 + n / 100) for n in range(3)]
    runs = fetch_runs(uri, "ns", "iris", "iris")
    assert len(runs) == 3
    clean = compare("iris", trials, runs)
    assert clean.findings == [] and clean.agreement == 1.0
    # per Trial: run, uid, objective, checksum, switch, version, version checksum; + 3 orphans
    assert clean.checks == 3 * 7 + 3 and clean.unchecked == 0
    assert "100.00% agreement" in render(clean)

    trials[0]["status"]["objective"] = 0.5
    trials[1]["status"]["modelChecksum"] = "sha256:" + "f" * 64
    trials[1]["status"]["mlflowModelVersion"] = "9"
    trials[1]["status"]["switches"] = {"spectral_norm": True}
    missing = {"metadata": {"name": "iris-007", "uid": "u7"},
               "status": {"phase": "Succeeded", "mlflowRunId": "0" * 32}}  # fmt: skip
    untracked = {"metadata": {"name": "iris-008", "uid": "u8"}, "status": {"phase": "Pruned"}}
    failed_early = {"metadata": {"name": "iris-009", "uid": "u9"}, "status": {"phase": "Failed"}}
    report = compare("iris", [trials[0], trials[1], missing, untracked, failed_early], runs)
    kinds = sorted((f.kind, f.trial) for f in report.findings)
    assert kinds == [
        ("ChecksumDiffers", "iris-001"),  # the run's tag
        ("ChecksumDiffers", "iris-001"),  # the version's tag
        ("ModelVersionDiffers", "iris-001"),
        ("ObjectiveDiffers", "iris-000"),
        ("OrphanRun", "iris-002"),  # its Trial was deleted
        ("RunMissing", "iris-007"),
        ("SwitchDiffers", "iris-001"),
        ("TrialWithoutRun", "iris-008"),
    ]
    assert report.agreement < 1.0 and report.as_json()["disagreements"] == 8
    assert "ObjectiveDiffers" in render(report)
