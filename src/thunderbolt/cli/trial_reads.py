"""Reading Trials for the views, quick at 10 000 Trials (docs/operator.md, "CLI over
10 000 Trials").

Compact Trials come from the Table of printer columns (``api/trial_columns.py``: the
fields the views read), answered from the API server's watch cache: ~0.1 KiB per Trial
instead of ~5 KiB. A cluster whose Trial CRD predates those columns gets whole Trials.
"""

from __future__ import annotations

from typing import Any

from thunderbolt.api import trial_columns
from thunderbolt.api.meta import EXPERIMENT_LABEL
from thunderbolt.cli.kube import Kube


def selected_trials(kube: Kube, selector: str | None, whole: bool = False) -> list[dict[str, Any]]:
    """The namespace's Trials matching ``selector``: compact unless ``whole``."""
    if not whole:
        table = kube.table("trials", selector or "")
        if trial_columns.has_all_columns(table):
            return trial_columns.compact_trials(table, kube.namespace)
    return kube.list("trials", label_selector=selector, cached=True)


def trials_of(kube: Kube, experiment: str, whole: bool = False) -> list[dict[str, Any]]:
    """The experiment's Trials: those with its label (the operator sets it on every
    Trial); with none labelled, any whose spec.experiment names it (made by hand)."""
    labelled = selected_trials(kube, f"{EXPERIMENT_LABEL}={experiment}", whole)
    if labelled:
        return labelled
    return [t for t in kube.list("trials") if (t.get("spec") or {}).get("experiment") == experiment]
