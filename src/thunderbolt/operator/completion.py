"""What happens to Trials still running when their Experiment ends: pure decision.

``spec.onComplete: StopRunning`` (the default) stops them once the goal is reached or
the failure budget is spent: their Jobs are deleted and they are marked Pruned with
reason ``ExperimentComplete`` (Pruned, so a stop never counts as a failure).
``LetFinish`` lets them run; their results still reach the leaderboard.
"""

from __future__ import annotations

from typing import Any

from thunderbolt.api.experiment import ExperimentSpec
from thunderbolt.api.trial import FINISHED_PHASES

REASON = "ExperimentComplete"


def to_stop(spec: ExperimentSpec, terminal: bool, trials: list[dict[str, Any]]) -> list[str]:
    """Names of the Trials to stop now (none while the Experiment is still running)."""
    if not terminal or spec.onComplete != "StopRunning":
        return []
    return [
        t["metadata"]["name"]
        for t in trials
        if ((t.get("status") or {}).get("phase") or "Pending") not in FINISHED_PHASES
    ]


def stop_message(reason: str | None) -> str:
    return f"stopped: the experiment completed ({reason}); spec.onComplete is StopRunning"


def as_stopped(trial: dict[str, Any]) -> dict[str, Any]:
    """``trial`` as it is once stopped (for the Experiment status written right after)."""
    status = {**(trial.get("status") or {}), "phase": "Pruned", "reason": REASON}
    return {**trial, "status": status}
