"""Downloading a registered MLflow model version's ONNX file: one way, for the inference
server (which serves it) and the deploy controller (which checksums it before rollout).

mlflow is imported only when a download happens, so a plain pod stays light.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Callable
from typing import Any

from thunderbolt.artifacts import ArtifactError


def read_onnx_file(path: pathlib.Path, uri: str) -> bytes:
    """The one ONNX file of a downloaded MLflow model (a file, or a directory; model.onnx wins)."""
    if path.is_file():
        return path.read_bytes()
    candidates = sorted(path.rglob("*.onnx"))
    preferred = [c for c in candidates if c.name == "model.onnx"]
    if len(preferred) == 1 or len(candidates) == 1:
        return (preferred or candidates)[0].read_bytes()
    found = [str(c.relative_to(path)) for c in candidates]
    raise ArtifactError(f"{uri}: expected one .onnx file in the model's artifacts, found {found}")


def download_onnx(
    client: Any,
    name: str,
    version: str,
    *,
    tracking_uri: str | None = None,
    label: str = "",
    read: Callable[[pathlib.Path], bytes] | None = None,
) -> tuple[bytes, str]:
    """The ONNX bytes of model ``name`` version ``version`` and the URI they came from.

    ``client`` is an ``MlflowClient``; ``label`` names the model in errors (default: the
    download URI); ``read`` replaces ``read_onnx_file`` where a caller maps its error.
    Other errors come from MLflow or the store.
    """
    import mlflow.artifacts  # heavy, and only needed for registry references

    download_uri = client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="thunderbolt-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=download_uri, dst_path=tmp, tracking_uri=tracking_uri
        )
        path = pathlib.Path(local)
        data = read(path) if read else read_onnx_file(path, label or download_uri)
        return data, download_uri
