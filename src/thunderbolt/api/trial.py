"""Trial: one training run, created by the operator, one batch/v1 Job each."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from thunderbolt.api.common import UNTYPED, ApiModel, Condition, ScalarValue
from thunderbolt.api.experiment import Artifacts, Objective, Tracking, TrialTemplate
from thunderbolt.api.validation_summary import ValidationSummary

TrialPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Pruned"]
FINISHED_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Pruned"})
# Bound on status.intermediate so a long run cannot grow the object without limit.
MAX_INTERMEDIATE = 500


class TrialSpec(ApiModel):
    experiment: str = Field(max_length=253)
    number: int = Field(ge=0)
    parameters: dict[str, ScalarValue] = Field(
        default_factory=dict, json_schema_extra={"additionalProperties": UNTYPED}
    )
    objective: Objective
    seed: int = Field(default=0, ge=0, description="Model seed (weights, shuffling, dropout).")
    splitSeed: int | None = Field(
        default=None,
        ge=0,
        description="Train/validation split seed, the Experiment's (unset: seed, as before).",
    )
    template: TrialTemplate
    tracking: Tracking | None = None
    artifacts: Artifacts | None = None


class IntermediateValue(ApiModel):
    step: int = Field(ge=0)
    value: float


class SplitIdentity(ApiModel):
    """Which rows the trainer validated on; Trials with equal identities are comparable."""

    seed: int
    validationHash: str = Field(max_length=64)
    folds: int | None = None


class CollectorStatus(ApiModel):
    """What a StdOut or File collector read from the Trial's container (Push: absent)."""

    kind: Literal["StdOut", "File"]
    state: Literal["Collecting", "Done"] = "Collecting"
    lines: int = Field(default=0, ge=0, description="Lines read from the container.")
    reports: int = Field(default=0, ge=0, description="Lines that became reports.")
    skipped: dict[str, int] = Field(
        default_factory=dict,
        description="Lines skipped, by cause: malformed, nonFinite, unknownMetric, tooLong...",
    )
    lastStep: int | None = None
    lastMetrics: dict[str, float] = Field(default_factory=dict)


class TrialStatus(ApiModel):
    phase: TrialPhase = "Pending"
    observedGeneration: int | None = None
    jobName: str | None = None
    objective: float | None = None
    objectiveStd: float | None = Field(
        default=None, description="Standard deviation of the objective across folds."
    )
    split: SplitIdentity | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    intermediate: list[IntermediateValue] = Field(default_factory=list, max_length=MAX_INTERMEDIATE)
    switches: dict[str, bool] = Field(
        default_factory=dict,
        description="Model switches the run trained with, searched or not (spectral_norm).",
    )
    mlflowRunId: str | None = None
    mlflowRunUrl: str | None = None
    mlflowModelVersion: str | None = None
    modelUri: str | None = None
    modelChecksum: str | None = None
    image: str | None = None
    imageDigest: str | None = Field(
        default=None, description="sha256 of the image the pod ran (a tag can move)."
    )
    startTime: str | None = None
    completionTime: str | None = None
    durationSeconds: float | None = None
    gpuSeconds: float | None = None
    reason: str | None = None
    message: str | None = Field(default=None, max_length=4096)
    collector: CollectorStatus | None = None
    validation: ValidationSummary | None = Field(
        default=None,
        description="Data and model checks: verdict, failed dimensions, top findings and "
        "recommendations (the full report is at reportUri).",
    )
    conditions: list[Condition] = Field(default_factory=list)
