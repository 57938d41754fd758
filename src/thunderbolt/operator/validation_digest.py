"""Where the data and model checks show outside a Trial's own status: one Kubernetes
Event on a Trial whose validation failed or warned (or that stopped on a DatasetError),
and the Experiment's ``status.validation`` summary across its Trials.

The builders are pure; ``announce`` is the only call with effects. The Event is posted
once per Trial: its name is deterministic (a second create is a 409) and the Trial's
``status.validationEvent`` records it, so a restarted operator that resumes finished
Trials posts only what is missing, also after the Event itself expired.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thunderbolt.operator import kube
from thunderbolt.validation.across_trials import FINISHED, ValidationTally, summarize

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ValidationEvent:
    name: str
    reason: str  # DatasetError, ValidationFailed, ValidationWarned
    message: str
    warning: bool


def event_name(trial: Mapping[str, Any]) -> str:
    """``<trial>.<uid[:8]>.validation``: the same for every attempt on this Trial."""
    meta = trial["metadata"]
    suffix = f".{str(meta.get('uid', ''))[:8]}.validation"
    name = str(meta["name"])
    if len(name) + len(suffix) > 253:
        name = hashlib.sha256(name.encode()).hexdigest()[:16]
    return name + suffix


def _top(validation: Mapping[str, Any]) -> str | None:
    findings = validation.get("findings") or []
    if not findings:
        return None
    f = findings[0]
    return f"{f.get('kind')}: {f.get('message', '')}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def trial_event(trial: Mapping[str, Any], status: Mapping[str, Any]) -> ValidationEvent | None:
    """The Event a finished Trial's validation calls for, if any (pass: none).

    The message is the top finding as the Trial's status already holds it (or, for a
    DatasetError without a digest, the status message): nothing else from the data."""
    if status.get("phase") not in FINISHED or status.get("validationEvent"):
        return None
    validation = status.get("validation") or {}
    verdict = validation.get("verdict")
    top = _top(validation)
    if status.get("reason") == "DatasetError":
        text = top or str(status.get("message") or "the dataset checks failed")
        return ValidationEvent(event_name(trial), "DatasetError", _short(text), True)
    if verdict == "fail":
        text = top or "failed: " + ", ".join(validation.get("failed") or ["checks"])
        return ValidationEvent(event_name(trial), "ValidationFailed", _short(text), True)
    if verdict == "warn":
        text = top or "warned: " + ", ".join(validation.get("warned") or ["checks"])
        return ValidationEvent(event_name(trial), "ValidationWarned", _short(text), False)
    return None


def announce(trial: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Post the Trial's validation Event and mark it in status; True if it did now."""
    event = trial_event(trial, status)
    if event is None:
        return False
    meta = trial["metadata"]
    kube.post_event(
        {**trial, "kind": "Trial"}, event.reason, event.message, warning=event.warning,
        name=event.name,
    )  # fmt: skip
    kube.patch_status("trials", meta["namespace"], meta["name"], {"validationEvent": event.name})
    return True


def experiment_summary(
    spec: Mapping[str, Any], trials: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The Experiment's ``status.validation`` (None until a Trial finished)."""
    if not any((t.get("status") or {}).get("phase") in FINISHED for t in trials):
        return None
    return summarize(spec, trials)


def with_summary(
    status: dict[str, Any],
    experiment: Mapping[str, Any],
    trials: list[dict[str, Any]] | ValidationTally,
) -> dict[str, Any]:
    """``status`` plus the validation summary (the caller writes only what changed);
    ``trials``: the Experiment's Trials, or the tally a reconcile keeps of them."""
    spec = experiment.get("spec") or {}
    if isinstance(trials, ValidationTally):
        found = trials.summary(spec.get("parameters") or []) if trials.finished else None
    else:
        found = experiment_summary(spec, trials)
    return status if found is None else {**status, "validation": found}
