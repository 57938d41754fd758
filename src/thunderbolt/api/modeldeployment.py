"""ModelDeployment: serve an ONNX model with rolling, blue-green, canary or shadow rollouts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from thunderbolt.api.common import (
    CHECKSUM_PATTERN,
    DNS_LABEL_PATTERN,
    IMAGE_PATTERN,
    S3_URI_PATTERN,
    ApiModel,
    Condition,
    Misplaced,
    Resources,
    misplaced,
)

Outcome = Literal[
    "Active",
    "Promoted",
    "RolledBack",
    "Superseded",
    "Refused",
    "PendingApproval",
    "Rejected",
    "GateFailed",
]
Approval = Literal["Automatic", "Manual"]
Decision = Literal["Approved", "Rejected", "Deprecated"]
Phase = Literal["Pending", "Progressing", "Available", "Degraded"]


class MlflowModelRef(ApiModel):
    """A registered model version, or an alias the controller follows as it moves."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["version"]}, {"required": ["alias"]}]}
    )

    name: str = Field(max_length=256, min_length=1)
    version: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+$")
    alias: str | None = Field(default=None, max_length=256)
    trackingUri: str | None = Field(default=None, max_length=1024)
    pollSeconds: int = Field(default=60, ge=5, le=86400, description="alias re-resolution interval")
    objectiveMetric: str | None = Field(
        default=None,
        max_length=256,
        description="Run metric recorded as the revision's objective; default: the metric "
        "the version's Trial optimized (run tag thunderbolt.objective_metric).",
    )
    requireChecksumTag: bool = Field(
        default=False,
        description="Refuse versions without a thunderbolt.io/checksum tag (on the version "
        "or its run); the operator's THUNDERBOLT_REQUIRE_CHECKSUM_TAG requires it for all.",
    )

    @model_validator(mode="after")
    def _version_xor_alias(self) -> MlflowModelRef:
        if (self.version is None) == (self.alias is None):
            raise ValueError("mlflowModel needs exactly one of 'version' or 'alias'")
        return self


class ModelSource(ApiModel):
    """Exactly one of trialRef, mlflowModel, or uri (+ checksum)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["trialRef"]},
                {"required": ["mlflowModel"]},
                {"required": ["uri", "checksum"]},
            ]
        }
    )

    trialRef: str | None = Field(default=None, max_length=253, pattern=DNS_LABEL_PATTERN)
    mlflowModel: MlflowModelRef | None = None
    uri: str | None = Field(
        default=None, max_length=2048, pattern=rf"^({S3_URI_PATTERN}|file:///.+)$"
    )
    checksum: str | None = Field(default=None, pattern=CHECKSUM_PATTERN)

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("trialRef", "mlflowModel", "uri") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"model needs exactly one of trialRef, mlflowModel, uri; got {given or 'none'}"
            )
        if self.uri is not None and self.checksum is None:
            raise ValueError("model.uri needs model.checksum (sha256:<hex>)")
        return self


class CanaryStep(ApiModel):
    weight: int = Field(ge=1, le=100)
    pauseSeconds: int = Field(default=30, ge=0, le=86400)


CANARY_STEPS_RULE = (
    "self.steps.map(s, s.weight).isSorted()"
    " && self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))"
)


class Canary(ApiModel):
    """Traffic steps for the new revision; weights must strictly increase."""

    model_config = ConfigDict(
        json_schema_extra={
            # isSorted() is the Kubernetes CEL list library (1.27+); older servers skip
            # CEL and the operator's own check below marks the resource instead.
            "x-kubernetes-validations": [
                {"rule": CANARY_STEPS_RULE, "message": "canary step weights must increase"}
            ]
        }
    )

    steps: list[CanaryStep] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _weights_increase(self) -> Canary:
        weights = [step.weight for step in self.steps]
        if any(a >= b for a, b in zip(weights, weights[1:], strict=False)):
            raise ValueError(f"canary step weights must increase, got {weights}")
        return self


class Analysis(ApiModel):
    maxErrorRate: float = Field(default=0.01, ge=0, le=1)
    maxLatencyP99Ms: float = Field(default=100, gt=0, le=600000)
    minRequests: int = Field(default=50, ge=0, le=10**9)
    intervalSeconds: int = Field(default=10, ge=1, le=3600)


class Shadow(ApiModel):
    """The candidate gets a mirrored copy of live requests; clients only see stable's answers.

    Error rate and p99 latency are judged with ``strategy.analysis`` (its defaults when
    left out), on the mirrored requests only; see docs/modeldeployment.md#shadow.
    """

    percent: int = Field(
        default=100, ge=1, le=100, description="Share of stable's answered requests mirrored."
    )
    durationSeconds: int = Field(
        default=60,
        ge=0,
        le=7 * 86400,
        description="Shortest observation: a pass waits for this long after the candidate "
        "is ready (a failure ends the shadow at once).",
    )
    minAgreement: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="Share of compared rows on which the candidate must agree with stable.",
    )
    tolerance: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Regression outputs agree within this relative difference (or 1e-6).",
    )
    timeoutMs: int = Field(
        default=1000, ge=10, le=60000, description="A mirrored request is abandoned after this."
    )
    maxInFlight: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Mirrored requests in flight per stable server process; more are dropped.",
    )
    maxBodyBytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Larger request bodies are not mirrored (counted as dropped).",
    )


class Strategy(ApiModel):
    type: Literal["Rolling", "BlueGreen", "Canary", "Shadow"] = "Rolling"
    canary: Canary | None = None
    shadow: Shadow | None = Field(
        default=None, description="Shadow settings (type Shadow; defaults when left out)."
    )
    analysis: Analysis | None = None

    @model_validator(mode="after")
    def _canary_has_steps(self) -> Strategy:
        if self.type == "Canary" and self.canary is None:
            raise ValueError("strategy.type Canary needs strategy.canary.steps")
        return self


class Batching(ApiModel):
    enabled: bool = True
    maxBatchSize: int = Field(default=32, ge=1, le=4096)
    maxDelayMs: float = Field(default=2, ge=0, le=1000)


class Threads(ApiModel):
    """Server sizing; 0 (the default) lets the operator derive it from resources.cpu."""

    intraOp: int = Field(
        default=0, ge=0, le=256, description="onnxruntime intra-op threads per worker process"
    )
    interOp: int = Field(default=0, ge=0, le=256, description="onnxruntime inter-op threads (0: 1)")
    workers: int = Field(
        default=0, ge=0, le=64, description="server processes sharing the port, one batcher each"
    )


# Written with the defaults (8080, 8081) so it judges a partial object as the API server
# does after defaulting.
GRPC_PORT_RULE = (
    "(has(self.grpcPort) ? self.grpcPort : 8081) == 0"
    " || ((has(self.grpcPort) ? self.grpcPort : 8081) >= 1024"
    " && (has(self.grpcPort) ? self.grpcPort : 8081) != (has(self.port) ? self.port : 8080))"
)


class Serving(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": GRPC_PORT_RULE,
                    "message": "serving.grpcPort must be 0 (off) or 1024-65535 and differ "
                    "from serving.port",
                }
            ]
        }
    )

    batching: Batching = Field(default_factory=Batching)
    port: int = Field(default=8080, ge=1024, le=65535)
    grpcPort: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="V2 over gRPC (inference.GRPCInferenceService), Service port 'grpc'; 0: off",
    )
    threads: Threads = Field(default_factory=Threads)

    @model_validator(mode="after")
    def _ports_differ(self) -> Serving:
        if self.grpcPort and not 1024 <= self.grpcPort <= 65535:
            raise ValueError("serving.grpcPort must be 0 (off) or 1024-65535")
        if self.grpcPort == self.port:
            raise ValueError("serving.grpcPort must differ from serving.port")
        return self


GateMetric = Literal["accuracy", "mse", "mae", "r2"]
# Higher is better for these; lower for the others.
GATE_MAXIMIZE = frozenset({"accuracy", "r2"})


class GateDataset(ApiModel):
    """A held-out table, read the way the trainer reads datasets."""

    uri: str = Field(
        max_length=2048,
        description="builtin://<name>, s3://..., file://..., http(s)://... (csv, parquet, json)",
    )
    target: str = Field(default="target", max_length=256)
    format: Literal["csv", "parquet", "json"] | None = None


class Gate(ApiModel):
    """A quality gate every new revision passes before it receives any traffic."""

    dataset: GateDataset
    metric: GateMetric | None = Field(
        default=None, description="accuracy (classification); mse, mae, r2 (regression)"
    )
    threshold: float | None = Field(
        default=None,
        description="accuracy and r2 must reach it, mse and mae must not exceed it",
    )
    minAgreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of rows on which the candidate must agree with the serving model "
        "(same class; regression: within 1%). Not checked when nothing serves yet.",
    )
    maxRows: int = Field(default=10000, ge=1, le=10**6)
    timeoutSeconds: int = Field(default=600, ge=10, le=86400)

    @model_validator(mode="after")
    def _something_to_check(self) -> Gate:
        if (self.metric is None) != (self.threshold is None):
            raise ValueError("gate.metric and gate.threshold go together")
        if self.threshold is None and self.minAgreement is None:
            raise ValueError("gate needs metric + threshold, minAgreement, or both")
        return self


class GateResult(ApiModel):
    """What the gate measured for one revision."""

    passed: bool
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    agreement: float | None = None
    minAgreement: float | None = None
    rows: int | None = None
    message: str | None = Field(default=None, max_length=1024)
    at: str | None = None


class SLA(ApiModel):
    """Targets the serving revision is held to continuously, not only during a canary."""

    maxLatencyP99Ms: float | None = Field(default=None, gt=0, le=600000)
    maxErrorRate: float | None = Field(default=None, ge=0, le=1)
    minAvailability: float | None = Field(
        default=None, ge=0, le=1, description="Ready pods / replicas of the serving revision."
    )
    intervalSeconds: int = Field(
        default=30, ge=5, le=3600, description="Length of each measured window."
    )
    minRequests: int = Field(
        default=20,
        ge=0,
        le=10**9,
        description="Fewer requests in a window: latency and errors unjudged.",
    )
    breachWindows: int = Field(
        default=2, ge=1, le=100, description="Consecutive breached windows that make a breach."
    )
    onBreach: Literal["Alert", "Rollback"] = Field(
        default="Alert",
        description="Alert: Degraded condition and Event. Rollback: also roll back to the "
        "previous revision that served.",
    )

    @model_validator(mode="after")
    def _some_target(self) -> SLA:
        if (
            self.maxLatencyP99Ms is None
            and self.maxErrorRate is None
            and self.minAvailability is None
        ):
            raise ValueError("sla needs maxLatencyP99Ms, maxErrorRate or minAvailability")
        return self


class ModelDeploymentSpec(ApiModel):
    model: ModelSource
    gate: Gate | None = None
    sla: SLA | None = None
    approval: Approval = Field(
        default="Automatic",
        description="Manual: every new revision waits as PendingApproval until `thunderbolt "
        "approve` (or the approval annotation) lets it roll out.",
    )
    modelName: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name in the V2 API; defaults to the resource name.",
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Defaults to the operator's serving image.",
    )
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    replicas: int = Field(default=1, ge=0, le=100)
    resources: Resources = Field(default_factory=lambda: Resources(cpu="500m", memory="512Mi"))
    strategy: Strategy = Field(default_factory=Strategy)
    # Misplaced, these would otherwise vanish on old servers and roll out at 100%.
    canary: Misplaced = misplaced("canary", "it belongs under spec.strategy")
    analysis: Misplaced = misplaced("analysis", "it belongs under spec.strategy")
    steps: Misplaced = misplaced("steps", "canary steps belong under spec.strategy.canary")
    revisionHistoryLimit: int = Field(default=10, ge=1, le=100)
    rollbackTo: int | None = Field(default=None, ge=1)
    serving: Serving = Field(default_factory=Serving)
    artifactsCredentialsSecret: str | None = Field(
        default=None, max_length=253, pattern=DNS_LABEL_PATTERN
    )
    s3EndpointUrl: str | None = Field(default=None, max_length=1024)


class Revision(ApiModel):
    number: int = Field(ge=1)
    modelUri: str | None = None
    modelChecksum: str | None = None
    source: str | None = Field(
        default=None, description="trial/<name>, mlflow/<name>/<version>, uri, experiment/<name>"
    )
    trial: str | None = None
    experiment: str | None = None
    objective: float | None = None
    objectiveMetric: str | None = Field(default=None, description="What objective measures.")
    mlflowModelName: str | None = None
    mlflowModelVersion: str | None = None
    mlflowModelUrl: str | None = None
    mlflowRunId: str | None = None
    deployedAt: str | None = None


class DecisionRecord(ApiModel):
    """Who decided about a revision, when and why (see docs/modeldeployment.md#approval)."""

    decision: Decision
    by: str | None = Field(
        default=None, max_length=256, description="The user, as the client said."
    )
    manager: str | None = Field(
        default=None, max_length=256, description="The field manager of the annotation's write."
    )
    at: str | None = None
    reason: str | None = Field(default=None, max_length=1024)


class HistoryEntry(Revision):
    servingObjective: float | None = Field(
        default=None, description="The serving revision's objective when this one was created."
    )
    validation: str | None = Field(
        default=None, max_length=16, description="The Trial's validation verdict, if any."
    )
    approval: DecisionRecord | None = None
    gate: GateResult | None = None
    slaBreach: str | None = Field(
        default=None, max_length=1024, description="Set when it breached spec.sla while serving."
    )
    deprecated: DecisionRecord | None = Field(
        default=None, description="Set: this model is never deployed again by this deployment."
    )
    promotedAt: str | None = Field(
        default=None, description="When it began serving all traffic (unset: never served)."
    )
    retiredAt: str | None = None
    outcome: Outcome = "Active"
    reason: str | None = Field(default=None, max_length=1024)


class CanaryStatus(ApiModel):
    revision: int
    weight: int = Field(ge=0, le=100)
    step: int = Field(ge=0)
    stepStartedAt: str | None = None


class ShadowStatus(ApiModel):
    """A running shadow and what its analysis measured so far."""

    revision: int
    replicas: int = Field(default=1, ge=0)
    startedAt: str | None = Field(
        default=None, description="When the candidate's pods were ready (the window's start)."
    )
    passedAt: str | None = Field(
        default=None, description="Set once the analysis passed: the candidate scales up."
    )
    requests: int | None = Field(default=None, description="Mirrored requests it answered.")
    errorRate: float | None = None
    latencyP99Ms: float | None = None
    comparedRows: int | None = None
    agreement: float | None = None
    mirrorTimeouts: int | None = None
    mirrorDropped: int | None = None
    message: str | None = Field(default=None, max_length=1024)


class ModelDeploymentStatus(ApiModel):
    phase: Phase = "Pending"
    observedGeneration: int | None = None
    currentRevision: Revision | None = None
    canary: CanaryStatus | None = None
    shadow: ShadowStatus | None = None
    history: list[HistoryEntry] = Field(default_factory=list, max_length=100)
    endpoint: str | None = None
    previewEndpoint: str | None = None
    reason: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


def parse_spec(spec: dict[str, Any]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(spec)
