"""Model sources: registry references, safe-to-log URIs, finding the .onnx in an artifact."""

from __future__ import annotations

import pathlib

import pytest

from thunderbolt.artifacts import ArtifactError
from thunderbolt.mlflow_onnx import read_onnx_file
from thunderbolt.serving.source import fetch_model, parse_mlflow_ref, redact


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/iris/3", ("iris", "3", None)),
        ("models:/iris@champion", ("iris", None, "champion")),
        ("models:/team/iris-classifier/12", ("team/iris-classifier", "12", None)),
    ],
)
def test_mlflow_references(uri: str, expected: tuple[str, str | None, str | None]) -> None:
    assert parse_mlflow_ref(uri) == expected


@pytest.mark.parametrize(
    "uri", ["models:/iris", "models:/iris/latest", "models:/@x", "models:/iris@", "s3://b/k"]
)
def test_malformed_mlflow_references(uri: str) -> None:
    with pytest.raises(ArtifactError):
        parse_mlflow_ref(uri)


def test_redact_drops_credentials_and_tokens() -> None:
    uri = "https://user:secret@minio.local:9000/models/iris.onnx?X-Amz-Signature=abc#frag"
    assert redact(uri) == "https://minio.local:9000/models/iris.onnx"
    assert redact("s3://models/iris.onnx") == "s3://models/iris.onnx"


def test_onnx_file_found_inside_an_artifact_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "net.onnx").write_bytes(b"one")
    (tmp_path / "MLmodel").write_text("flavors: {}")
    assert read_onnx_file(tmp_path, "u") == b"one"
    (tmp_path / "model.onnx").write_bytes(b"preferred")
    assert read_onnx_file(tmp_path, "u") == b"preferred"
    (tmp_path / "model.onnx").unlink()
    (tmp_path / "other.onnx").write_bytes(b"two")
    with pytest.raises(ArtifactError, match="expected one .onnx"):
        read_onnx_file(tmp_path, "u")


def test_file_uri_is_fetched_and_unknown_schemes_are_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"bytes")
    fetched = fetch_model(path.as_uri())
    assert fetched.data == b"bytes" and fetched.version is None
    with pytest.raises(ArtifactError, match="unsupported"):
        fetch_model("ftp://host/m.onnx")
