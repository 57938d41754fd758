"""Where the served model's bytes come from: ``file://``, ``s3://`` or the MLflow registry.

MLflow references (``models:/name/3``, ``models:/name@champion``) are resolved with
``MlflowClient`` to a version and downloaded by ``thunderbolt.mlflow_onnx`` (the deploy
controller's way too); mlflow is imported only for that scheme so a plain pod stays light.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlparse, urlunparse

from thunderbolt.artifacts import ArtifactError, store_for
from thunderbolt.mlflow_onnx import download_onnx


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


def _fetch_mlflow(uri: str) -> FetchedModel:
    from mlflow.tracking import MlflowClient  # heavy, and only needed for registry references

    name, version, alias = parse_mlflow_ref(uri)
    client = MlflowClient()
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, str(version))
        data, download_uri = download_onnx(client, name, str(mv.version), label=uri)
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
