"""The contract between the operator and the trainer.

The operator writes a ``TrainerConfig`` as JSON into every Trial's pod (mounted file,
path in ``THUNDERBOLT_CONFIG``); ``thunderbolt train`` reads it and writes a
``TrainResult`` to ``DIR/result.json`` and to the termination-message path, where the
operator reads it back. Both sides import these models, so the contract cannot drift.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from thunderbolt.api.validation_summary import ValidationSummary

ParameterValue = float | int | str | bool
# The built-in trainer's model families (``thunderbolt.trainer.model``).
ModelFamily = Literal["mlp", "cnn", "sequence"]

# Where the operator mounts things inside a Trial's pod.
CONFIG_MOUNT_DIR = "/etc/thunderbolt/trial"
CONFIG_PATH = f"{CONFIG_MOUNT_DIR}/config.json"
REPORT_TOKEN_DIR = "/var/run/secrets/thunderbolt.io/report"
REPORT_TOKEN_PATH = f"{REPORT_TOKEN_DIR}/token"
OUTPUT_DIR = "/workspace/output"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# Kubernetes truncates termination messages at 4096 bytes.
TERMINATION_MESSAGE_LIMIT = 4096


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class DatasetConfig(_Model):
    uri: str
    target: str = "target"
    format: Literal["csv", "parquet", "json"] | None = None
    validationFraction: float = 0.2


class ObjectiveConfig(_Model):
    metric: str
    direction: Literal["maximize", "minimize"]


class MlflowConfig(_Model):
    trackingUri: str
    experimentName: str | None = None
    registeredModelName: str | None = None


class ArtifactsConfig(_Model):
    # s3://bucket/prefix, file:///path, or mlflow (the MLflow run's artifact store)
    uri: str
    # S3-compatible endpoint (MinIO, moto, Ceph); None = AWS
    s3EndpointUrl: str | None = None


class ReportConfig(_Model):
    """Where the trainer sends live reports (start / per-epoch / stop)."""

    url: str
    tokenFile: str = REPORT_TOKEN_PATH


class TrialIdentity(_Model):
    """Links every record the trainer makes back to the Trial resource."""

    namespace: str = "default"
    experiment: str = ""
    trial: str = ""
    uid: str = ""
    number: int = 0


class TrainerConfig(_Model):
    identity: TrialIdentity = Field(default_factory=TrialIdentity)
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    task: Literal["classification", "regression"] = "classification"
    # None for training code that brings its own data (the SDK); the built-in trainer needs one
    dataset: DatasetConfig | None = None
    model: ModelFamily = "mlp"
    epochs: int = 20
    batchSize: int = 32
    seed: int = 0
    # the train/validation split's seed (the Experiment's); None: ``seed``
    splitSeed: int | None = None
    # k-fold cross-validation; None: one holdout split
    folds: int | None = None
    objective: ObjectiveConfig
    earlyStoppingPatience: int | None = None
    tracking: MlflowConfig | None = None
    artifacts: ArtifactsConfig | None = None
    # s3://… or file://… prefix where per-epoch checkpoints go so a restarted pod resumes
    checkpointUri: str | None = None
    report: ReportConfig | None = None
    # data and model validation (docs/validation.md): cheap checks by default, "full"
    # adds every-step gradient sampling and unsampled nearest neighbours, "off" none
    checks: Literal["off", "cheap", "full"] = "cheap"


class SplitInfo(_Model):
    """The split's identity (``trainer.data.SplitIdentity`` as JSON)."""

    seed: int
    validationHash: str
    folds: int | None = None


class TrainResult(_Model):
    """What a finished (or failed) training run reports.

    ``status`` is Succeeded, Failed or Pruned; ``reason`` is a one-word cause for
    anything but Succeeded (Diverged, Collapsed, OOM, DatasetError, ExportMismatch, …).
    Kept small: it must fit in a 4096-byte termination message.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    status: Literal["Succeeded", "Failed", "Pruned"]
    reason: str | None = None
    message: str | None = None
    objective: float | None = None
    objectiveStd: float | None = None  # across cross-validation folds
    metric: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    split: SplitInfo | None = None
    epochs: int | None = None
    modelUri: str | None = None
    modelChecksum: str | None = None
    onnxMaxAbsDiff: float | None = None
    mlflowRunId: str | None = None
    mlflowRunUrl: str | None = None
    mlflowModelVersion: str | None = None
    trackingError: str | None = None
    validation: ValidationSummary | None = None  # the data/model checks' digest
    # Model switches the run trained with, searched or not (spectral_norm: true|false).
    switches: dict[str, bool] = Field(default_factory=dict)
    # The code the image was built from (THUNDERBOLT_CODE_REVISION) and what the run cost
    # (getrusage of the process and its children): lineage and resource accounting.
    codeRevision: str | None = None
    cpuSeconds: float | None = None
    peakMemoryBytes: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
