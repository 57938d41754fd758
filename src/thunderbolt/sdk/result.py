"""The result the operator reads: ``DIR/result.json`` and the termination message.

Kubernetes keeps the termination message on the pod's status after the container
exits, which is how the operator learns the objective without reading files or logs.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sys
from collections.abc import Callable

from thunderbolt.api.trainer_config import (
    TERMINATION_MESSAGE_LIMIT,
    TERMINATION_MESSAGE_PATH,
    TrainResult,
)

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def say(message: str) -> None:
    print(message, flush=True)


def write_result(result: TrainResult, out: pathlib.Path, emit: Say = say) -> None:
    """Write result.json and the termination message; print the one-line verdict."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(result.model_dump_json(indent=2, exclude_none=True) + "\n")
    termination = pathlib.Path(
        os.environ.get("THUNDERBOLT_TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH)
    )
    # the kubelet creates the file; outside a pod there is none and nothing to write
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
    for shed in ("extra", "message", "validation", "metrics"):
        if len(text.encode()) <= limit:
            return text
        if shed == "message" and doc.get("message"):
            doc["message"] = doc["message"][:200]
        else:
            doc.pop(shed, None)
        text = json.dumps(doc, separators=(",", ":"))
    return text if len(text.encode()) <= limit else text.encode()[:limit].decode(errors="ignore")
