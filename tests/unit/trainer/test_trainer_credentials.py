"""MLflow credentials reach MLflow from env or mounted files and are never shown."""

from __future__ import annotations

import os

from thunderbolt.sdk.tracking import load_credential_files, redact, run_url


def test_mlflow_credentials_can_come_from_mounted_files(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("tok-123\n")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "explicit")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME_FILE", str(tmp_path / "missing"))
    load_credential_files()
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "tok-123"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "explicit"


def test_credentials_are_removed_from_uris_before_they_are_shown():
    assert redact("https://bob:s3cret@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    url = run_url("https://bob:s3cret@mlflow.example", "3", "abc")
    assert url == "https://mlflow.example/#/experiments/3/runs/abc"
