"""The compact validation summary a Trial carries (``status.validation``).

The trainer computes a full report (``thunderbolt.validation``) and sends this digest
in its result; the operator copies it onto the Trial. Bounded so it always fits the
4 KiB termination message and stays small in etcd: the full report is an artifact.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from thunderbolt.api.common import ApiModel

# Every finding kind the validation layer raises; new ones are appended, never renamed.
FINDING_KINDS = (
    "missing_values",
    "constant_feature",
    "near_duplicate_columns",
    "duplicate_rows",
    "split_leakage",
    "class_imbalance",
    "label_noise",
    "feature_shift",
    "collapse",
    "dead_units",
    "vanishing_gradients",
    "exploding_gradients",
    "diverging_loss",
    "search_range_edge",
    "target_leakage",
)
Verdict = Literal["pass", "warn", "fail"]
MAX_FINDINGS = 5
MAX_RECOMMENDATIONS = 3
MAX_ROWS = 10


class FindingSummary(ApiModel):
    kind: str = Field(max_length=64, description="Stable kind, e.g. label_noise, split_leakage.")
    severity: Literal["warn", "fail"]
    message: str = Field(max_length=256)
    rows: list[int] = Field(
        default_factory=list, max_length=MAX_ROWS, description="Top flagged training rows."
    )
    columns: list[str] = Field(default_factory=list, max_length=MAX_ROWS)
    layers: list[str] = Field(default_factory=list, max_length=MAX_ROWS)


class RecommendationSummary(ApiModel):
    action: str = Field(max_length=64, description="Stable action, e.g. lower_learning_rate.")
    finding: str = Field(max_length=64, description="The finding kind it answers.")
    text: str = Field(max_length=256)


class ValidationSummary(ApiModel):
    """Verdict, failed dimensions, top findings and top recommendations."""

    verdict: Verdict
    failed: list[str] = Field(
        default_factory=list, max_length=16, description="Dimensions that failed."
    )
    warned: list[str] = Field(default_factory=list, max_length=16)
    findings: list[FindingSummary] = Field(default_factory=list, max_length=MAX_FINDINGS)
    recommendations: list[RecommendationSummary] = Field(
        default_factory=list, max_length=MAX_RECOMMENDATIONS
    )
    reportUri: str | None = Field(
        default=None, max_length=2048, description="Where the full JSON report is."
    )


MAX_EXPERIMENT_FINDINGS = 5


class FindingCount(ApiModel):
    kind: str = Field(max_length=64)
    trials: int = Field(ge=0, description="Trials whose validation reported this kind.")


class ExperimentValidation(ApiModel):
    """An Experiment's validation across its finished Trials (``status.validation``):
    how many passed, warned, failed or had no checks, the most frequent finding kinds,
    and the top recommendations (including the search ranges' advice)."""

    passed: int = Field(default=0, ge=0)
    warned: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    unchecked: int = Field(default=0, ge=0, description="Finished Trials without a verdict.")
    findings: list[FindingCount] = Field(default_factory=list, max_length=MAX_EXPERIMENT_FINDINGS)
    recommendations: list[RecommendationSummary] = Field(
        default_factory=list, max_length=MAX_RECOMMENDATIONS
    )
