"""Where the served model's bytes come from: ``file://``, ``s3://`` or the MLflow registry.

MLflow references (``models:/name/3``, ``models:/name@champion``) are resolved with
``MlflowClient`` to the version's artifact and downloaded with MLflow's own artifact
repositories; mlflow is imported only for that scheme so a plain pod stays light.
"""

from __future__ import annotations

import dataclasses
import pathlib
import tempfile
from urllib.parse import urlparse, urlunparse

from thunderbolt.artifacts import ArtifactError, store_for


@dataclasses.dataclass(frozen=True)
class FetchedModel:
    data: bytes
    source: str  # where the bytes came from, safe to log
    version: str | None = None  # the MLflow model version, when there is one


def redact(uri: str) -> str:
    """A URI with user info and query (presigned tokens) removed, for logs."""
    parsed = urlparse(uri)
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc += f":{parsed.port}"
    return urlunparse(parsed._replace(netloc=netloc, query="", fragment=""))


def parse_mlflow_ref(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name/3`` -> (name, "3", None); ``models:/name@alias`` -> (name, None, alias)."""
    if not uri.startswith("models:/"):
        raise ArtifactError(f"not an MLflow model reference: {uri}")
    ref = uri.removeprefix("models:/").strip("/")
    if "@" in ref:
        name, _, alias = ref.rpartition("@")
        if name and alias and "/" not in alias:
            return name, None, alias
    else:
        name, _, version = ref.rpartition("/")
        if name and version.isdigit():
            return name, version, None
    raise ArtifactError(f"expected models:/<name>/<version> or models:/<name>@<alias>, got {uri}")


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


def _fetch_mlflow(uri: str) -> FetchedModel:
    import mlflow.artifacts  # heavy, and only needed for registry references
    from mlflow.tracking import MlflowClient

    name, version, alias = parse_mlflow_ref(uri)
    client = MlflowClient()
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, str(version))
        download_uri = client.get_model_version_download_uri(name, mv.version)
        with tempfile.TemporaryDirectory(prefix="thunderbolt-model-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=download_uri, dst_path=tmp)
            data = read_onnx_file(pathlib.Path(local), uri)
    except ArtifactError:
        raise
    except Exception as exc:  # MlflowException, boto errors, OSError: the URI is what matters
        raise ArtifactError(f"cannot fetch {uri}: {exc}") from exc
    return FetchedModel(data, f"{uri} (version {mv.version}: {redact(download_uri)})", mv.version)


def fetch_model(uri: str, *, s3_endpoint_url: str | None = None) -> FetchedModel:
    """The model's bytes, from whichever store the URI names."""
    if urlparse(uri).scheme == "models":
        return _fetch_mlflow(uri)
    data = store_for(uri, s3_endpoint_url=s3_endpoint_url).get_bytes(uri)
    return FetchedModel(data, redact(uri))
