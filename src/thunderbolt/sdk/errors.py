"""Failures that end a training run with a named reason and a distinct exit code.

The operator reads the reason from the termination message; a person reads it from
the last log line. Exit codes let shell scripts tell the causes apart without JSON.
"""

from __future__ import annotations

from typing import Any

# reason -> process exit code (0 is success, also for Pruned; 2 is argparse's usage error)
EXIT_CODES: dict[str, int] = {
    "Error": 1,
    "DatasetError": 3,
    "Diverged": 4,
    "Collapsed": 5,
    "ExportMismatch": 6,
    "OOM": 7,
    "InvalidConfig": 8,
    "ArtifactError": 9,
    "NoObjective": 10,
}


class TrainingError(RuntimeError):
    """A run that cannot succeed; ``reason`` is one word (see ``EXIT_CODES``)."""

    reason = "Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.reason, 1)


class TrialPruned(Exception):  # noqa: N818 (Optuna's name, which users know)
    """The operator pruned this Trial: stop training and finish as Pruned (exit code 0).

    Raised by ``Trial.report`` (as ``optuna.TrialPruned`` is raised by user code); the
    ``with thunderbolt.sdk.init() as trial:`` block turns it into a Pruned result.
    """

    def __init__(self, step: int | None = None) -> None:
        super().__init__(
            f"pruned by the operator after step {step}" if step is not None else "pruned"
        )
        self.step = step


class DatasetError(TrainingError):
    """The data cannot train a sound model; ``findings`` are the validation findings
    (``thunderbolt.validation``) that say why, when the checks raised it."""

    reason = "DatasetError"

    def __init__(self, message: str, *, reason: str | None = None,
                 findings: list[Any] | None = None) -> None:  # fmt: skip
        super().__init__(message, reason=reason)
        self.findings = list(findings or [])


class Diverged(TrainingError):
    reason = "Diverged"


class Collapsed(TrainingError):
    reason = "Collapsed"


class ExportMismatch(TrainingError):
    reason = "ExportMismatch"


class InvalidConfig(TrainingError):
    reason = "InvalidConfig"


class OutOfMemory(TrainingError):
    reason = "OOM"


class NoObjective(TrainingError):
    """``finish()`` got no objective and no report carried the objective metric."""

    reason = "NoObjective"
