"""Experiment ``spec.promote``: should the best trial replace what a ModelDeployment serves?

Decided once the Experiment has Succeeded (its best trial is final; promoting on every
new leader would start a rollout per improvement during the search). The promotion
patches the ModelDeployment's ``spec.model`` to ``{trialRef: <best>}`` and annotates who
asked, so the new revision's history entry reads ``experiment/<name>``. A missing
ModelDeployment is not created: replicas, resources and rollout strategy are serving
decisions an Experiment cannot make (and an Experiment-owned deployment would vanish
with it). A ModelDeployment pinned by ``spec.rollbackTo`` is left alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

ANNOTATION_BY = "thunderbolt.io/promoted-by"
ANNOTATION_TRIAL = "thunderbolt.io/promoted-trial"


@dataclasses.dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def beats(candidate: float, serving: float, direction: str, margin: float = 0.0) -> bool:
    """``candidate`` better than ``serving`` by more than ``margin`` (float rounding aside:
    0.96 - 0.94 is not more than 0.02)."""
    improvement = serving - candidate if direction == "minimize" else candidate - serving
    return improvement - margin > 1e-9 * max(1.0, abs(serving))


def required_margin(
    min_improvement: float | None, min_improvement_stds: float | None, best_std: float | None
) -> float:
    """The improvement a promotion needs: the larger of the absolute floor and the noise
    (``min_improvement_stds`` x the best trial's objective std, when it is known)."""
    margin = float(min_improvement or 0.0)
    if min_improvement_stds and best_std is not None:
        margin = max(margin, float(min_improvement_stds) * float(best_std))
    return margin


def decide(
    when: str,
    direction: str,
    best_trial: str | None,
    best_objective: float | None,
    deployment: dict[str, Any],
    *,
    margin: float = 0.0,
    metric: str | None = None,
) -> Decision:
    """Pure: the Experiment's best trial vs the ModelDeployment object as it is now.

    ``margin`` (from ``required_margin``) keeps a lucky trial, better only within the
    noise, from replacing a good model.
    """
    if not best_trial:
        return Decision(False, "the experiment has no best trial")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if (spec.get("model") or {}).get("trialRef") == best_trial:
        return Decision(False, f"already deploying {best_trial}")
    if spec.get("rollbackTo") is not None:
        return Decision(False, f"pinned by rollbackTo {spec['rollbackTo']}")
    for item in status.get("history") or []:
        if item.get("trial") == best_trial and item.get("deprecated"):
            return Decision(
                False, f"{best_trial}'s model is deprecated (revision {item.get('number')})"
            )
    if when == "Always":
        return Decision(True, f"{best_trial} (promote: Always)")
    current = status.get("currentRevision") or {}
    serving, serving_metric = current.get("objective"), current.get("objectiveMetric")
    if serving is None:
        return Decision(True, f"{best_trial}: nothing with a known objective is serving")
    if metric and serving_metric and serving_metric != metric:
        return Decision(
            True,
            f"{best_trial}: the serving objective measures {serving_metric}, not {metric}; "
            "not comparable",
        )
    if best_objective is None:
        return Decision(False, f"{best_trial} has no objective value")
    by = f" by more than {margin:g}" if margin > 0 else ""
    if beats(float(best_objective), float(serving), direction, margin):
        return Decision(
            True,
            f"{best_trial} ({best_objective:g}) beats serving ({serving:g}, {direction}){by}",
        )
    return Decision(
        False,
        f"{best_trial} ({best_objective:g}) does not beat serving ({serving:g}, {direction}){by}",
    )


def patch_for(experiment: str, trial: str) -> dict[str, Any]:
    """A merge patch pointing the ModelDeployment at ``trial`` (other sources cleared)."""
    return {
        "metadata": {
            "annotations": {ANNOTATION_BY: f"experiment/{experiment}", ANNOTATION_TRIAL: trial}
        },
        "spec": {"model": {"trialRef": trial, "mlflowModel": None, "uri": None, "checksum": None}},
    }


def source_label(annotations: dict[str, str] | None, trial_ref: str | None) -> str | None:
    """``experiment/<name>`` when the current trialRef was put there by a promotion."""
    annotations = annotations or {}
    if trial_ref and annotations.get(ANNOTATION_TRIAL) == trial_ref:
        return annotations.get(ANNOTATION_BY)
    return None
