"""Thunderbolt's SDK for your own training code.

    from thunderbolt import sdk

    with sdk.init(parameters={"lr": 1e-3}) as trial:      # defaults for a laptop run
        lr = trial.params.float("lr")
        state = trial.load_checkpoint()                    # resume after a pod restart
        for epoch in range(start, trial.epochs + 1):
            ...
            trial.report(epoch, val_accuracy=acc)          # raises TrialPruned if pruned
            trial.save_checkpoint({...})
        trial.finish(objective=best_acc)                   # or let the block finish it

In a Trial's pod the config comes from the operator's mount; elsewhere from a file or
the keyword arguments. Importing this needs neither torch, kopf nor kubernetes;
``thunderbolt.sdk.torch`` has the PyTorch helpers (spectral norm, verified ONNX export).
"""

from __future__ import annotations

import os
from typing import Any

from thunderbolt.api.trainer_config import TrainerConfig, TrainResult
from thunderbolt.sdk.callbacks import TrainingReporter
from thunderbolt.sdk.config import ConfigSource, output_dir, resolve
from thunderbolt.sdk.errors import EXIT_CODES, InvalidConfig, TrainingError, TrialPruned
from thunderbolt.sdk.params import Parameters
from thunderbolt.sdk.result import Say, say
from thunderbolt.sdk.tracking import Tracker
from thunderbolt.sdk.trial import Trial

__all__ = [
    "EXIT_CODES",
    "InvalidConfig",
    "Parameters",
    "TrainResult",
    "TrainerConfig",
    "TrainingError",
    "Trial",
    "TrialPruned",
    "init",
]


def init(
    config: ConfigSource = None,
    *,
    output: str | os.PathLike[str] | None = None,
    parameters: dict[str, Any] | None = None,
    objective: str | None = None,
    direction: str | None = None,
    raise_on_prune: bool = True,
    reporter: TrainingReporter | None = None,
    tracker: Tracker | None = None,
    emit: Say = say,
    **fields: Any,
) -> Trial:
    """The current Trial.

    ``config``: a TrainerConfig, a dict, or a JSON file; by default the operator's mount
    (``$THUNDERBOLT_CONFIG``), else a local run built from the keyword arguments.
    ``parameters``, ``objective``/``direction`` and other TrainerConfig ``fields``
    (``seed``, ``epochs``, ``batchSize``, ``checkpointUri``…) are defaults the config
    overrides. ``output``: where result.json, the model and local checkpoints go
    (default ``$THUNDERBOLT_OUTPUT_DIR``, the pod's ``/workspace/output``, or
    ``./thunderbolt-output/<trial>``).
    """
    if objective is not None:
        fields["objective"] = {"metric": objective, "direction": direction or "maximize"}
    elif direction is not None:
        raise InvalidConfig("direction needs objective (the metric it applies to)")
    resolved, mounted = resolve(config, parameters=parameters, **fields)
    out = output_dir(resolved, mounted, os.fspath(output) if output is not None else None)
    return Trial(
        resolved,
        out,
        in_cluster=mounted,
        reporter=reporter,
        tracker=tracker,
        raise_on_prune=raise_on_prune,
        emit=emit,
    )
