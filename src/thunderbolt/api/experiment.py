"""Experiment: a hyperparameter search (thunderbolt.io/v1alpha1)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from thunderbolt.api import trial_parameters
from thunderbolt.api.collector import MetricsCollector
from thunderbolt.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    IMAGE_PATTERN,
    PARAM_NAME_PATTERN,
    QUANTITY_PATTERN,
    S3_BUCKET,
    S3_URI_PATTERN,
    UNTYPED,
    ApiModel,
    Condition,
    Misplaced,
    Resources,
    ScalarValue,
    check_labels,
    label_selector_field,
    misplaced,
)
from thunderbolt.api.pod import (
    AFFINITY_KEYS,
    AFFINITY_SCHEMA,
    VOLUME_SCHEMA,
    Container,
    EnvVar,
    Toleration,
    Volume,
    VolumeMount,
    check_volume,
)
from thunderbolt.api.validation_summary import ExperimentValidation

Direction = Literal["maximize", "minimize"]
SamplerName = Literal["tpe", "random", "grid", "cmaes", "gp", "nsga2"]
PrunerName = Literal["none", "median", "hyperband"]
Phase = Literal["Pending", "Running", "Succeeded", "Failed"]
METRIC_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
MAX_OBJECTIVES = 4
# status.paretoFront lists at most this many Trials (best first on the first objective)
PARETO_FRONT_SIZE = 20


class Objective(ApiModel):
    metric: str = Field(max_length=63, pattern=METRIC_PATTERN)
    direction: Direction = "maximize"
    goal: float | None = Field(default=None, description="Stop the search once reached.")


class Algorithm(ApiModel):
    name: SamplerName = "tpe"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    settings: dict[str, ScalarValue] = Field(
        default_factory=dict,
        description="Extra keyword arguments for the Optuna sampler.",
        json_schema_extra={"additionalProperties": UNTYPED, "maxProperties": 32},
    )
    storage: str | None = Field(
        default=None,
        max_length=1024,
        description="Optional Optuna RDB URL (e.g. for optuna-dashboard); Trials stay the source of truth.",
    )


class Pruner(ApiModel):
    name: PrunerName = "none"
    startupTrials: int = Field(default=5, ge=0, le=10000)
    warmupSteps: int = Field(default=0, ge=0, le=100000)
    minResource: int = Field(default=1, ge=1, le=100000, description="hyperband only")
    reductionFactor: int = Field(default=3, ge=2, le=10, description="hyperband only")


class Parameter(ApiModel):
    """One search dimension. float/int take low/high (log, step); categorical takes choices."""

    model_config = ConfigDict(
        json_schema_extra={
            # Structural checks any API server enforces at `kubectl apply` ...
            "anyOf": [
                {"properties": {"type": {"enum": ["categorical"]}}, "required": ["choices"]},
                {"properties": {"type": {"enum": ["float", "int"]}}, "required": ["low", "high"]},
            ],
            # ... and the cross-field rule servers with CEL (1.25+) enforce too.
            "x-kubernetes-validations": [
                {
                    "rule": "self.type == 'categorical' || self.low <= self.high",
                    "message": "low must not be greater than high",
                }
            ],
        }
    )

    name: str = Field(max_length=63, pattern=PARAM_NAME_PATTERN)
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = Field(default=None, gt=0)
    log: bool = False
    scale: Misplaced = misplaced("scale", "a log scale is 'log: true'")
    choices: list[ScalarValue] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        json_schema_extra={"items": UNTYPED},
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> Parameter:
        where = f"parameter {self.name!r}"
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"{where}: categorical needs a non-empty 'choices'")
            if self.low is not None or self.high is not None:
                raise ValueError(f"{where}: categorical takes 'choices', not low/high")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"{where}: 'choices' has duplicates")
            return self
        if self.choices is not None:
            raise ValueError(f"{where}: {self.type} takes low/high, not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"{where}: {self.type} needs both 'low' and 'high'")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"{where}: low/high must be finite")
        if self.low > self.high:
            raise ValueError(f"{where}: low ({self.low}) is greater than high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"{where}: log scale needs low > 0")
        if self.log and self.step is not None and self.type == "float":
            raise ValueError(f"{where}: 'step' and 'log' cannot be combined for floats")
        if self.type == "int":
            if self.low != int(self.low) or self.high != int(self.high):
                raise ValueError(f"{where}: int bounds must be whole numbers")
            if self.step is not None and self.step != int(self.step):
                raise ValueError(f"{where}: int step must be a whole number")
        return self


class Dataset(ApiModel):
    uri: str = Field(max_length=2048, pattern=rf"^((builtin|file|https?)://.+|{S3_URI_PATTERN})$")
    target: str = Field(default="target", max_length=256)
    format: Literal["csv", "parquet", "json"] | None = None
    validationFraction: float = Field(default=0.2, ge=0.05, le=0.9)


class Validation(ApiModel):
    """How every Trial of the Experiment is evaluated: one protocol for all of them."""

    folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="k-fold cross-validation: the objective is the mean over k folds "
        "(its standard deviation is reported); unset = one holdout split of "
        "dataset.validationFraction.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Seed of the train/validation split, the same for every Trial; "
        "defaults to algorithm.seed, else one derived from the Experiment's uid.",
    )
    checks: Literal["off", "cheap", "full"] = Field(
        default="cheap",
        description="Built-in trainer's data and model checks (docs/validation.md): cheap "
        "(default), full (every-step gradient sampling, nearest neighbours on up to "
        "50,000 rows) or off.",
    )


class TrialTemplate(ApiModel):
    """What every Trial's Job runs; parameters reach it as a mounted JSON file, as
    THUNDERBOLT_PARAM_<NAME> env vars and as ${trialParameters.<name>} in command/args."""

    image: str = Field(max_length=512, min_length=1, pattern=IMAGE_PATTERN)
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    command: list[str] | None = Field(default=None, max_length=32)
    args: list[str] | None = Field(default=None, max_length=64)
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    workingDir: str | None = Field(
        default=None, max_length=1024, pattern=r"^/", description="Defaults to /workspace."
    )
    metricsCollector: MetricsCollector = Field(default_factory=MetricsCollector)
    task: Literal["classification", "regression"] = "classification"
    model: Literal["mlp", "cnn", "sequence"] = Field(
        default="mlp",
        description="Built-in trainer's model family: mlp (tables), cnn (square images, "
        "e.g. builtin://digits), sequence (GRU, e.g. builtin://trajectories).",
    )
    dataset: Dataset | None = Field(
        default=None, description="For the built-in trainer; own containers may omit it."
    )
    validation: Validation | None = None
    epochs: int = Field(default=20, ge=1, le=10000)
    batchSize: int = Field(default=32, ge=1, le=65536)
    earlyStoppingPatience: int | None = Field(default=None, ge=1, le=10000)
    resources: Resources = Field(default_factory=Resources)
    shmSize: str | None = Field(
        default=None,
        max_length=32,
        pattern=QUANTITY_PATTERN,
        description="Shared memory for data loaders: a memory-backed emptyDir at /dev/shm.",
    )
    volumes: list[Volume] = Field(
        default_factory=list, max_length=32, json_schema_extra=VOLUME_SCHEMA
    )
    volumeMounts: list[VolumeMount] = Field(default_factory=list, max_length=32)
    initContainers: list[Container] = Field(default_factory=list, max_length=8)
    sidecars: list[Container] = Field(
        default_factory=list,
        max_length=8,
        description="Extra containers; a Job completes only once they exit too.",
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    affinity: dict[str, dict[str, Any]] = Field(
        default_factory=dict, json_schema_extra=AFFINITY_SCHEMA
    )
    backoffLimit: int = Field(default=1, ge=0, le=10)
    activeDeadlineSeconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    serviceAccountName: str | None = Field(default=None, max_length=253, pattern=DNS_LABEL_PATTERN)
    nodeSelector: dict[str, str] = label_selector_field("Node labels the pod must match.")
    priorityClassName: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN
    )

    @field_validator("nodeSelector")
    @classmethod
    def _check_node_selector(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value, "nodeSelector")

    @property
    def folds(self) -> int:
        return (self.validation.folds if self.validation else None) or 1

    @property
    def report_steps(self) -> int:
        """Steps a Trial reports: every fold's epochs, one after another."""
        return self.epochs * self.folds

    @field_validator("volumes")
    @classmethod
    def _check_volumes(cls, volumes: list[Volume]) -> list[Volume]:
        for volume in volumes:
            check_volume(volume)
        names = [v["name"] for v in volumes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate volume names {duplicates}")
        return volumes

    @field_validator("affinity")
    @classmethod
    def _check_affinity(cls, affinity: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(affinity) - AFFINITY_KEYS)
        if unknown:
            raise ValueError(f"affinity: unknown keys {unknown}")
        return affinity

    @model_validator(mode="after")
    def _check_pod(self) -> TrialTemplate:
        volumes = {v["name"] for v in self.volumes}
        containers = [("trainer", self.volumeMounts)] + [
            (c.name, c.volumeMounts) for c in self.initContainers + self.sidecars
        ]
        for container, mounts in containers:
            for mount in mounts:
                if mount.name not in volumes and mount.name != "workspace":
                    raise ValueError(
                        f"{container}: volumeMount {mount.name!r} names no volume in 'volumes'"
                    )
        names = ["trainer"] + [c.name for c in self.initContainers + self.sidecars]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container names must be unique (and not 'trainer'): {duplicates}")
        return self

    def substituted_texts(self) -> list[str]:
        """Every string where ${trialParameters.<name>} is replaced."""
        texts = list(self.command or []) + list(self.args or [])
        for c in self.initContainers + self.sidecars:
            texts += list(c.command or []) + list(c.args or [])
        return texts


class MlflowTracking(ApiModel):
    trackingUri: str | None = Field(
        default=None, max_length=1024, description="Defaults to the operator's MLflow server."
    )
    experimentName: str | None = Field(default=None, max_length=256)
    registeredModelName: str | None = Field(default=None, max_length=256)


class Tracking(ApiModel):
    mlflow: MlflowTracking | None = None


class Artifacts(ApiModel):
    """Where trained models go. Credentials come from a Secret mounted as files."""

    uri: str | None = Field(
        default=None,
        max_length=1024,
        pattern=rf"^({S3_BUCKET}(/[^\s]*)?|file:///.+|mlflow)$",
        description="s3://bucket/prefix, file:///path, or 'mlflow'. Defaults to the operator's store.",
    )
    s3EndpointUrl: str | None = Field(default=None, max_length=1024)
    credentialsSecret: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_LABEL_PATTERN,
        description="Secret with an AWS shared-credentials file under key 'credentials'.",
    )


class Constraint(ApiModel):
    """A bound a promoted Trial's metric must meet (any metric its status reports)."""

    metric: str = Field(max_length=63, pattern=METRIC_PATTERN)
    max: float | None = Field(default=None, description="The metric must be <= max.")
    min: float | None = Field(default=None, description="The metric must be >= min.")

    @model_validator(mode="after")
    def _check_bound(self) -> Constraint:
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric!r} needs 'max' or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"constraint on {self.metric!r}: min is greater than max")
        return self


class Select(ApiModel):
    """Which Trial is the Experiment's best (and is promoted): among the succeeded Trials
    that meet every constraint, the best on ``objective`` or, with ``weights``, the one
    with the highest weighted sum of objective values. Neither: the first objective."""

    objective: str | None = Field(
        default=None,
        max_length=63,
        pattern=METRIC_PATTERN,
        description="Metric of one of the objectives; the best Trial on it (its direction).",
    )
    weights: dict[str, float] | None = Field(
        default=None,
        description="Objective metric -> weight; the highest sum of weight x value wins "
        "(give a minimized metric a negative weight).",
        json_schema_extra={"maxProperties": MAX_OBJECTIVES},
    )
    constraints: list[Constraint] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _check_rule(self) -> Select:
        if self.objective is not None and self.weights is not None:
            raise ValueError("promote.select: set 'objective' or 'weights', not both")
        if self.weights is not None and not self.weights:
            raise ValueError("promote.select.weights: name at least one objective metric")
        if self.weights and not all(math.isfinite(w) for w in self.weights.values()):
            raise ValueError("promote.select.weights must be finite")
        return self


class Promote(ApiModel):
    """When ``when: Improved``, the best trial must beat what is serving by a margin:
    ``max(minImprovement, minImprovementStds x the best trial's objective std)``."""

    modelDeployment: str = Field(max_length=253, pattern=DNS_LABEL_PATTERN)
    when: Literal["Improved", "Always"] = "Improved"
    minImprovement: float | None = Field(
        default=None,
        ge=0,
        description="Least improvement over the serving model's objective (objective units).",
    )
    minImprovementStds: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Least improvement in units of the best trial's objective standard "
        "deviation across folds (needs trialTemplate.validation.folds).",
    )
    select: Select | None = Field(
        default=None,
        description="Which Trial is promoted; required with several objectives (one "
        "objective, a weighted score, and/or constraints such as latency_p50_ms <= 2).",
    )


class Retention(ApiModel):
    """Which Trials' artifacts (model, validation report, result, checkpoints) the store
    keeps (docs/experiment.md#retention). Models a ModelDeployment serves or has in its
    history are never deleted. Unset: everything is kept, also after deletion."""

    keepBest: int | None = Field(
        default=None,
        ge=1,
        le=10000,
        description="Keep the artifacts of the best N finished Trials with a model (on the "
        "first objective); delete the other finished Trials' artifacts. Unset: keep all.",
    )
    onDelete: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="Deleting the Experiment: Retain leaves its artifacts in the store; "
        "Delete deletes them first (bounded: after a failure or timeout an Event says what "
        "stayed and the Experiment goes anyway).",
    )


class ExperimentSpec(ApiModel):
    # Either one objective or several; the API server enforces one of the two (1.20 too).
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["objective"]}, {"required": ["objectives"]}]}
    )

    objective: Objective | None = Field(
        default=None, description="The metric to optimize (or objectives, for several)."
    )
    objectives: list[Objective] | None = Field(
        default=None,
        min_length=2,
        max_length=MAX_OBJECTIVES,
        description="Several metrics at once (multi-objective search): the Trials on the "
        "Pareto front are listed in status.paretoFront. Excludes objective.",
    )
    algorithm: Algorithm = Field(default_factory=Algorithm)
    pruner: Pruner = Field(default_factory=Pruner)
    maxTrials: int = Field(ge=1, le=10000)
    parallelTrials: int = Field(default=1, ge=1, le=100)
    paralelTrials: Misplaced = misplaced("paralelTrials", "the name is 'parallelTrials'")
    maxFailedTrials: int = Field(default=3, ge=0, le=10000)
    parameters: list[Parameter] = Field(min_length=1, max_length=50)
    trialTemplate: TrialTemplate
    tracking: Tracking | None = None
    artifacts: Artifacts | None = None
    promote: Promote | None = None
    retention: Retention | None = None
    onComplete: Literal["StopRunning", "LetFinish"] = Field(
        default="StopRunning",
        description="Trials still running when the Experiment ends (goal reached, failure "
        "budget spent): StopRunning deletes their Jobs and marks them Pruned with reason "
        "ExperimentComplete; LetFinish lets them run to the end.",
    )

    @model_validator(mode="after")
    def _check_search_space(self) -> ExperimentSpec:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameters: duplicate names {duplicates}")
        if self.algorithm.name == "grid":
            for p in self.parameters:
                if p.type == "float" and p.step is None:
                    raise ValueError(
                        f"parameter {p.name!r}: the grid sampler needs a 'step' for floats"
                    )
        unknown = trial_parameters.unknown_references(self.trialTemplate.substituted_texts(), names)
        if unknown:
            raise ValueError(
                f"trialTemplate: ${{trialParameters.<name>}} names unknown parameters {unknown} "
                f"(known: {sorted(names)})"
            )
        if self.algorithm.name == "cmaes" and all(p.type == "categorical" for p in self.parameters):
            raise ValueError("algorithm cmaes needs at least one float or int parameter")
        self._check_objectives()
        return self

    def _check_objectives(self) -> None:
        if (self.objective is None) == (self.objectives is None):
            raise ValueError(
                "set either 'objective' (one metric) or 'objectives' (several), not both"
                if self.objective is not None
                else "set 'objective' (one metric) or 'objectives' (several)"
            )
        metrics = [o.metric for o in self.goals]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives: each metric once, got {metrics}")
        select = self.promote.select if self.promote else None
        if self.objectives is not None:
            if any(o.goal is not None for o in self.objectives):
                raise ValueError("objectives: 'goal' is only supported with a single objective")
            if self.pruner.name != "none":
                raise ValueError(
                    f"pruner {self.pruner.name} cannot be used with several objectives: "
                    "Optuna's pruners compare one value per step; set pruner.name: none"
                )
            if self.algorithm.name == "cmaes":
                raise ValueError(
                    "algorithm cmaes optimizes one objective; with several objectives use "
                    "nsga2, tpe, gp, random or grid"
                )
            if self.promote is not None and select is None:
                raise ValueError(
                    "promote with several objectives needs promote.select: which objective, "
                    "weighted score or constraints pick the Trial to promote"
                )
        if select is not None:
            named = ([select.objective] if select.objective else []) + list(select.weights or {})
            unknown = sorted(set(named) - set(metrics))
            if unknown:
                raise ValueError(
                    f"promote.select names {unknown}, which are not objectives (known: {metrics})"
                )

    @property
    def goals(self) -> list[Objective]:
        """The objectives in order (one for a single-objective Experiment)."""
        if self.objectives is not None:
            return list(self.objectives)
        assert self.objective is not None  # the validator allows one of the two
        return [self.objective]

    @property
    def primary(self) -> Objective:
        """The first objective: what Trials report per epoch, early-stop and rank on."""
        return self.goals[0]

    @property
    def multi_objective(self) -> bool:
        return self.objectives is not None


class TrialCounts(ApiModel):
    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    pruned: int = 0


class TrialSummary(ApiModel):
    name: str
    number: int
    parameters: dict[str, ScalarValue] = Field(
        default_factory=dict, json_schema_extra={"additionalProperties": UNTYPED}
    )
    objective: float | None = None
    objectiveStd: float | None = None
    mlflowRunId: str | None = None
    mlflowRunUrl: str | None = None
    modelUri: str | None = None
    modelChecksum: str | None = None
    values: dict[str, float] | None = Field(
        default=None, description="Several objectives: each objective metric's value."
    )


class ExperimentStatus(ApiModel):
    phase: Phase = "Pending"
    observedGeneration: int | None = None
    progress: str | None = Field(default=None, description="finished/maxTrials, for kubectl get")
    trials: TrialCounts = Field(default_factory=TrialCounts)
    bestTrial: TrialSummary | None = None
    leaderboard: list[TrialSummary] = Field(default_factory=list, max_length=5)
    paretoFront: list[TrialSummary] | None = Field(
        default=None,
        max_length=PARETO_FRONT_SIZE,
        description="Several objectives: the non-dominated Trials, best first on the "
        f"first objective (at most {PARETO_FRONT_SIZE}; paretoFrontSize counts them all).",
    )
    paretoFrontSize: int | None = None
    startTime: str | None = None
    completionTime: str | None = None
    estimatedCompletionTime: str | None = None
    reason: str | None = None
    message: str | None = None
    validation: ExperimentValidation | None = Field(
        default=None,
        description="Data and model checks across finished Trials: verdict counts, "
        "frequent findings, top recommendations (docs/validation.md).",
    )
    conditions: list[Condition] = Field(default_factory=list)


def parse_spec(spec: dict[str, Any]) -> ExperimentSpec:
    """Validate a raw spec (what slipped past the API server's schema)."""
    return ExperimentSpec.model_validate(spec)
