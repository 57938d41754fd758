"""The steps of a run in order: data, model, training, export, publishing.

Errors propagate as ``TrainingError``s; ``run.train`` turns them into results.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import cast

import torch

from thunderbolt.api.trainer_config import SplitInfo, TrainerConfig, TrainResult
from thunderbolt.artifacts import ArtifactError, join, store_for
from thunderbolt.trainer import crossval, export, model, params, threads
from thunderbolt.trainer import data as datasets
from thunderbolt.trainer.callbacks import TrainingReporter
from thunderbolt.trainer.checkpoint import Checkpoints, fingerprint
from thunderbolt.trainer.distributed import Placement
from thunderbolt.trainer.errors import DatasetError, TrainingError
from thunderbolt.trainer.loop import LoopSettings, Outcome, Trainer
from thunderbolt.trainer.tracking import Tracker

MODEL_FILE = "model.onnx"
MLFLOW_ARTIFACT_DIR = "model"


def run(
    config: TrainerConfig,
    out: pathlib.Path,
    placement: Placement,
    reporter: TrainingReporter,
    tracker: Tracker,
    say: Callable[[str], None],
) -> TrainResult:
    if config.dataset is None:
        raise DatasetError("the built-in trainer needs trialTemplate.dataset")
    hp = params.resolve(config)
    cpu_threads = threads.configure()
    s3_endpoint = config.artifacts.s3EndpointUrl if config.artifacts else None
    _start_tracking(config, hp, tracker)
    folds = config.folds or 1
    fold_data = _load_folds(config, folds, s3_endpoint)
    data = fold_data[0]
    say(
        f"training {config.task} on {config.dataset.uri}: {len(data.x_train)} train / "
        f"{len(data.x_val)} validation rows"
        + (f" x {folds} folds" if folds > 1 else "")
        + f", {data.num_features} features, device {placement.device}"
        + (f" ({cpu_threads} threads)" if placement.device.type == "cpu" else "")
        + (f" x{placement.world_size}" if placement.world_size > 1 else "")
    )
    say("parameters: " + ", ".join(f"{k}={v}" for k, v in hp.as_dict().items()))
    checkpoint_prefix = config.checkpointUri or (out / "checkpoints").resolve().as_uri()

    def fit(fold: int, fold_set: datasets.Dataset, offset: int) -> Outcome:
        torch.manual_seed(config.seed)  # the same seed initializes the same weights
        net = model.build(fold_set.num_features, fold_set.num_outputs, hp, fold_set.mean,
                          fold_set.std)  # fmt: skip
        prefix = checkpoint_prefix if folds == 1 else join(checkpoint_prefix, f"fold-{fold}")
        trainer = Trainer(
            net,
            fold_set,
            hp,
            LoopSettings(
                seed=config.seed,
                objective_metric=config.objective.metric,
                maximize=config.objective.direction == "maximize",
                patience=config.earlyStoppingPatience,
                device=placement.device,
                rank=placement.rank,
                world_size=placement.world_size,
            ),
            reporter=reporter if folds == 1 else crossval.OffsetReporter(reporter, offset),
            tracker=tracker
            if folds == 1
            else cast(Tracker, crossval.OffsetTracker(tracker, offset)),
            checkpoints=Checkpoints(prefix, fingerprint(config), s3_endpoint_url=s3_endpoint),
            say=say,
        )
        return trainer.fit()

    cv: crossval.CrossValidation | None = None
    if folds > 1:
        maximize = config.objective.direction == "maximize"
        cv = crossval.run_folds(fold_data, hp.epochs, maximize, fit, say)
        outcome, data = cv.best, fold_data[cv.best_fold]
    else:
        outcome = fit(0, data, 0)
    pruned = cv.pruned if cv else outcome.pruned
    if not placement.is_main:
        return TrainResult(status="Pruned" if pruned else "Succeeded")
    exported = export.export(outcome.net, data, onnx_metadata(config, hp))
    model_path = out / MODEL_FILE
    model_path.write_bytes(exported.data)
    say(f"exported ONNX ({exported.exporter}), parity max abs diff {exported.max_abs_diff:.2e}")
    result = _result(config, placement, data, outcome, cv, exported)
    publish(config, out, model_path, result, tracker, say)
    return result


def _result(
    config: TrainerConfig,
    placement: Placement,
    data: datasets.Dataset,
    outcome: Outcome,
    cv: crossval.CrossValidation | None,
    exported: export.Exported,
) -> TrainResult:
    """What the operator reads from the termination message (the mean over folds with CV)."""
    pruned = cv.pruned if cv else outcome.pruned
    return TrainResult(
        status="Pruned" if pruned else "Succeeded",
        reason="Pruned" if pruned else None,
        message=f"pruned by the operator after epoch {outcome.epochs_run}" if pruned else None,
        objective=cv.mean if cv else outcome.objective,
        objectiveStd=cv.std if cv else None,
        metric=config.objective.metric,
        metrics=cv.metrics if cv else outcome.metrics,
        split=SplitInfo(**data.split.as_dict()) if data.split else None,
        epochs=outcome.epochs_run,
        modelChecksum=exported.checksum,
        onnxMaxAbsDiff=exported.max_abs_diff,
        extra={
            "bestEpoch": outcome.best_epoch,
            "stoppedEarly": outcome.stopped_early,
            "device": str(placement.device),
            "worldSize": placement.world_size,
            "seed": config.seed,
            "exporter": exported.exporter,
        }  # fmt: skip
        | ({"foldObjectives": cv.objectives, "exportedFold": cv.best_fold} if cv else {}),
    )


def _start_tracking(config: TrainerConfig, hp: params.HyperParams, tracker: Tracker) -> None:
    """One tracking run per Trial, named after it, with every parameter that shaped it."""
    ident = config.identity
    tracker.start(
        experiment=(config.tracking.experimentName if config.tracking else None)
        or ident.experiment
        or "thunderbolt",
        run_name=ident.trial,
        params={
            **config.parameters,
            **hp.as_dict(),
            "seed": config.seed,
            "task": config.task,
            "dataset": config.dataset.uri if config.dataset else "",
        },  # fmt: skip
        tags=trial_tags(config, hp),
    )


def _load_folds(
    config: TrainerConfig, folds: int, s3_endpoint: str | None
) -> list[datasets.Dataset]:
    """The Experiment's one split (or its k folds), the same for every Trial."""
    split_seed = config.splitSeed if config.splitSeed is not None else config.seed
    if config.dataset is None:
        raise DatasetError("the built-in trainer needs trialTemplate.dataset")
    if folds > 1:
        return datasets.load_folds(
            config.dataset, config.task, split_seed, folds, s3_endpoint_url=s3_endpoint
        )
    return [datasets.load(config.dataset, config.task, split_seed, s3_endpoint_url=s3_endpoint)]


def _identity(config: TrainerConfig) -> dict[str, str]:
    """Which Trial resource a run or a model file came from."""
    ident = config.identity
    return {
        "thunderbolt.namespace": ident.namespace,
        "thunderbolt.experiment": ident.experiment,
        "thunderbolt.trial": ident.trial,
        "thunderbolt.trial_uid": ident.uid,
    }


def trial_tags(config: TrainerConfig, hp: params.HyperParams) -> dict[str, str]:
    """Tags that let anyone go from an MLflow run back to its Trial resource."""
    return {
        **_identity(config),
        "thunderbolt.trial_number": str(config.identity.number),
        "thunderbolt.spectral_norm": str(hp.spectral_norm).lower(),
        "thunderbolt.task": config.task,
        "thunderbolt.seed": str(config.seed),
    }


def onnx_metadata(config: TrainerConfig, hp: params.HyperParams) -> dict[str, str]:
    return {
        **_identity(config),
        "thunderbolt.parameters": json.dumps(hp.as_dict(), sort_keys=True),
    }


def artifact_prefix(config: TrainerConfig) -> str | None:
    """``<artifacts.uri>/<namespace>/<experiment>/<trial>`` for file:// and s3:// stores."""
    if config.artifacts is None or config.artifacts.uri == "mlflow":
        return None
    ident = config.identity
    parts = [
        p for p in (ident.namespace, ident.experiment, ident.trial or fingerprint(config)) if p
    ]
    return join(config.artifacts.uri, *parts)


def publish(
    config: TrainerConfig,
    out: pathlib.Path,
    model_path: pathlib.Path,
    result: TrainResult,
    tracker: Tracker,
    say: Callable[[str], None],
) -> None:
    """Upload the model (and result.json) where the config says; set ``modelUri``."""
    s3_endpoint = config.artifacts.s3EndpointUrl if config.artifacts else None
    tracked_uri = tracker.log_artifact(str(model_path), MLFLOW_ARTIFACT_DIR)
    if tracked_uri and config.tracking and config.tracking.registeredModelName:
        result.mlflowModelVersion = tracker.register(
            config.tracking.registeredModelName, MLFLOW_ARTIFACT_DIR
        )
    result.mlflowRunId, result.mlflowRunUrl = tracker.run_id, tracker.run_url
    result.trackingError = tracker.error
    prefix = artifact_prefix(config)
    if config.artifacts is not None and config.artifacts.uri == "mlflow":
        if tracked_uri is not None:
            result.modelUri = tracked_uri
        elif config.checkpointUri:  # MLflow is down: keep the model next to the checkpoints
            prefix = config.checkpointUri
            say("MLflow artifact store unavailable; uploading the model to checkpointUri")
    if prefix is not None:
        model_uri = join(prefix, MODEL_FILE)
        store = store_for(model_uri, s3_endpoint_url=s3_endpoint)
        try:
            store.put_bytes(model_uri, model_path.read_bytes())
            result.modelUri = model_uri
            store.put_bytes(
                join(prefix, "result.json"),
                result.model_dump_json(indent=2, exclude_none=True).encode(),
            )
        except ArtifactError as exc:
            raise TrainingError(str(exc), reason="ArtifactError") from exc
    if result.modelUri is None:
        result.modelUri = model_path.resolve().as_uri()
    say(f"model at {result.modelUri}")
