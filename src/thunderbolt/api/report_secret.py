"""The per-Trial report Secret: a contract between the operator (creates it, and replaces
one that is not the Trial's), the report endpoint (verifies against it) and the trainer
(reads the mounted token).

Every Trial gets its own random token in a Secret owned by the Trial (so it is deleted
with it), mounted read-only into that Trial's pod at ``REPORT_TOKEN_DIR``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from thunderbolt.api.meta import (
    COMPONENT_LABEL,
    EXPERIMENT_LABEL,
    MANAGED_BY,
    TRIAL_LABEL,
    owner_reference,
)
from thunderbolt.api.trainer_config import REPORT_TOKEN_DIR

TOKEN_KEY = "token"
COMPONENT = "report-credential"
_SUFFIX = "-report"
_MAX_NAME = 253

__all__ = [
    "REPORT_TOKEN_DIR",
    "TOKEN_KEY",
    "Credential",
    "build_report_secret",
    "credential_from_secret",
    "new_token",
    "owned_by",
    "secret_name",
]


def secret_name(trial_name: str) -> str:
    """``<trial>-report``; over-long names are shortened with a hash so they stay unique."""
    name = trial_name + _SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(trial_name.encode()).hexdigest()[:10]
    keep = _MAX_NAME - len(_SUFFIX) - len(digest) - 1
    return f"{trial_name[:keep].rstrip('-.')}-{digest}{_SUFFIX}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def build_report_secret(trial_obj: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """The Secret manifest for a Trial's report token, owned by the Trial.

    A fresh random token each call: create it once (a 409 on create means it exists and
    the existing token stays valid) and mount it; never patch it over an existing one.
    """
    meta = trial_obj["metadata"]
    labels = {TRIAL_LABEL: meta["name"], COMPONENT_LABEL: COMPONENT, **MANAGED_BY}
    experiment = (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
    if experiment:
        labels[EXPERIMENT_LABEL] = experiment
    value = token or new_token()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(meta["name"]),
            "namespace": meta.get("namespace"),
            "labels": labels,
            "ownerReferences": [owner_reference(trial_obj, kind="Trial")],
        },
        "data": {TOKEN_KEY: base64.b64encode(value.encode()).decode()},
    }


@dataclass(frozen=True)
class Credential:
    """What a Trial's Secret says: its token and the uid of the Trial that owns it."""

    token: bytes
    owner_uid: str | None


def credential_from_secret(secret: dict[str, Any], trial_name: str) -> Credential | None:
    """Only a Secret that is labelled for this Trial counts (not any Secret of that name)."""
    meta = secret.get("metadata") or {}
    if (meta.get("labels") or {}).get(TRIAL_LABEL) != trial_name:
        return None
    raw = (secret.get("data") or {}).get(TOKEN_KEY)
    if not raw:
        return None
    try:
        token = base64.b64decode(raw, validate=True)
    except ValueError:
        return None
    owners = [
        ref.get("uid")
        for ref in meta.get("ownerReferences") or []
        if ref.get("kind") == "Trial" and ref.get("name") == trial_name and ref.get("uid")
    ]
    if not owners:
        # Not made by the operator for this Trial (it always sets the owner): a Secret
        # planted before the Trial existed must never authenticate anything.
        return None
    return Credential(token=token, owner_uid=owners[0])


def owned_by(secret: dict[str, Any], trial_obj: dict[str, Any]) -> bool:
    """Whether an existing report Secret is this very Trial's (same name and uid)."""
    meta = trial_obj["metadata"]
    credential = credential_from_secret(secret, meta["name"])
    return credential is not None and credential.owner_uid == meta.get("uid")
