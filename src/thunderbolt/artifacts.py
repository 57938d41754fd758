"""Artifact stores chosen by URI scheme (``file://``, ``s3://``).

One small interface, one backend per scheme, as MLflow picks its stores. The trainer
uploads models and checkpoints through it; the inference server downloads through it.
S3 uses boto3's standard credential chain; an S3-compatible endpoint (MinIO, moto, Ceph)
comes from ``endpoint_url`` or the ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` env vars.
"""

from __future__ import annotations

import abc
import hashlib
import os
import pathlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse


class ArtifactError(RuntimeError):
    """An artifact could not be read or written; the message names the URI."""


class ArtifactStore(abc.ABC):
    """Contract: keys are full URIs; ``put_bytes`` overwrites; ``get_bytes`` of a
    missing object raises ``ArtifactError`` (never returns empty bytes)."""

    @abc.abstractmethod
    def put_bytes(self, uri: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get_bytes(self, uri: str) -> bytes: ...

    @abc.abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, uri: str) -> None: ...

    @abc.abstractmethod
    def delete_prefix(self, prefix: str, keep: Iterable[str] = ()) -> int:
        """Delete every object under ``prefix/`` except those under a ``keep`` prefix;
        returns how many were deleted. A missing prefix deletes nothing (idempotent)."""


def _under(uri: str, prefixes: Iterable[str]) -> bool:
    """``uri`` is one of ``prefixes`` or lies under one."""
    return any(uri == p.rstrip("/") or uri.startswith(p.rstrip("/") + "/") for p in prefixes)


def check_prefix(prefix: str) -> None:
    """Refuse prefixes too broad to delete under: a bucket's or filesystem's root, ``..``."""
    parsed = urlparse(prefix)
    parts = [p for p in parsed.path.split("/") if p]
    if ".." in parts or "." in parts:
        raise ArtifactError(f"refusing a prefix with '.' or '..': {prefix}")
    least = 1 if parsed.scheme == "s3" else 2
    if len(parts) < least:
        raise ArtifactError(f"refusing to delete everything under {prefix}: too broad")


class FileStore(ArtifactStore):
    @staticmethod
    def _path(uri: str) -> pathlib.Path:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            raise ArtifactError(f"not a file URI: {uri}")
        return pathlib.Path(parsed.netloc + parsed.path if parsed.netloc else parsed.path)

    def put_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    def get_bytes(self, uri: str) -> bytes:
        try:
            return self._path(uri).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read {uri}: {exc.strerror or exc}") from exc

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str, keep: Iterable[str] = ()) -> int:
        check_prefix(prefix)
        root = self._path(prefix.rstrip("/"))
        if not root.is_dir():
            return 0
        keep = list(keep)
        deleted = 0
        for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
            if _under(path.as_uri(), keep):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    if not any(path.iterdir()):
                        path.rmdir()
                else:
                    path.unlink()
                    deleted += 1
            except OSError as exc:
                raise ArtifactError(f"cannot delete {path.as_uri()}: {exc.strerror}") from exc
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        return deleted


class S3Store(ArtifactStore):
    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # imported lazily: file:// users need no boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint_url)
        return self._client

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ArtifactError(f"not an s3://bucket/key URI: {uri}")
        return parsed.netloc, parsed.path.lstrip("/")

    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._split(uri)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:  # botocore raises many types; the URI is what matters
            raise ArtifactError(f"cannot write {uri}: {exc}") from exc

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = self._split(uri)
        try:
            body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise ArtifactError(f"cannot read {uri}: {exc}") from exc
        return body

    def exists(self, uri: str) -> bool:
        bucket, key = self._split(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except Exception:
            return False
        return True

    def delete(self, uri: str) -> None:
        bucket, key = self._split(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def delete_prefix(self, prefix: str, keep: Iterable[str] = ()) -> int:
        """Deletes the current objects; in a versioned bucket that leaves delete markers
        and the older versions go by the bucket's lifecycle rules."""
        check_prefix(prefix)
        bucket, key = self._split(prefix.rstrip("/"))
        keep = list(keep)
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key + "/"
            )
            for page in pages:
                keys = [
                    o["Key"]
                    for o in page.get("Contents", [])
                    if not _under(f"s3://{bucket}/{o['Key']}", keep)
                ]
                if not keys:
                    continue
                answer = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
                )
                errors = answer.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise ArtifactError(
                        f"cannot delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
                        f"({len(errors)} of {len(keys)} failed)"
                    )
                deleted += len(keys)
        except ArtifactError:
            raise
        except Exception as exc:  # botocore raises many types; the prefix is what matters
            raise ArtifactError(f"cannot delete under {prefix}: {exc}") from exc
        return deleted


def store_for(uri: str, *, s3_endpoint_url: str | None = None) -> ArtifactStore:
    """Pick the backend for a URI by its scheme."""
    scheme = urlparse(uri).scheme
    if scheme in ("file", ""):
        return FileStore()
    if scheme == "s3":
        return S3Store(endpoint_url=s3_endpoint_url)
    raise ArtifactError(
        f"unsupported artifact URI scheme {scheme!r} in {uri} (use file:// or s3://)"
    )


def join(prefix: str, *parts: str) -> str:
    """Join URI path segments without doubling slashes."""
    return "/".join([prefix.rstrip("/"), *(p.strip("/") for p in parts)])


def sha256_digest(data: bytes) -> str:
    """The checksum format used everywhere: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_checksum(data: bytes, expected: str) -> None:
    """Raise ``ArtifactError`` unless ``data`` hashes to ``expected`` (``sha256:HEX``)."""
    algo, _, want = expected.partition(":")
    if algo != "sha256" or len(want) != 64:
        raise ArtifactError(f"checksum must look like sha256:<64 hex digits>, got {expected!r}")
    actual = sha256_digest(data)
    if actual != expected.lower():
        raise ArtifactError(f"checksum mismatch: expected {expected}, got {actual}")
