"""Standard Kubernetes conditions, shared by the Experiment and Trial status builders."""

from __future__ import annotations

from typing import Any


def condition(
    kind: str,
    on: bool,
    reason: str,
    message: str | None,
    at: str,
    generation: int | None = None,
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if on else "False",
        "reason": reason,
        "lastTransitionTime": at,
    }
    # No empty strings: the 1.20 API server validates "" as null and rejects it.
    if on and message:
        cond["message"] = message
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def merge_conditions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep lastTransitionTime where a condition's status did not change, and keep the
    old conditions of other types (another writer's, e.g. ``RecordsConsistent``)."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        if before and before.get("status") == cond["status"] and before.get("lastTransitionTime"):
            cond = {**cond, "lastTransitionTime": before["lastTransitionTime"]}
        out.append(cond)
    written = {c["type"] for c in new}
    return out + [c for c in old or [] if c.get("type") not in written]
