"""Models from S3 (a real moto_server) and from the MLflow registry (version and alias)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import tritonclient.http as httpclient

from tests.integration.serving.server_process import ServerProcess, free_port
from tests.unit.serving import onnx_models
from thunderbolt.artifacts import sha256_digest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-never-logged",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # importing moto takes long on a busy machine
    while True:
        try:
            requests.get(endpoint, timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    proc.wait(10)
    log.close()


def _infer(server: ServerProcess, name: str) -> np.ndarray:
    inp = httpclient.InferInput("input", [2, 4], "FP32")
    inp.set_data_from_numpy(np.ones((2, 4), np.float32))
    return httpclient.InferenceServerClient(url=server.url).infer(name, [inp]).as_numpy("output")


def test_serves_from_s3_with_checksum(moto: str, tmp_path: pathlib.Path) -> None:
    import boto3

    data = onnx_models.linear_model()
    s3 = boto3.client(
        "s3",
        endpoint_url=moto,
        **{k.lower(): v for k, v in S3_ENV.items() if "KEY" in k},
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="iris/model.onnx", Body=data)
    env = {**S3_ENV, "AWS_ENDPOINT_URL": moto}
    args = ["--model-uri", "s3://models/iris/model.onnx", "--model-name", "iris"]
    server = ServerProcess(*args, "--checksum", sha256_digest(data), log_dir=tmp_path, env=env)
    try:
        server.wait_ready()
        assert _infer(server, "iris").shape == (2, 3)
    finally:
        assert server.stop() == 0
    assert "testing-secret-never-logged" not in server.logs()
    wrong = ServerProcess(*args, "--checksum", sha256_digest(b"x"), log_dir=tmp_path, env=env)
    assert wrong.proc.wait(120) == 1
    wrong.stop()
    missing = ServerProcess(
        "--model-uri", "s3://models/nope.onnx", "--model-name", "x", log_dir=tmp_path, env=env
    )
    assert missing.proc.wait(120) == 1
    assert "cannot read s3://models/nope.onnx" in missing.logs()
    missing.stop()


def test_serves_a_registered_mlflow_version_and_alias(tmp_path: pathlib.Path) -> None:
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking)  # no global mlflow state for other tests
    model_path = tmp_path / "export" / "model.onnx"
    model_path.parent.mkdir()
    data = onnx_models.linear_model()
    model_path.write_bytes(data)
    experiment = client.create_experiment(
        "serve", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(model_path), artifact_path="model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("iris-classifier")
    version = client.create_model_version(
        "iris-classifier", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias("iris-classifier", "champion", version.version)

    env = {"MLFLOW_TRACKING_URI": tracking}
    for ref in (f"models:/iris-classifier/{version.version}", "models:/iris-classifier@champion"):
        server = ServerProcess(
            "--model-uri", ref, "--checksum", sha256_digest(data), "--model-name", "iris",
            log_dir=tmp_path, env=env,
        )  # fmt: skip
        try:
            server.wait_ready(timeout=180)
            assert _infer(server, "iris").shape == (2, 3)
        finally:
            assert server.stop() == 0
    absent = ServerProcess(
        "--model-uri",
        "models:/iris-classifier@nope",
        "--model-name",
        "iris",
        log_dir=tmp_path,
        env=env,
    )
    assert absent.proc.wait(180) == 1
    assert "cannot fetch models:/iris-classifier@nope" in absent.logs()
    absent.stop()
