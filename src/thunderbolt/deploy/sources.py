"""Model sources: what a ModelDeployment's ``spec.model`` names, resolved to a URI + checksum.

One small interface, one class per kind (``trialRef``, ``mlflowModel``, ``uri``), like
Optuna's storages. Contract of ``resolve``:

- returns a ``ResolvedModel`` whose ``uri`` the serving pod can fetch and whose
  ``checksum`` the pod verifies before it reports ready;
- raises ``SourceNotReady`` when the answer may change by itself (Trial still running,
  registry unreachable): the controller retries and keeps serving what it serves;
- raises ``SourceRefused`` when the named model cannot be verified (no artifact, checksum
  mismatch): the controller records a ``Refused`` history entry and keeps serving.

The operator fetches from MLflow with its own network access, so a user-named
``trackingUri`` is checked against a ``SourcePolicy`` first (allowed hosts, no ``file://``
unless allowed, a download cap), and failures put a short reason and the HTTP code in the
status, never what the server answered.

MLflow versions are pinned: an alias is resolved here, and the pod gets
``models:/<name>/<version>``, so an alias move is a controlled rollout, never a pod restart
that silently picks up another model.
"""

from __future__ import annotations

import abc
import dataclasses
import fnmatch
import math
import os
import pathlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from thunderbolt.api import lineage
from thunderbolt.api.lineage import tagged_checksum
from thunderbolt.api.modeldeployment import MlflowModelRef, ModelSource, Revision
from thunderbolt.artifacts import ArtifactError, sha256_digest
from thunderbolt.mlflow_onnx import ModelTooLarge, download_onnx, read_onnx_file
from thunderbolt.settings import DEFAULT_MAX_MODEL_BYTES, OperatorSettings


@dataclasses.dataclass(frozen=True)
class SourcePolicy:
    """Where the operator itself may fetch models from, and how much.

    ``hosts``: host or host:port patterns (fnmatch; "*" allows any); empty allows only
    the operator's own MLflow. ``file://`` tracking URIs would read the operator's own
    filesystem and are refused unless ``allow_file``.
    """

    hosts: tuple[str, ...] = ()
    allow_file: bool = False
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES
    # Refuse MLflow versions that carry no checksum tag (on the version or its run).
    require_checksum_tag: bool = False

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> SourcePolicy:
        hosts = settings.model_source_hosts
        if not hosts and settings.mlflow_tracking_uri:
            own = urlparse(settings.mlflow_tracking_uri).netloc.rsplit("@", 1)[-1].lower()
            hosts = (own,) if own else ()
        return cls(
            hosts,
            settings.allow_file_sources,
            settings.max_model_bytes,
            settings.require_checksum_tag,
        )

    def check(self, uri: str) -> None:
        """Raises SourceRefused unless the operator may talk to ``uri``."""
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme in ("", "file"):
            if self.allow_file:
                return
            raise SourceRefused(
                "SourceNotAllowed",
                "file:// tracking URIs are refused (they name the operator's own files); "
                "the operator setting THUNDERBOLT_ALLOW_FILE_SOURCES allows them",
            )
        if scheme not in ("http", "https"):
            raise SourceRefused(
                "SourceNotAllowed", f"tracking URI scheme {scheme!r} is not http(s)"
            )
        host, netloc = (parsed.hostname or "").lower(), parsed.netloc.rsplit("@", 1)[-1].lower()
        if not any(fnmatch.fnmatch(host, p) or fnmatch.fnmatch(netloc, p) for p in self.hosts):
            raise SourceRefused(
                "SourceNotAllowed",
                f"MLflow host {netloc!r} is not in the operator's allowed model-source hosts "
                "(THUNDERBOLT_MODEL_SOURCE_HOSTS / chart value modelSources.allowedHosts)",
            )


class SourceNotReady(Exception):
    """Retry later; nothing is wrong with what is serving."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SourceRefused(Exception):
    """The named model cannot be verified and is never deployed."""

    def __init__(self, reason: str, message: str, model: ResolvedModel | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.model = model  # what was named, for the history entry


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    uri: str
    checksum: str | None
    source: str
    trial: str | None = None
    experiment: str | None = None
    objective: float | None = None
    objective_metric: str | None = None
    mlflow_name: str | None = None
    mlflow_version: str | None = None
    mlflow_url: str | None = None
    mlflow_run: str | None = None
    note: str | None = None  # e.g. "alias champion -> version 3", for events and history
    checksum_tagged: bool = False  # the checksum came from a tag the bytes matched
    validation: str | None = None  # the Trial's validation verdict (Pass | Warn | Fail)

    def identity(self) -> tuple[str, str | None]:
        """Two sources naming the same bytes at the same place are the same model."""
        return (self.uri, self.checksum)

    def revision(self, number: int, deployed_at: str | None) -> Revision:
        return Revision(
            number=number,
            modelUri=self.uri,
            modelChecksum=self.checksum,
            source=self.source,
            trial=self.trial,
            experiment=self.experiment,
            objective=self.objective,
            objectiveMetric=self.objective_metric,
            mlflowModelName=self.mlflow_name,
            mlflowModelVersion=self.mlflow_version,
            mlflowModelUrl=self.mlflow_url,
            mlflowRunId=self.mlflow_run,
            deployedAt=deployed_at,
        )

    @classmethod
    def from_revision(cls, revision: Revision, source: str) -> ResolvedModel:
        return cls(
            uri=revision.modelUri or "",
            checksum=revision.modelChecksum,
            source=source,
            trial=revision.trial,
            experiment=revision.experiment,
            objective=revision.objective,
            objective_metric=revision.objectiveMetric,
            mlflow_name=revision.mlflowModelName,
            mlflow_version=revision.mlflowModelVersion,
            mlflow_url=revision.mlflowModelUrl,
            mlflow_run=revision.mlflowRunId,
        )


def identity_of(revision: Revision) -> tuple[str, str | None]:
    return (revision.modelUri or "", revision.modelChecksum)


class Source(abc.ABC):
    """One kind of ``spec.model``."""

    @abc.abstractmethod
    def resolve(self, model: ModelSource) -> ResolvedModel: ...


class UriSource(Source):
    """``uri`` + ``checksum``: nothing to look up; the pod verifies the bytes."""

    def resolve(self, model: ModelSource) -> ResolvedModel:
        if model.uri is None or model.checksum is None:
            raise SourceRefused("InvalidSource", "model.uri needs model.checksum")
        return ResolvedModel(uri=model.uri, checksum=model.checksum, source="uri")


class TrialSource(Source):
    """``trialRef``: a Succeeded Trial's exported model (status.modelUri, modelChecksum)."""

    def __init__(self, get_trial: Callable[[str], dict[str, Any] | None]) -> None:
        self.get_trial = get_trial

    def resolve(self, model: ModelSource) -> ResolvedModel:
        name = model.trialRef or ""
        trial = self.get_trial(name)
        if trial is None:
            raise SourceNotReady("TrialNotFound", f"Trial {name} does not exist (yet)")
        status = trial.get("status") or {}
        phase = status.get("phase", "Pending")
        if phase in ("Failed", "Pruned"):
            raise SourceRefused("TrialNotSucceeded", f"Trial {name} is {phase}: it has no model")
        if phase != "Succeeded":
            raise SourceNotReady(
                "TrialNotFinished", f"Trial {name} is {phase}; waiting for Succeeded"
            )
        uri, checksum = status.get("modelUri"), status.get("modelChecksum")
        if not uri or not checksum:
            raise SourceRefused(
                "TrialHasNoModel", f"Trial {name} succeeded without modelUri and modelChecksum"
            )
        objective = status.get("objective")
        spec = trial.get("spec") or {}
        return ResolvedModel(
            uri=uri,
            checksum=checksum,
            source=f"trial/{name}",
            trial=name,
            experiment=spec.get("experiment"),
            objective=float(objective) if objective is not None else None,
            objective_metric=(spec.get("objective") or {}).get("metric"),
            mlflow_version=status.get("mlflowModelVersion"),
            mlflow_run=status.get("mlflowRunId"),
            validation=(status.get("validation") or {}).get("verdict"),
        )


def read_onnx(path: pathlib.Path) -> bytes:
    """The one ONNX file in a downloaded MLflow model, found as the server finds it."""
    try:
        return read_onnx_file(path, str(path))
    except ArtifactError as exc:
        raise SourceRefused("NoSingleOnnxFile", str(exc)) from exc


def model_version_url(tracking_uri: str | None, name: str, version: str) -> str | None:
    if not tracking_uri or urlparse(tracking_uri).scheme not in ("http", "https"):
        return None
    return f"{tracking_uri.rstrip('/')}/#/models/{name}/versions/{version}"


def run_objective(
    metric: str | None, tags: dict[str, str], metrics: dict[str, float]
) -> tuple[float | None, str | None]:
    """The objective a run records for ``metric`` (default: the metric its Trial optimized).

    The trainer's ``thunderbolt.objective`` tag is the Trial's own objective (e.g. a
    cross-validated mean) and wins when it measures the same metric; otherwise the run's
    last logged value of the metric. (None, metric) when the run has neither.
    """
    tagged_metric = tags.get(lineage.OBJECTIVE_METRIC_TAG)
    metric = metric or tagged_metric
    if metric is None:
        return None, None
    if metric == tagged_metric and tags.get(lineage.OBJECTIVE_TAG):
        try:
            value = float(tags[lineage.OBJECTIVE_TAG])
        except ValueError:
            value = None
        if value is not None and math.isfinite(value):
            return value, metric
    logged = metrics.get(metric)
    if logged is None or not math.isfinite(float(logged)):
        return None, metric
    return float(logged), metric


class MlflowSource(Source):
    """``mlflowModel``: a registered version, or an alias resolved to one.

    The artifact is downloaded once per version and hashed: a checksum tag on the version
    or its run must match it, and without a tag the computed hash is what the pod checks
    (or, when the policy or the ref requires tags, the version is refused). The objective
    comes from the version's run. Results (and refusals) are cached per version, so
    polling an alias costs one lookup; the deprecation tag is read on every lookup.
    """

    def __init__(
        self, default_tracking_uri: str | None = None, policy: SourcePolicy | None = None
    ) -> None:
        self.default_tracking_uri = default_tracking_uri
        self.policy = policy or SourcePolicy(hosts=("*",), allow_file=True)
        self._cache: dict[tuple[str, str, str, str], ResolvedModel | SourceRefused] = {}
        # The registry is polled from a timer: fail fast instead of MLflow's long retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

    def tracking_uri(self, ref: MlflowModelRef) -> str:
        uri = ref.trackingUri or self.default_tracking_uri
        if not uri:
            raise SourceRefused(
                "NoTrackingUri", "mlflowModel needs trackingUri (or the operator's MLflow URI)"
            )
        return uri

    def resolve(self, model: ModelSource) -> ResolvedModel:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:  # an operator installed without the "operator" extra
            raise SourceRefused(
                "MlflowUnavailable", f"the operator cannot import mlflow: {exc}"
            ) from exc

        ref = model.mlflowModel
        if ref is None:
            raise SourceRefused("InvalidSource", "no mlflowModel")
        tracking = self.tracking_uri(ref)
        self.policy.check(tracking)
        client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
        try:
            if ref.alias is not None:
                mv = client.get_model_version_by_alias(ref.name, ref.alias)
            else:
                mv = client.get_model_version(ref.name, str(ref.version))
        except Exception as exc:  # MlflowException or a connection error: both may pass
            raise SourceNotReady(
                "RegistryLookupFailed",
                f"MLflow {ref.name}@{ref.alias or ref.version}: {failure(exc)}",
            ) from exc
        version = str(mv.version)
        key = (tracking, ref.name, version, ref.objectiveMetric or "")
        cached = self._cache.get(key)
        if cached is None:
            cached = self._verify(client, tracking, ref, version, mv)
            self._cache[key] = cached
        note = f"alias {ref.alias} -> version {version}" if ref.alias else None
        if isinstance(cached, SourceRefused):
            raise cached
        if lineage.is_deprecated(dict(mv.tags or {})):
            raise SourceRefused(
                "Deprecated",
                f"MLflow {ref.name} version {version} is tagged {lineage.DEPRECATED_TAG}",
                dataclasses.replace(cached, note=note),
            )
        if not cached.checksum_tagged and (
            ref.requireChecksumTag or self.policy.require_checksum_tag
        ):
            where = "spec" if ref.requireChecksumTag else "the operator"
            raise SourceRefused(
                "ChecksumTagMissing",
                f"MLflow {ref.name} version {version} has no {lineage.CHECKSUM_TAG} tag on "
                f"the version or its run, and {where} requires one",
                dataclasses.replace(cached, note=note),
            )
        return dataclasses.replace(cached, note=note)

    def _verify(
        self, client: Any, tracking: str, ref: MlflowModelRef, version: str, mv: Any
    ) -> ResolvedModel | SourceRefused:
        name = ref.name
        run_id = getattr(mv, "run_id", None) or None
        run_tags: dict[str, str] = {}
        run_metrics: dict[str, float] = {}
        if run_id:
            try:
                run = client.get_run(run_id)
                run_tags = dict(run.data.tags)
                run_tags.update({k: str(v) for k, v in run.data.params.items()})
                run_metrics = dict(run.data.metrics)
            except Exception:  # the run may be deleted; its tags are only a hint
                run_tags = {}
        version_tags = dict(mv.tags or {})
        objective, metric = run_objective(ref.objectiveMetric, run_tags, run_metrics)
        named = ResolvedModel(
            uri=f"models:/{name}/{version}",
            checksum=None,
            source=f"mlflow/{name}/{version}",
            trial=version_tags.get(lineage.TRIAL_TAG) or run_tags.get(lineage.TRIAL_TAG),
            experiment=version_tags.get(lineage.EXPERIMENT_TAG)
            or run_tags.get(lineage.EXPERIMENT_TAG),
            objective=objective,
            objective_metric=metric,
            mlflow_name=name,
            mlflow_version=version,
            mlflow_url=model_version_url(tracking, name, version),
            mlflow_run=run_id,
        )
        claimed = tagged_checksum(version_tags, run_tags)
        try:
            data, _ = download_onnx(
                client, name, version, tracking_uri=tracking, read=read_onnx,
                label=f"MLflow {name} version {version}", max_bytes=self.policy.max_bytes,
            )  # fmt: skip
        except SourceRefused as exc:
            exc.model = named
            return exc
        except ModelTooLarge as exc:
            return SourceRefused("ModelTooLarge", str(exc), named)
        except Exception as exc:
            return SourceRefused(
                "ArtifactUnavailable",
                f"MLflow {name} version {version}: cannot download its artifact: {failure(exc)}",
                named,
            )
        actual = sha256_digest(data)
        if claimed is not None and claimed != actual:
            return SourceRefused(
                "ChecksumMismatch",
                f"MLflow {name} version {version}: tagged {claimed} but the artifact is {actual}",
                dataclasses.replace(named, checksum=claimed),
            )
        return dataclasses.replace(named, checksum=actual, checksum_tagged=claimed is not None)


_ERROR_CODE = re.compile(r"^[A-Z][A-Z_]{0,63}$")


def failure(exc: BaseException) -> str:
    """What went wrong, for a status message: the error's type, MLflow's error code and the
    HTTP status, never the text, which may quote what the (user-named) server answered."""
    parts = [type(exc).__name__]
    code = getattr(exc, "error_code", None)
    if isinstance(code, str) and _ERROR_CODE.match(code):
        parts.append(code)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is None and hasattr(exc, "get_http_status_code"):
        try:
            status = exc.get_http_status_code()
        except Exception:  # noqa: BLE001 — only a detail of the message
            status = None
    if isinstance(status, int):
        parts.append(f"HTTP {status}")
    return " ".join(parts)


class Resolver:
    """Picks the source class for a ``spec.model``; the handler builds one per operator."""

    def __init__(
        self, trials: TrialSource, mlflow: MlflowSource, uri: UriSource | None = None
    ) -> None:
        self.trials = trials
        self.mlflow = mlflow
        self.uri = uri or UriSource()

    def for_model(self, model: ModelSource) -> Source:
        if model.trialRef is not None:
            return self.trials
        if model.mlflowModel is not None:
            return self.mlflow
        return self.uri

    def resolve(self, model: ModelSource) -> ResolvedModel:
        return self.for_model(model).resolve(model)
