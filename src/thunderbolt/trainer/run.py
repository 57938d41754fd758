"""One training run from config to published model and result.

Whatever happens, a ``TrainResult`` is written to ``DIR/result.json`` and to the
termination-message path (by the SDK's ``Trial``, as for any SDK script), and the exit
code says success (0, also for Pruned) or the reason (see ``sdk.errors.EXIT_CODES``).
The operator reads the result; a person reads the progress lines and the last line.
"""

from __future__ import annotations

import logging
import pathlib
import sys
import traceback

from thunderbolt.api.trainer_config import TrainerConfig, TrainResult
from thunderbolt.sdk.callbacks import TrainingReporter
from thunderbolt.sdk.config import load_config
from thunderbolt.sdk.errors import InvalidConfig, OutOfMemory, TrainingError
from thunderbolt.sdk.result import Say, say, termination_message, write_result
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer import metrics as metric_names

__all__ = ["load_config", "main", "termination_message", "train"]

log = logging.getLogger(__name__)


def main(config_path: str, output_dir: str, *, emit: Say = say) -> int:
    """Load the config and train; the CLI's whole job. Returns the exit code."""
    try:
        config = load_config(config_path)
    except TrainingError as exc:
        result = TrainResult(status="Failed", reason=exc.reason, message=str(exc))
        write_result(result, pathlib.Path(output_dir), emit)
        return exc.exit_code
    result, code = train(config, output_dir, emit=emit)
    return code


def train(
    config: TrainerConfig,
    output_dir: str,
    *,
    emit: Say = say,
    reporter: TrainingReporter | None = None,
) -> tuple[TrainResult, int]:
    """Train, export and publish; never raises for a failed run, returns it.

    ``reporter`` replaces the one the config names (embedding, tests).
    """
    # torch is imported here, not at module level: `thunderbolt serve` must not load it
    import torch

    from thunderbolt.trainer import distributed, pipeline

    placement = distributed.setup()
    trial = Trial(
        config,
        output_dir,
        reporter=reporter,
        rank=placement.rank,
        raise_on_prune=False,  # the loop stops every rank at the same epoch itself
        emit=emit,
    )
    code, finished = 0, False
    try:
        trial.announce()
        _check_objective(config)
        result = pipeline.run(config, trial, placement)
        finished = True
    except TrainingError as exc:
        result, code = trial.fail(exc), exc.exit_code
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        oom = OutOfMemory(f"out of memory: {' '.join(str(exc).split())[:300]}")
        result, code = trial.fail(oom), oom.exit_code
    except Exception as exc:  # a bug or an environment problem: still report it, one line
        traceback.print_exc(file=sys.stderr)
        result, code = trial.fail(exc), 1
    finally:
        distributed.teardown(finished=finished)
    return result, code


def _check_objective(config: TrainerConfig) -> None:
    known = ("train_loss", *metric_names.names(config.task))
    if config.objective.metric not in known:
        raise InvalidConfig(
            f"objective metric {config.objective.metric!r} is not computed for "
            f"{config.task}; choose from {', '.join(known)}"
        )
