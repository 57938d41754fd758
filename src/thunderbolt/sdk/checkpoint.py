"""One checkpoint per run, overwritten every epoch, so a restarted pod resumes.

It lives under ``config.checkpointUri`` (any artifact store: ``s3://``, ``file://``) or,
without one, in the output directory (an emptyDir survives container restarts). A
fingerprint of everything that shapes training is stored with it: a checkpoint from
other parameters or data is ignored rather than resumed into the wrong run.

States are written with ``torch.save`` when torch is installed (tensors, optimizer
state) and as JSON otherwise, so SDK users without torch can checkpoint plain values.
torch is imported only when a checkpoint is written or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from typing import Any

from thunderbolt.api.trainer_config import TrainerConfig
from thunderbolt.artifacts import ArtifactError, ArtifactStore, join, store_for

log = logging.getLogger(__name__)
_ZIP_MAGIC = b"PK"  # torch.save's format is a zip archive

FILENAME = "checkpoint.pt"


def fingerprint(config: TrainerConfig) -> str:
    """Changes when anything that affects the trained weights changes."""
    shaping = config.model_dump(
        include={
            "parameters",
            "task",
            "dataset",
            "model",
            "epochs",
            "batchSize",
            "seed",
            "splitSeed",
            "folds",
            "objective",
        }
    )
    shaping["identity"] = config.identity.uid or config.identity.trial
    blob = json.dumps(shaping, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class Checkpoints:
    def __init__(self, prefix: str, fingerprint: str, *, s3_endpoint_url: str | None = None):
        self.uri = join(prefix, FILENAME)
        self.fingerprint = fingerprint
        self._store: ArtifactStore = store_for(self.uri, s3_endpoint_url=s3_endpoint_url)

    def save(self, state: dict[str, Any]) -> None:
        self._store.put_bytes(self.uri, encode({"fingerprint": self.fingerprint, **state}))

    def load(self) -> dict[str, Any] | None:
        """The last saved state of this same run, or None to start from scratch."""
        if not self._store.exists(self.uri):
            return None
        try:
            state = decode(self._store.get_bytes(self.uri))
        except (ArtifactError, RuntimeError, EOFError, OSError, ValueError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", self.uri, exc)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring checkpoint %s from a different configuration", self.uri)
            return None
        return state

    def clear(self) -> None:
        try:
            self._store.delete(self.uri)
        except Exception as exc:  # a leftover checkpoint is harmless; say so and go on
            log.warning("could not delete checkpoint %s: %s", self.uri, exc)


def encode(state: dict[str, Any]) -> bytes:
    try:
        import torch
    except ImportError:
        return json.dumps(state, allow_nan=True).encode()
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def decode(data: bytes) -> dict[str, Any]:
    if data[:2] == _ZIP_MAGIC:
        import torch

        # on CPU first: a pod restarted without its GPU can still resume
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    else:
        state = json.loads(data)
    if not isinstance(state, dict):
        raise ValueError("a checkpoint must hold a dict")
    return state
