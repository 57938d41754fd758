"""The wire format of trainer reports: the endpoint (``thunderbolt.reports``) validates
with these models, the trainer's client (``trainer.reporter``) builds its URL, backlog
bound and bodies from them.

Strict on purpose: a report is machine-written, so anything unexpected (a string where a
number belongs, NaN, an unknown field or kind) is a bug or a forgery and is rejected
rather than coerced.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

API_PREFIX = "/v1"
ROUTE = API_PREFIX + "/namespaces/{namespace}/trials/{trial}/reports"
CONTENT_TYPE = "application/json"
# A report is a few metrics; anything larger is abuse or a bug.
MAX_BODY_BYTES = 16 * 1024
MAX_METRICS = 64
MAX_STEP = 10_000_000
MAX_BACKLOG = 64
METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$"
REASON_PATTERN = r"^[A-Za-z][A-Za-z0-9]{0,63}$"
# Kubernetes object names (DNS-1123 subdomain; Trials are labels in practice).
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

MetricName = Annotated[str, Field(pattern=METRIC_NAME_PATTERN)]
Step = Annotated[int, Field(ge=0, le=MAX_STEP)]
Metrics = Annotated[dict[MetricName, float], Field(max_length=MAX_METRICS)]


class _Report(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class BacklogPoint(_Report):
    step: Step
    value: float


# Earlier epochs the trainer has not yet seen stored (replies carry ``storedStep``); a
# replica that acknowledged them and crashed before writing them gets them back here.
Backlog = Annotated[list[BacklogPoint], Field(max_length=MAX_BACKLOG)]


class StartReport(_Report):
    """Training began (or resumed after a pod restart: then a duplicate, harmless)."""

    kind: Literal["start"]
    step: Step = 0


class EpochReport(_Report):
    """One finished epoch. The intermediate value is ``value`` when given, else
    ``metrics[<the Trial's objective metric>]``."""

    kind: Literal["epoch"]
    step: Step
    metrics: Metrics = Field(min_length=1)
    value: float | None = None
    backlog: Backlog = Field(default_factory=list)

    @model_validator(mode="after")
    def _backlog_before_step(self) -> EpochReport:
        if any(p.step >= self.step for p in self.backlog):
            raise ValueError("backlog steps must be before the reported step")
        return self


class StopReport(_Report):
    """Training ended; the Trial's final state still comes from the Job's result."""

    kind: Literal["stop"]
    step: Step = 0
    status: Literal["Succeeded", "Failed", "Pruned"]
    objective: float | None = None
    reason: Annotated[str, Field(pattern=REASON_PATTERN)] | None = None
    message: Annotated[str, Field(max_length=1024)] | None = None
    metrics: Metrics = Field(default_factory=dict)
    backlog: Backlog = Field(default_factory=list)

    @model_validator(mode="after")
    def _backlog_not_after_step(self) -> StopReport:
        if any(p.step > self.step for p in self.backlog):
            raise ValueError("backlog steps must not be after the stop step")
        return self


Report = Annotated[StartReport | EpochReport | StopReport, Field(discriminator="kind")]
REPORT_ADAPTER: TypeAdapter[StartReport | EpochReport | StopReport] = TypeAdapter(Report)


class ReportReply(BaseModel):
    """What an accepted report gets back. ``prune`` is only ever true for epoch reports."""

    result: Literal["accepted", "duplicate"]
    kind: Literal["start", "epoch", "stop"]
    step: int
    prune: bool = False
    # The latest step known to be on the Trial: the trainer may forget its backlog up to here.
    storedStep: int | None = None


class ErrorReply(BaseModel):
    """Every rejection: a stable machine-readable ``error`` code and a human message."""

    error: str
    message: str


def report_url(base: str, namespace: str, trial: str) -> str:
    """``base`` is the endpoint's base URL (``config.report.url``); a full report URL is
    kept as is."""
    if API_PREFIX + "/namespaces/" in base:
        return base
    return base.rstrip("/") + ROUTE.format(namespace=namespace, trial=trial)
