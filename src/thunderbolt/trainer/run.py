"""One training run from config to published model and result.

Whatever happens, a ``TrainResult`` is written to ``DIR/result.json`` and to the
termination-message path, and the exit code says success (0, also for Pruned) or the
reason (see ``errors.EXIT_CODES``). The operator reads the result; a person reads the
progress lines and the last line.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Callable

from pydantic import ValidationError

from thunderbolt.api.meta import describe_errors
from thunderbolt.api.trainer_config import (
    TERMINATION_MESSAGE_LIMIT,
    TERMINATION_MESSAGE_PATH,
    TrainerConfig,
    TrainResult,
)
from thunderbolt.trainer import metrics as metric_names
from thunderbolt.trainer.callbacks import (
    GuardedReporter,
    NoopReporter,
    TrainingReporter,
    make_reporter,
)
from thunderbolt.trainer.errors import InvalidConfig, OutOfMemory, TrainingError
from thunderbolt.trainer.tracking import MlflowTracker, NullTracker, Tracker

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def say(message: str) -> None:
    print(message, flush=True)


def load_config(path: str | os.PathLike[str]) -> TrainerConfig:
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        raise InvalidConfig(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        return TrainerConfig.model_validate_json(text)
    except ValidationError as exc:
        problems = describe_errors(exc)
        raise InvalidConfig(f"invalid config {path}: {problems}") from exc


def make_tracker(config: TrainerConfig) -> Tracker:
    if config.tracking is None:
        return NullTracker()
    return MlflowTracker(config.tracking.trackingUri)


def main(config_path: str, output_dir: str, *, emit: Say = say) -> int:
    """Load the config and train; the CLI's whole job. Returns the exit code."""
    try:
        config = load_config(config_path)
    except TrainingError as exc:
        result = TrainResult(status="Failed", reason=exc.reason, message=str(exc))
        finish(result, pathlib.Path(output_dir), emit)
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

    ``reporter`` replaces the one ``make_reporter`` would pick (embedding, tests).
    """
    # torch is imported here, not at module level: `thunderbolt serve` must not load it
    import torch

    from thunderbolt.trainer import distributed, pipeline

    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    placement = distributed.setup()
    main_rank = placement.is_main
    live: TrainingReporter = NoopReporter()
    if main_rank:
        live = GuardedReporter(reporter or make_reporter(config))
    tracker: Tracker = make_tracker(config) if main_rank else NullTracker()
    began = time.monotonic()
    code = 0
    try:
        live.start()
        _check_objective(config)
        result = pipeline.run(config, out, placement, live, tracker, emit if main_rank else _quiet)
        tracker.finish("KILLED" if result.status == "Pruned" else "FINISHED")
    except TrainingError as exc:
        result, code = _failed(exc.reason, str(exc), tracker), exc.exit_code
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        oom = OutOfMemory(f"out of memory: {' '.join(str(exc).split())[:300]}")
        result, code = _failed(oom.reason, str(oom), tracker), oom.exit_code
    except Exception as exc:  # a bug or an environment problem: still report it, one line
        traceback.print_exc(file=sys.stderr)
        result, code = _failed("Error", f"{type(exc).__name__}: {exc}", tracker), 1
    finally:
        distributed.teardown()
    if not main_rank:
        return result, code
    result.extra.setdefault("wallSeconds", round(time.monotonic() - began, 3))
    result.mlflowRunId = result.mlflowRunId or tracker.run_id
    result.mlflowRunUrl = result.mlflowRunUrl or tracker.run_url
    result.trackingError = result.trackingError or tracker.error
    finish(result, out, emit)
    live.stop(result)
    return result, code


def _quiet(_message: str) -> None:
    return None


def _check_objective(config: TrainerConfig) -> None:
    known = ("train_loss", *metric_names.names(config.task))
    if config.objective.metric not in known:
        raise InvalidConfig(
            f"objective metric {config.objective.metric!r} is not computed for "
            f"{config.task}; choose from {', '.join(known)}"
        )


def _failed(reason: str, message: str, tracker: Tracker) -> TrainResult:
    tracker.finish("FAILED")
    return TrainResult(status="Failed", reason=reason, message=message)


def finish(result: TrainResult, out: pathlib.Path, emit: Say) -> None:
    """Write result.json and the termination message; print the one-line verdict."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(result.model_dump_json(indent=2, exclude_none=True) + "\n")
    termination = pathlib.Path(
        os.environ.get("THUNDERBOLT_TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH)
    )
    if termination.exists():
        try:
            termination.write_text(termination_message(result))
        except OSError as exc:
            log.warning("cannot write termination message %s: %s", termination, exc)
    if result.status == "Failed":
        print(f"Failed: {result.reason}: {result.message}", file=sys.stderr, flush=True)
    else:
        objective = (
            f"{result.metric}={result.objective:.4f}" if result.objective is not None else ""
        )
        emit(
            f"{result.status}: {objective} model={result.modelUri} checksum={result.modelChecksum}"
        )


def termination_message(result: TrainResult, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """Compact JSON of the result, shed of extras until it fits Kubernetes' limit."""
    doc = json.loads(result.model_dump_json(exclude_none=True))
    text = json.dumps(doc, separators=(",", ":"))
    for shed in ("extra", "message", "metrics"):
        if len(text.encode()) <= limit:
            return text
        if shed == "message" and doc.get("message"):
            doc["message"] = doc["message"][:200]
        else:
            doc.pop(shed, None)
        text = json.dumps(doc, separators=(",", ":"))
    return text if len(text.encode()) <= limit else text.encode()[:limit].decode(errors="ignore")
