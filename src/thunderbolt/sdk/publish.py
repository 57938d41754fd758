"""Where a finished model goes: the artifact store and MLflow's registry.

``<artifacts.uri>/<namespace>/<experiment>/<trial>/model.onnx`` for ``file://`` and
``s3://`` stores; the MLflow run's artifacts (and a registered model version) when
tracking is on; the local file otherwise. The built-in trainer and SDK scripts both
publish through here.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

from thunderbolt.api import lineage
from thunderbolt.api.trainer_config import TrainerConfig, TrainResult
from thunderbolt.artifacts import ArtifactError, join, store_for
from thunderbolt.sdk.checkpoint import fingerprint
from thunderbolt.sdk.errors import TrainingError
from thunderbolt.sdk.tracking import Tracker, identity_tags

MODEL_FILE = "model.onnx"
MLFLOW_ARTIFACT_DIR = "model"


@dataclasses.dataclass
class PublishedModel:
    uri: str
    checksum: str
    max_abs_diff: float | None = None
    mlflow_model_version: str | None = None
    prefix: str | None = None  # the store prefix result.json goes next to


def artifact_prefix(config: TrainerConfig) -> str | None:
    """``<artifacts.uri>/<namespace>/<experiment>/<trial>`` for file:// and s3:// stores."""
    if config.artifacts is None or config.artifacts.uri == "mlflow":
        return None
    ident = config.identity
    parts = [
        p for p in (ident.namespace, ident.experiment, ident.trial or fingerprint(config)) if p
    ]
    return join(config.artifacts.uri, *parts)


def _endpoint(config: TrainerConfig) -> str | None:
    return config.artifacts.s3EndpointUrl if config.artifacts else None


def publish(
    config: TrainerConfig,
    model_path: pathlib.Path,
    checksum: str,
    tracker: Tracker,
    say: Callable[[str], None],
) -> PublishedModel:
    """Upload the model where the config says and register it; raises on a store error."""
    tracked_uri = tracker.log_artifact(str(model_path), MLFLOW_ARTIFACT_DIR)
    published = PublishedModel(uri=model_path.resolve().as_uri(), checksum=checksum)
    if tracked_uri and config.tracking and config.tracking.registeredModelName:
        # The checksum and the Trial's identity go on the version and its run, so a
        # ModelDeployment can verify the bytes it downloads and trace them to the Trial.
        tags = {lineage.CHECKSUM_TAG: lineage.normalize_checksum(checksum), **identity_tags(config)}
        published.mlflow_model_version = tracker.register(
            config.tracking.registeredModelName, MLFLOW_ARTIFACT_DIR, tags
        )
    prefix = artifact_prefix(config)
    if config.artifacts is not None and config.artifacts.uri == "mlflow":
        if tracked_uri is not None:
            published.uri = tracked_uri
        elif config.checkpointUri:  # MLflow is down: keep the model next to the checkpoints
            prefix = config.checkpointUri
            say("MLflow artifact store unavailable; uploading the model to checkpointUri")
    if prefix is not None:
        model_uri = join(prefix, model_path.name)
        try:
            store_for(model_uri, s3_endpoint_url=_endpoint(config)).put_bytes(
                model_uri, model_path.read_bytes()
            )
        except ArtifactError as exc:
            raise TrainingError(str(exc), reason="ArtifactError") from exc
        published.uri, published.prefix = model_uri, prefix
    say(f"model at {published.uri}")
    return published


def upload_result(config: TrainerConfig, published: PublishedModel, result: TrainResult) -> None:
    """result.json next to the uploaded model, for whoever finds the model first."""
    if published.prefix is None:
        return
    uri = join(published.prefix, "result.json")
    try:
        store_for(uri, s3_endpoint_url=_endpoint(config)).put_bytes(
            uri, result.model_dump_json(indent=2, exclude_none=True).encode()
        )
    except ArtifactError as exc:
        raise TrainingError(str(exc), reason="ArtifactError") from exc
