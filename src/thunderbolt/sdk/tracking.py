"""Experiment tracking: MLflow when configured, nothing otherwise.

Tracking is a record of the run, not the run itself: an unreachable MLflow must never
lose the model. Every call retries with a short bounded backoff; after that the tracker
records ``error`` (reported as ``trackingError``), stops calling MLflow, and training
goes on. Credentials reach MLflow only through its own env vars or mounted files
(``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``); URIs are
redacted before they are printed or recorded.
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse, urlunparse

from thunderbolt.api import lineage
from thunderbolt.api.trainer_config import TrainerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

# delays between attempts; the sum bounds how long a down MLflow can stall the run
BACKOFF_S = (0.25, 0.5, 1.0, 2.0)


class Tracker(Protocol):
    run_id: str | None
    run_url: str | None
    error: str | None

    def start(self, experiment: str, run_name: str, params: dict[str, Any],
              tags: dict[str, str]) -> None: ...  # fmt: skip

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, local_path: str, artifact_path: str) -> str | None:
        """Upload a file; returns a ``runs:/`` URI for it, or None when not tracked."""
        ...

    def register(
        self, model_name: str, artifact_path: str, tags: dict[str, str] | None = None
    ) -> str | None:
        """Register the logged artifact directory as a model version with ``tags`` (also
        set on the run); returns the version."""
        ...

    def set_tags(self, tags: dict[str, str]) -> None:
        """Add tags to the run (the objective, once it is known)."""
        ...

    def finish(self, status: str) -> None: ...


class NullTracker:
    run_id: str | None = None
    run_url: str | None = None
    error: str | None = None

    def start(self, experiment: str, run_name: str, params: dict[str, Any],
              tags: dict[str, str]) -> None:  # fmt: skip
        return None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        return None

    def log_artifact(self, local_path: str, artifact_path: str) -> str | None:
        return None

    def register(
        self, model_name: str, artifact_path: str, tags: dict[str, str] | None = None
    ) -> str | None:
        return None

    def set_tags(self, tags: dict[str, str]) -> None:
        return None

    def finish(self, status: str) -> None:
        return None


def redact(uri: str) -> str:
    """Drop user:password@ from a URI before it is shown anywhere."""
    parsed = urlparse(uri)
    if parsed.username is None and parsed.password is None:
        return uri
    host = parsed.hostname or ""
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    return urlunparse(parsed._replace(netloc=netloc))


class MlflowTracker:
    def __init__(self, tracking_uri: str, *, backoff: tuple[float, ...] = BACKOFF_S,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        # MLflow's own HTTP retries back off for minutes; ours are bounded instead.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        load_credential_files()
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.backoff = backoff
        self.sleep = sleep
        self.run_id: str | None = None
        self.run_url: str | None = None
        self.error: str | None = None
        self.artifact_uri: str | None = None

    def _call(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run ``fn`` with bounded retries; after the last failure, stop tracking."""
        if self.error is not None:
            return None
        for attempt in range(len(self.backoff) + 1):
            try:
                return fn()
            except Exception as exc:  # MLflow and requests raise many types
                if _is_client_error(exc) or attempt == len(self.backoff):
                    message = _short(exc).replace(self.tracking_uri, redact(self.tracking_uri))
                    self.error = f"MLflow {what} failed: {message}"
                    log.warning("%s; training continues without tracking", self.error)
                    return None
                self.sleep(self.backoff[attempt])
        return None

    def start(self, experiment: str, run_name: str, params: dict[str, Any],
              tags: dict[str, str]) -> None:  # fmt: skip
        from mlflow.entities import Param

        experiment_id = self._call("experiment lookup", lambda: self._experiment_id(experiment))
        if experiment_id is None:
            return
        trial_uid = tags.get("thunderbolt.trial_uid", "")
        run = self._call(
            "run creation",
            lambda: (
                self._unfinished_run(experiment_id, trial_uid)
                or self.client.create_run(experiment_id, run_name=run_name or None, tags=tags)
            ),
        )
        if run is None:
            return
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        self.run_url = run_url(self.tracking_uri, experiment_id, run.info.run_id)
        batch = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        self._call("param logging", lambda: self.client.log_batch(run.info.run_id, params=batch))

    def _unfinished_run(self, experiment_id: str, trial_uid: str) -> Any:
        """The run a restarted pod of the same Trial left RUNNING: continue it, not a new one."""
        if not trial_uid or "'" in trial_uid:
            return None
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`thunderbolt.trial_uid` = '{trial_uid}' "
            "and attributes.status = 'RUNNING'",
            max_results=1,
        )
        return found[0] if found else None

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name))
        except Exception as exc:  # a parallel Trial created it first: use theirs
            if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise
            again = self.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        run_id = self.run_id
        self._call("metric logging", lambda: self.client.log_batch(run_id, metrics=batch))

    def log_artifact(self, local_path: str, artifact_path: str) -> str | None:
        if self.run_id is None:
            return None
        run_id = self.run_id

        def upload() -> bool:
            self.client.log_artifact(run_id, local_path, artifact_path)
            return True

        if self._call("artifact upload", upload) is None:
            return None
        return f"runs:/{run_id}/{artifact_path}/{os.path.basename(local_path)}"

    def register(
        self, model_name: str, artifact_path: str, tags: dict[str, str] | None = None
    ) -> str | None:
        if self.run_id is None or self.artifact_uri is None:
            return None
        source = f"{self.artifact_uri.rstrip('/')}/{artifact_path}"
        run_id = self.run_id
        tags = dict(tags or {})
        if tags:  # the run first: a version is never tagged with what its run lacks
            self.set_tags(tags)

        def create() -> str:
            try:
                self.client.create_registered_model(model_name)
            except Exception as exc:  # registered by an earlier Trial: that is the point
                if "RESOURCE_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                    raise
            version = self.client.create_model_version(
                model_name, source, run_id=run_id, tags=tags or None
            )
            return str(version.version)

        return self._call("model registration", create)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.run_id is None or not tags:
            return
        from mlflow.entities import RunTag

        run_id = self.run_id
        batch = [RunTag(k, str(v)) for k, v in sorted(tags.items())]
        self._call("run tagging", lambda: self.client.log_batch(run_id, tags=batch))

    def finish(self, status: str) -> None:
        if self.run_id is None:
            return
        run_id = self.run_id
        self._call("run completion", lambda: self.client.set_terminated(run_id, status=status))


CREDENTIAL_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def load_credential_files() -> None:
    """``MLFLOW_TRACKING_TOKEN_FILE=/path`` (a mounted Secret) -> ``MLFLOW_TRACKING_TOKEN``.

    MLflow reads credentials only from env vars; Secrets mounted as files rotate without
    a pod restart and stay out of ``kubectl describe``. An explicit env var wins.
    """
    for name in CREDENTIAL_VARS:
        path = os.environ.get(f"{name}_FILE")
        if path and not os.environ.get(name):
            try:
                os.environ[name] = pathlib.Path(path).read_text().strip()
            except OSError as exc:
                log.warning("cannot read %s_FILE (%s): %s", name, path, exc.strerror or exc)


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of the run, when the tracking server has a UI."""
    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return None
    return f"{redact(tracking_uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _is_client_error(exc: Exception) -> bool:
    status = getattr(exc, "get_http_status_code", lambda: None)()
    return isinstance(status, int) and 400 <= status < 500


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def make_tracker(config: TrainerConfig) -> Tracker:
    """MLflow when the config names a tracking server, else a tracker that records nothing."""
    if config.tracking is None:
        return NullTracker()
    return MlflowTracker(config.tracking.trackingUri)


def identity_tags(config: TrainerConfig) -> dict[str, str]:
    """The Trial's identity, on the run and on every model version it registers."""
    ident = config.identity
    return {
        lineage.NAMESPACE_TAG: ident.namespace,
        lineage.EXPERIMENT_TAG: ident.experiment,
        lineage.TRIAL_TAG: ident.trial,
        lineage.TRIAL_UID_TAG: ident.uid,
        lineage.TRIAL_NUMBER_TAG: str(ident.number),
    }


def trial_tags(config: TrainerConfig, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Tags that let anyone go from an MLflow run back to its Trial resource."""
    return {
        **identity_tags(config),
        "thunderbolt.task": config.task,
        "thunderbolt.seed": str(config.seed),
        **(extra or {}),
    }
