"""One training run as the operator sees it: parameters in; reports, checkpoints and a
result out.

``Trial`` is the SDK's whole surface for a training script, and what the built-in
trainer runs on, so live reports, pruning, checkpoints, model publishing, MLflow
tracking and the result the operator reads exist once. It needs no torch; the PyTorch
helpers live in ``thunderbolt.sdk.torch``.
"""

from __future__ import annotations

import math
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

from thunderbolt.api import lineage
from thunderbolt.api.trainer_config import SplitInfo, TrainerConfig, TrainResult, TrialIdentity
from thunderbolt.api.validation_summary import ValidationSummary
from thunderbolt.artifacts import ArtifactError, join, store_for
from thunderbolt.sdk import publish as publishing
from thunderbolt.sdk.callbacks import (
    GuardedReporter,
    NoopReporter,
    TrainingReporter,
    make_reporter,
)
from thunderbolt.sdk.checkpoint import Checkpoints, fingerprint
from thunderbolt.sdk.errors import NoObjective, TrainingError, TrialPruned
from thunderbolt.sdk.params import Parameters
from thunderbolt.sdk.result import Say, say, write_result
from thunderbolt.sdk.tracking import NullTracker, Tracker, make_tracker, trial_tags
from thunderbolt.sdk.usage import code_revision, measure
from thunderbolt.validation.report import ValidationReport

Status = Literal["Succeeded", "Failed", "Pruned"]
_TRACKER_STATUS = {"Succeeded": "FINISHED", "Pruned": "KILLED", "Failed": "FAILED"}


def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metric {key!r} is not a number: {value!r}") from exc
    return out


class Trial:
    """A Trial's identity, parameters and paths, and the calls that report on it.

    Build one with ``thunderbolt.sdk.init()``. Only the main process (``RANK`` 0 under
    torchrun) reports, tracks, checkpoints and writes the result; the others get the
    same parameters and no-op calls.
    """

    def __init__(
        self,
        config: TrainerConfig,
        output_dir: str | os.PathLike[str],
        *,
        in_cluster: bool = False,
        reporter: TrainingReporter | None = None,
        tracker: Tracker | None = None,
        rank: int | None = None,
        raise_on_prune: bool = True,
        emit: Say = say,
    ) -> None:
        self.config = config
        self.output_dir = pathlib.Path(output_dir)
        self.in_cluster = in_cluster
        self.rank = int(os.environ.get("RANK", "0")) if rank is None else rank
        self.raise_on_prune = raise_on_prune
        self.emit = emit if self.is_main else _quiet
        self.params = Parameters(config.parameters)
        self.reporter: TrainingReporter = NoopReporter()
        self.tracker: Tracker = NullTracker()
        if self.is_main:
            self.reporter = GuardedReporter(reporter or make_reporter(config))
            self.tracker = tracker or make_tracker(config)
        self.checkpoint_prefix = (
            config.checkpointUri or (self.output_dir / "checkpoints").resolve().as_uri()
        )
        self._checkpoint_stores: list[Checkpoints] = []
        self.checkpoints = self.checkpoint_store()
        self.should_prune = False
        self.model: publishing.PublishedModel | None = None
        self.result: TrainResult | None = None
        self.history: dict[int, dict[str, float]] = {}  # step -> what report() got
        self.validation: ValidationSummary | None = None
        # Model switches it trained with (``sdk.torch.export`` reads spectral_norm off the
        # model itself), reported in the result and tagged on the run.
        self.switches: dict[str, bool] = {}
        self.last_step = 0
        self._started = False
        self._announced = False
        self._began = time.monotonic()

    # --- who and what ------------------------------------------------------------------
    @property
    def identity(self) -> TrialIdentity:
        return self.config.identity

    @property
    def name(self) -> str:
        return self.config.identity.trial or "local"

    @property
    def number(self) -> int:
        return self.config.identity.number

    @property
    def experiment(self) -> str:
        return self.config.identity.experiment

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def batch_size(self) -> int:
        return self.config.batchSize

    @property
    def objective_metric(self) -> str:
        return self.config.objective.metric

    @property
    def maximize(self) -> bool:
        return self.config.objective.direction == "maximize"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_uri(self) -> str:
        return self.checkpoints.uri

    # --- lifecycle ---------------------------------------------------------------------
    def start(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Trial:
        """Tell the operator the run began and open the MLflow run with ``params`` and
        ``tags`` added (once; ``report``, ``publish_model`` and ``finish`` call it when
        the script did not)."""
        self.announce()
        if self._started:
            return self
        self._started = True
        tracking = self.config.tracking
        self.tracker.start(
            experiment=(tracking.experimentName if tracking else None)
            or self.experiment
            or "thunderbolt",
            run_name=self.config.identity.trial,
            params={**self.config.parameters, "seed": self.seed, **(params or {})},
            tags=trial_tags(self.config, dict(tags or {})),
        )
        return self

    def announce(self) -> None:
        """Tell the operator the run began (once; ``start`` does it too)."""
        if not self._announced:
            self._announced = True
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.reporter.start()

    def report(self, step: int, metrics: Mapping[str, Any] | None = None, /,
               **more: Any) -> bool:  # fmt: skip
        """Record one step's metrics (MLflow, and the operator when they hold the
        objective metric); True when the operator pruned the Trial.

        With ``raise_on_prune`` (the default) a prune raises ``TrialPruned`` instead, as
        Optuna's ``trial.should_prune()`` + ``raise TrialPruned`` idiom does.
        """
        values = _floats({**(metrics or {}), **more})
        step = int(step)
        self.start()
        self.history[step] = values
        self.last_step = max(self.last_step, step)
        finite = {k: v for k, v in values.items() if math.isfinite(v)}
        self.tracker.log_metrics(finite, step=step)
        pruned = self.reporter.epoch(step, values)
        self.should_prune = self.should_prune or pruned
        if pruned and self.raise_on_prune:
            raise TrialPruned(step)
        return pruned

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Overwrite this run's checkpoint (torch.save when torch is installed, else JSON)."""
        if self.is_main:
            self.checkpoints.save(dict(state))

    def checkpoint_store(self, part: str | None = None) -> Checkpoints:
        """This run's checkpoint store, or a separate one under ``<prefix>/<part>``
        (several models in one run, such as cross-validation folds)."""
        prefix = join(self.checkpoint_prefix, part) if part else self.checkpoint_prefix
        artifacts = self.config.artifacts
        store = Checkpoints(prefix, fingerprint(self.config),
                            s3_endpoint_url=artifacts.s3EndpointUrl if artifacts else None)  # fmt: skip
        self._checkpoint_stores.append(store)
        return store

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint of this same run (same parameters, data, seed), or None."""
        return self.checkpoints.load()

    def publish_model(self, path: str | os.PathLike[str], checksum: str,
                      max_abs_diff: float | None = None) -> publishing.PublishedModel:  # fmt: skip
        """Upload a finished model file and register it; ``finish`` reports it."""
        self.start()
        self.model = publishing.publish(
            self.config, pathlib.Path(path), checksum, self.tracker, self.emit
        )
        self.model.max_abs_diff = max_abs_diff
        return self.model

    def record_validation(self, report: ValidationReport) -> ValidationSummary:
        """Keep a validation report: ``validation.json`` and ``validation.svg`` in the
        output directory, as MLflow artifacts (when tracking) and next to the model in
        the artifact store; its digest goes into the result (``status.validation``).
        A later call replaces an earlier one (dataset checks, then the full report)."""
        uri: str | None = None
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path = self.output_dir / "validation.json"
            path.write_text(report.to_json() + "\n")
            (self.output_dir / "validation.svg").write_text(report.svg() + "\n")
            self.start()
            uri = path.resolve().as_uri()
            tracked = self.tracker.log_artifact(str(path), "validation")
            self.tracker.log_artifact(str(self.output_dir / "validation.svg"), "validation")
            uri = tracked or uri
            prefix = publishing.artifact_prefix(self.config)
            if prefix is not None:
                target = join(prefix, "validation.json")
                endpoint = self.config.artifacts.s3EndpointUrl if self.config.artifacts else None
                try:
                    store_for(target, s3_endpoint_url=endpoint).put_bytes(target, path.read_bytes())
                    uri = target
                except ArtifactError as exc:  # the report is advice: never fail the run
                    self.emit(f"validation report not uploaded: {exc}")
        self.validation = report.summary(uri)
        return self.validation

    def best(self) -> tuple[int, dict[str, float]] | None:
        """The reported step with the best objective metric, and its metrics."""
        scored = [
            (step, m)
            for step, m in self.history.items()
            if math.isfinite(m.get(self.objective_metric, math.nan))
        ]
        if not scored:
            return None
        sign = 1.0 if self.maximize else -1.0
        return max(scored, key=lambda item: (sign * item[1][self.objective_metric], -item[0]))

    def finish(
        self,
        objective: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        *,
        status: Status | None = None,
        reason: str | None = None,
        message: str | None = None,
        epochs: int | None = None,
        extra: Mapping[str, Any] | None = None,
        objective_std: float | None = None,
        split: SplitInfo | None = None,
    ) -> TrainResult:
        """Write the result the operator reads; once (later calls return the first result).

        The objective defaults to ``metrics[objective metric]``, then to the best
        reported value. A Succeeded run without any fails as ``NoObjective``.
        ``objective_std`` and ``split`` record a cross-validated objective's spread and
        which rows validated (the built-in trainer's folds).
        """
        if self.result is not None:
            return self.result
        self.start()
        status = status or ("Pruned" if self.should_prune else "Succeeded")
        chosen = _floats(metrics or {})
        best = self.best()
        if objective is None:
            objective = chosen.get(self.objective_metric)
        if objective is None and best is not None:
            objective = best[1][self.objective_metric]
            chosen = chosen or dict(best[1])
        if status == "Succeeded" and (objective is None or not math.isfinite(objective)):
            status, reason = "Failed", NoObjective.reason
            message = (
                f"finished without a finite objective: pass finish(objective=...) or "
                f"report {self.objective_metric}=..."
            )
        if status == "Pruned":
            reason = reason or "Pruned"
            message = message or f"pruned by the operator after step {self.last_step}"
        result = TrainResult(
            status=status,
            reason=reason,
            message=message,
            objective=objective,
            objectiveStd=objective_std,
            split=split,
            metric=self.objective_metric,
            metrics=chosen,
            epochs=epochs if epochs is not None else (self.last_step or None),
            extra={**(extra or {}), "wallSeconds": round(time.monotonic() - self._began, 3)},
        )
        result.switches = dict(self.switches)
        if self.model is not None:
            result.modelUri, result.modelChecksum = self.model.uri, self.model.checksum
            result.onnxMaxAbsDiff = self.model.max_abs_diff
            result.mlflowModelVersion = self.model.mlflow_model_version
        return self._close(result)

    def fail(self, error: BaseException) -> TrainResult:
        """Finish as Failed with the error's reason (``TrainingError``) or ``Error``."""
        if self.result is not None:
            return self.result
        if isinstance(error, TrainingError):
            reason, message = error.reason, str(error)
        else:
            reason, message = "Error", f"{type(error).__name__}: {error}"
        return self._close(TrainResult(status="Failed", reason=reason, message=message,
                                       metric=self.objective_metric))  # fmt: skip

    def _close(self, result: TrainResult) -> TrainResult:
        self.result = result
        usage = measure()  # what the run cost up to here, for the Trial's accounting
        if usage is not None:
            result.cpuSeconds, result.peakMemoryBytes = usage
        result.codeRevision = result.codeRevision or code_revision()
        if self.validation is not None and result.validation is None:
            result.validation = self.validation
        if not self.is_main:
            return result
        # What the Trial's status will say, for checking the run against it later.
        tags = {f"thunderbolt.{k}": str(v).lower() for k, v in result.switches.items()}
        if result.status == "Succeeded" and result.objective is not None:
            tags[lineage.OBJECTIVE_TAG] = repr(float(result.objective))
            tags[lineage.OBJECTIVE_METRIC_TAG] = self.objective_metric
        if result.codeRevision:
            tags[lineage.CODE_REVISION_TAG] = result.codeRevision
        if tags:
            self.tracker.set_tags(tags)
        if usage is not None:
            self.tracker.log_metrics({"cpu_seconds": usage.cpu_seconds,
                                      "peak_memory_bytes": float(usage.peak_memory_bytes)},
                                     step=self.last_step or 0)  # fmt: skip
        self.tracker.finish(_TRACKER_STATUS[result.status])
        result.mlflowRunId = result.mlflowRunId or self.tracker.run_id
        result.mlflowRunUrl = result.mlflowRunUrl or self.tracker.run_url
        result.trackingError = result.trackingError or self.tracker.error
        if self.model is not None and result.status != "Failed":
            try:
                publishing.upload_result(self.config, self.model, result)
            except TrainingError as exc:
                result.status, result.reason, result.message = "Failed", exc.reason, str(exc)
        write_result(result, self.output_dir, self.emit)
        self.reporter.stop(result)
        if result.status == "Succeeded":
            # A finished run is never resumed: its checkpoints only cost storage. (Failed
            # runs keep theirs, for the Job's retry to resume from.)
            for store in self._checkpoint_stores:
                store.clear()
        return result

    @property
    def exit_code(self) -> int:
        """0 for Succeeded and Pruned; the reason's code (``errors.EXIT_CODES``) otherwise."""
        if self.result is None or self.result.status != "Failed":
            return 0
        return TrainingError("", reason=self.result.reason or "Error").exit_code

    # --- ``with init() as trial:`` -----------------------------------------------------
    def __enter__(self) -> Trial:
        """Tell the operator the run began; the MLflow run opens at the first ``start``
        (explicit, to add params and tags), ``report``, ``publish_model`` or ``finish``."""
        self.announce()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> bool:  # fmt: skip
        """Finish on the way out: Pruned swallows ``TrialPruned``, a failure re-raises."""
        if error is None:
            self.finish()
            return False
        if isinstance(error, TrialPruned):
            self.finish(status="Pruned")
            return True
        if isinstance(error, Exception):
            if not isinstance(error, TrainingError):
                traceback.print_exception(error, file=sys.stderr)
            self.fail(error)
            raise SystemExit(self.exit_code) from error
        return False  # KeyboardInterrupt, SystemExit: not ours to record


def _quiet(_message: str) -> None:
    return None
