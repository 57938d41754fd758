"""The steps of a run in order: data, model, training (one holdout split or k folds),
export, publishing.

Reporting, checkpoints, tracking, export and the result go through the SDK's ``Trial``,
the same calls a user's own training script makes. Errors propagate as
``TrainingError``s; ``run.train`` turns them into results.
"""

from __future__ import annotations

import torch

from thunderbolt.api.trainer_config import SplitInfo, TrainerConfig, TrainResult
from thunderbolt.sdk.errors import InvalidConfig, TrainingError
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer import checks, crossval, model, params, serving_cost, threads
from thunderbolt.trainer import data as datasets
from thunderbolt.trainer.distributed import Placement
from thunderbolt.trainer.export import export_trained
from thunderbolt.trainer.loop import LoopSettings, Outcome, Trainer


def run(config: TrainerConfig, trial: Trial, placement: Placement) -> TrainResult:
    if config.dataset is None:
        raise InvalidConfig("the built-in trainer needs a dataset (trialTemplate.dataset)")
    hp = params.resolve(config)
    cpu_threads = threads.configure()
    s3_endpoint = config.artifacts.s3EndpointUrl if config.artifacts else None
    trial.start(
        params={
            **hp.as_dict(),
            "task": config.task,
            "dataset": config.dataset.uri,
            "model": config.model,
        },  # fmt: skip
        tags={
            "thunderbolt.spectral_norm": str(hp.spectral_norm).lower(),
            "thunderbolt.model_family": config.model,
        },
    )
    folds = config.folds or 1
    split_seed = config.splitSeed if config.splitSeed is not None else config.seed
    if folds > 1:
        fold_data = datasets.load_folds(
            config.dataset, config.task, split_seed, folds, s3_endpoint_url=s3_endpoint
        )
    else:
        fold_data = [
            datasets.load(config.dataset, config.task, split_seed, s3_endpoint_url=s3_endpoint)
        ]
    if config.model == "cnn":
        fold_data = [datasets.as_images(d) for d in fold_data]
    data = fold_data[0]
    say = trial.emit
    say(
        f"training {config.model} for {config.task} on {config.dataset.uri}: "
        f"{len(data.x_train)} train / {len(data.x_val)} validation samples"
        + (f" x {folds} folds" if folds > 1 else "")
        + f" of shape {list(data.sample_shape)}, device {placement.device}"
        + (f" ({cpu_threads} threads)" if placement.device.type == "cpu" else "")
        + (f" x{placement.world_size}" if placement.world_size > 1 else "")
    )
    say("parameters: " + ", ".join(f"{k}={v}" for k, v in hp.as_dict().items()))
    dataset_report = checks.check_data(config, data, trial) if placement.is_main else None
    trainers: dict[int, Trainer] = {}

    def fit(fold: int, fold_set: datasets.Dataset, offset: int) -> Outcome:
        torch.manual_seed(config.seed)  # the same seed initializes the same weights
        net = model.build(config.model, fold_set.sample_shape, fold_set.num_outputs, hp,
                          fold_set.mean, fold_set.std)  # fmt: skip
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
            trial=trial,
            # folds report as one run of folds x epochs steps, each fold checkpointed apart
            step_offset=offset,
            checkpoints=trial.checkpoint_store(f"fold-{fold}") if folds > 1 else None,
            say=say,
            probe=checks.probe_settings(config) if placement.is_main else None,
        )
        trainers[fold] = trainer
        try:
            return trainer.fit()
        except TrainingError:  # Diverged, Collapsed: the report says where and why
            checks.check_model(config, fold_set, trainer, dataset_report, trial, hp.as_dict(),
                               same_split=fold == 0)  # fmt: skip
            raise

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
    best_fold = cv.best_fold if cv else 0
    checks.check_model(config, data, trainers[best_fold], dataset_report, trial, hp.as_dict(),
                       same_split=best_fold == 0)  # fmt: skip
    exported = export_trained(outcome.net, data, trial, config.model)
    # what serving it costs, as metrics a search can trade accuracy against
    cost = serving_cost.measure(exported.data, data.x_val)
    say(serving_cost.summary(cost))
    return trial.finish(
        objective=cv.mean if cv else outcome.objective,
        metrics=(cv.metrics if cv else outcome.metrics) | cost,
        status="Pruned" if pruned else "Succeeded",
        message=f"pruned by the operator after epoch {outcome.epochs_run}" if pruned else None,
        epochs=outcome.epochs_run,
        objective_std=cv.std if cv else None,
        split=SplitInfo(**data.split.as_dict()) if data.split else None,
        extra={
            "bestEpoch": outcome.best_epoch,
            "stoppedEarly": outcome.stopped_early,
            "device": str(placement.device),
            "worldSize": placement.world_size,
            "seed": config.seed,
            "exporter": exported.exporter,
            "model": config.model,
        }  # fmt: skip
        | ({"foldObjectives": cv.objectives, "exportedFold": cv.best_fold} if cv else {}),
    )
