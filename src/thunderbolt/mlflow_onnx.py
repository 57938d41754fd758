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
    max_bytes: int | None = None,
) -> tuple[bytes, str]:
    """The ONNX bytes of model ``name`` version ``version`` and the URI they came from.

    ``client`` is an ``MlflowClient``; ``label`` names the model in errors (default: the
    download URI); ``read`` replaces ``read_onnx_file`` where a caller maps its error.
    With ``max_bytes`` the artifacts' listed sizes are summed first and a larger model is
    refused before anything is written (and checked again on disk, for stores that list
    no sizes). Other errors come from MLflow or the store.
    """
    import mlflow.artifacts  # heavy, and only needed for registry references

    download_uri = client.get_model_version_download_uri(name, version)
    what = label or download_uri
    if max_bytes is not None:
        listed = _listed_bytes(mlflow.artifacts, download_uri, tracking_uri)
        _check_size(listed, max_bytes, what)
    with tempfile.TemporaryDirectory(prefix="thunderbolt-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=download_uri, dst_path=tmp, tracking_uri=tracking_uri
        )
        path = pathlib.Path(local)
        if max_bytes is not None:
            on_disk = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            _check_size(on_disk if path.is_dir() else path.stat().st_size, max_bytes, what)
        data = read(path) if read else read_onnx_file(path, what)
        return data, download_uri


def _listed_bytes(artifacts: Any, uri: str, tracking_uri: str | None, depth: int = 0) -> int:
    """Sum of the listed file sizes under ``uri`` (unknown sizes count as 0)."""
    total = 0
    for info in artifacts.list_artifacts(artifact_uri=uri, tracking_uri=tracking_uri) or []:
        if info.is_dir and depth < 8:
            child = f"{uri.rstrip('/')}/{info.path.rsplit('/', 1)[-1]}"
            total += _listed_bytes(artifacts, child, tracking_uri, depth + 1)
        else:
            total += int(info.file_size or 0)
    return total


def _check_size(size: int, max_bytes: int, what: str) -> None:
    if size > max_bytes:
        raise ModelTooLarge(f"{what}: {size} bytes of artifacts; at most {max_bytes} are fetched")


class ModelTooLarge(ArtifactError):
    """A model whose artifacts exceed the download limit; nothing more is fetched."""
