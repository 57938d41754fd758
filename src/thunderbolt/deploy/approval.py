"""Approvals: ``spec.approval: Manual`` holds each new revision until a person decides.

A decision is an annotation on the ModelDeployment, one per revision::

    approval.thunderbolt.io/<N>: '{"decision": "Approved", "reason": "...", "by": "alice"}'

written by ``thunderbolt approve|reject|deprecate`` or by ``kubectl annotate``. Why an
annotation: it is an ordinary ``patch`` of the ModelDeployment, so Kubernetes RBAC alone
decides who may approve (no admission webhook to run), it does not change the spec (so
GitOps tools do not fight over it and ``metadata.generation`` stays put), and one key
per revision lets decisions on several revisions coexist and be re-read idempotently.

Who decided: ``by`` is the user the client reports (the CLI asks the API server with a
SelfSubjectReview where it exists, else names the kubeconfig user); ``manager`` and
``at`` come from the object's ``managedFields`` entry that owns the annotation, which
the API server writes itself. Neither is proof against someone who may patch the object
and lies about the name: the API server's audit log is the authority on identities, and
RBAC on ``modeldeployments`` ``patch`` is what decides who can approve at all.

Decisions are final: an approved or rejected revision ignores a later, different
decision; ``Deprecated`` may be added to any revision at any time.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.modeldeployment import DecisionRecord, HistoryEntry

PREFIX = "approval.thunderbolt.io/"
FIELD_MANAGER = "thunderbolt-cli"


def annotation(number: int, decision: str, reason: str, by: str | None) -> tuple[str, str]:
    """The annotation key and value that record ``decision`` about revision ``number``."""
    value: dict[str, str] = {"decision": decision, "reason": reason[:1024]}
    if by:
        value["by"] = by[:256]
    return f"{PREFIX}{number}", json.dumps(value, sort_keys=True)


def _owners(managed: list[dict[str, Any]] | None) -> dict[str, tuple[str | None, str | None]]:
    """Annotation key -> (manager, time) of the managedFields entry that wrote it last."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for entry in managed or []:
        fields = (entry.get("fieldsV1") or {}).get("f:metadata") or {}
        for key in fields.get("f:annotations") or {}:
            if key.startswith(f"f:{PREFIX}"):
                found[key[2:]] = (entry.get("manager"), entry.get("time"))
    return found


def decisions(metadata: dict[str, Any]) -> tuple[dict[int, DecisionRecord], list[str]]:
    """The decisions recorded in the annotations, by revision, and the keys that are
    malformed (reported once as an Event by the caller, never applied)."""
    annotations = metadata.get("annotations") or {}
    owners = _owners(metadata.get("managedFields"))
    found: dict[int, DecisionRecord] = {}
    bad: list[str] = []
    for key, raw in annotations.items():
        if not key.startswith(PREFIX):
            continue
        number = key[len(PREFIX) :]
        try:
            value = json.loads(raw)
            if not number.isdigit() or not isinstance(value, dict):
                raise ValueError(key)
            manager, at = owners.get(key, (None, None))
            found[int(number)] = DecisionRecord(
                decision=value.get("decision"),
                by=value.get("by"),
                reason=value.get("reason"),
                manager=manager,
                at=at,
            )
        except (ValueError, ValidationError):
            bad.append(key)
    return found, sorted(bad)


def undecided(metadata: dict[str, Any], history: list[dict[str, Any]]) -> bool:
    """A decision annotation the history does not reflect yet (read from the watch cache
    by the timer: a waiting deployment is otherwise at rest)."""
    recorded, _ = decisions(metadata)
    by_number = {h.get("number"): h for h in history}
    for number, record in recorded.items():
        item = by_number.get(number)
        if item is None:
            continue
        if record.decision == "Deprecated":
            if not item.get("deprecated"):
                return True
        elif item.get("outcome") == "PendingApproval":
            return True
    return False


def apply(
    history: list[HistoryEntry], found: dict[int, DecisionRecord], now: str
) -> list[tuple[int, DecisionRecord]]:
    """Record the new decisions in ``history`` (in place); returns those applied.

    Approved: PendingApproval -> Active (``deployedAt`` now: its rollout starts now).
    Rejected: PendingApproval -> Rejected, never deployed. Deprecated: marked on any
    revision (a pending one is also rejected).
    """
    applied: list[tuple[int, DecisionRecord]] = []
    for i, item in enumerate(history):
        record = found.get(item.number)
        if record is None:
            continue
        record = record.model_copy(update={"at": record.at or now})
        update: dict[str, Any] = {}
        if record.decision == "Deprecated":
            if item.deprecated is None:
                update["deprecated"] = record
                if item.outcome == "PendingApproval":
                    update.update(outcome="Rejected", retiredAt=now, approval=record,
                                  reason=_why(item, "deprecated", record))  # fmt: skip
        elif item.outcome == "PendingApproval":
            if record.decision == "Approved":
                update.update(outcome="Active", deployedAt=now, approval=record,
                              reason=_why(item, "approved", record))  # fmt: skip
            else:
                update.update(outcome="Rejected", retiredAt=now, approval=record,
                              reason=_why(item, "rejected", record))  # fmt: skip
        if update:
            history[i] = item.model_copy(update=update)
            applied.append((item.number, record))
    return applied


def _why(item: HistoryEntry, verb: str, record: DecisionRecord) -> str:
    """The entry's reason (what the revision is) followed by the decision."""
    who = f" by {record.by}" if record.by else ""
    why = f"{verb}{who}: {record.reason or 'no reason given'}"
    return (f"{item.reason}; {why}" if item.reason else why)[-1024:]


def waiting(history: list[HistoryEntry]) -> HistoryEntry | None:
    """The newest revision waiting for a decision."""
    for item in reversed(history):
        if item.outcome == "PendingApproval":
            return item
    return None


def same_model(item: HistoryEntry, uri: str, checksum: str | None, trial: str | None,
               mlflow: tuple[str | None, str | None]) -> bool:  # fmt: skip
    """Whether ``item`` names the same model: the same bytes, Trial or MLflow version."""
    if (item.modelUri or "", item.modelChecksum) == (uri, checksum):
        return True
    if trial and item.trial == trial:
        return True
    return mlflow[0] is not None and (item.mlflowModelName, item.mlflowModelVersion) == mlflow
