"""Trial: one training run, created by the operator, one batch/v1 Job each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from thunderbolt.api.common import UNTYPED, ApiModel, Condition, ScalarValue
from thunderbolt.api.experiment import Artifacts, Objective, Tracking, TrialTemplate
from thunderbolt.api.validation_summary import ValidationSummary

TrialPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Pruned"]
FINISHED_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Pruned"})
# Bound on status.intermediate in the schema (objects written before compaction existed).
MAX_INTERMEDIATE = 500
# What writers keep: a longer curve is compacted (``compact_curve``), so a Trial's
# status stays a few KiB and 10 000 Trials fit comfortably in etcd.
STORED_POINTS = 128


def trial_number(trial: Mapping[str, Any]) -> int:
    """A Trial object's ``spec.number`` (0 when it is missing or not a number: a hand-made
    or half-written object sorts first rather than failing a whole reconcile)."""
    try:
        return int((trial.get("spec") or {}).get("number", 0))
    except (TypeError, ValueError):
        return 0


def compact_curve(
    points: Sequence[tuple[int, float]], limit: int = STORED_POINTS
) -> list[tuple[int, float]]:
    """At most ``limit`` points (sorted by step): the first and the last always, and the
    middle thinned to the steps that are multiples of the smallest power of two that
    fits. So the whole curve stays visible at an even spacing, compacting again only
    drops points (never moves them), and Trials of one Experiment keep common steps
    (the median pruner compares Trials step by step)."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    kept = list(points)
    stride = 2
    while len(kept) > limit:
        last = len(kept) - 1
        kept = [p for i, p in enumerate(kept) if i in (0, last) or p[0] % stride == 0]
        stride *= 2
    return kept


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


class ArtifactsDeleted(ApiModel):
    """The Trial's artifacts were deleted from the store: modelUri names a removed model."""

    reason: Literal["Retention"] = "Retention"
    time: str | None = None
    job: str | None = Field(default=None, max_length=253, description="The cleanup Job.")
    message: str | None = Field(default=None, max_length=1024)


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
    artifactsDeleted: ArtifactsDeleted | None = Field(
        default=None,
        description="Set once spec.retention deleted this Trial's model and files; "
        "modelUri then names a removed model.",
    )
    image: str | None = None
    imageDigest: str | None = Field(
        default=None, description="sha256 of the image the pod ran (a tag can move)."
    )
    codeRevision: str | None = Field(
        default=None,
        max_length=100,
        description="The training code's revision, when the image provides it "
        "(THUNDERBOLT_CODE_REVISION, baked in at build time).",
    )
    startTime: str | None = None
    completionTime: str | None = None
    durationSeconds: float | None = None
    gpuSeconds: float | None = None
    cpuSeconds: float | None = Field(
        default=None, ge=0, description="CPU time of the training process and its children."
    )
    peakMemoryBytes: int | None = Field(
        default=None, ge=0, description="Peak resident memory of the largest training process."
    )
    reason: str | None = None
    message: str | None = Field(default=None, max_length=4096)
    collector: CollectorStatus | None = None
    validation: ValidationSummary | None = Field(
        default=None,
        description="Data and model checks: verdict, failed dimensions, top findings and "
        "recommendations (the full report is at reportUri).",
    )
    validationEvent: str | None = Field(
        default=None,
        max_length=253,
        description="Name of the Event posted for failed or warned checks (posted once).",
    )
    conditions: list[Condition] = Field(default_factory=list)
