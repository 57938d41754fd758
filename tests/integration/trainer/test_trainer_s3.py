"""Datasets from, and models and checkpoints to, a real S3-speaking server (moto_server)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from sklearn.datasets import load_wine

from tests.fixtures.servers import S3Server, s3_server  # noqa: F401
from thunderbolt.api.trainer_config import TrainerConfig

THUNDERBOLT = Path(sys.executable).parent / "thunderbolt"


def test_trains_on_an_s3_dataset_uploads_model_and_result_and_clears_its_checkpoint(
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    data_bucket = s3_server.bucket("datasets")
    model_bucket = s3_server.bucket("models")
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    s3 = s3_server.client()
    s3.put_object(Bucket="datasets", Key="wine/train.parquet", Body=buf.getvalue())
    # versions show that the checkpoint was written during training, then deleted
    s3.put_bucket_versioning(Bucket="models", VersioningConfiguration={"Status": "Enabled"})
    config = TrainerConfig.model_validate(
        {
            "identity": {"namespace": "ns", "experiment": "wine", "trial": "wine-001"},
            "parameters": {"learning_rate": 0.02},
            "dataset": {"uri": f"{data_bucket}/wine/train.parquet", "target": "cultivar"},
            "epochs": 5,
            "objective": {"metric": "val_f1", "direction": "maximize"},
            "artifacts": {"uri": f"{model_bucket}/trials"},
            "checkpointUri": f"{model_bucket}/checkpoints/wine-001",
        }
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(config.model_dump_json())
    # the endpoint comes from the environment, as in a pod with AWS_ENDPOINT_URL_S3 set
    env = {**os.environ, **s3_server.env, "THUNDERBOLT_CPU_THREADS": "1"}
    prog = [str(THUNDERBOLT)] if THUNDERBOLT.exists() else [sys.executable, "-m", "thunderbolt.cli"]
    out = tmp_path / "out"
    done = subprocess.run(
        [*prog, "train", "--config", str(config_path), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["modelUri"] == "s3://models/trials/ns/wine/wine-001/model.onnx"
    body = s3.get_object(Bucket="models", Key="trials/ns/wine/wine-001/model.onnx")["Body"].read()
    assert "sha256:" + hashlib.sha256(body).hexdigest() == result["modelChecksum"]
    uploaded = json.loads(
        s3.get_object(Bucket="models", Key="trials/ns/wine/wine-001/result.json")["Body"].read()
    )
    assert uploaded["modelChecksum"] == result["modelChecksum"]
    # checkpoints went to S3 every epoch, and a Succeeded run removed them (retention)
    key = "checkpoints/wine-001/checkpoint.pt"
    history = s3.list_object_versions(Bucket="models", Prefix=key)
    assert len(history.get("Versions", [])) >= 1, history
    assert [m["IsLatest"] for m in history.get("DeleteMarkers", [])] == [True], history
    assert s3_server.env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr


def test_missing_s3_object_is_a_dataset_error_naming_the_uri(
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
    monkeypatch,
) -> None:
    from thunderbolt.trainer.run import train

    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.bucket("datasets")
    config = TrainerConfig.model_validate(
        {
            "dataset": {"uri": f"{bucket}/nope.csv"},
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
        }
    )
    result, code = train(config, str(tmp_path / "out"), emit=lambda m: None)
    assert result.reason == "DatasetError" and code == 3
    assert f"{bucket}/nope.csv" in (result.message or "")
    assert result.objective is None
