"""`thunderbolt rollback MODELDEPLOYMENT [--to N] [--force]`: ask the controller to roll back.

Sets ``spec.rollbackTo``; the deploy controller does the rollout and records it in
the history. Without ``--to`` the target is the newest revision older than the serving
one that actually served all traffic (not a canary that failed analysis, not a
revision superseded before it was ready, not a refused or rejected one). A ``--to``
target that never served is refused unless ``--force``; refused, rejected and
deprecated revisions never are.
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.modeldeployment import HistoryEntry, ModelDeploymentStatus
from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly
from thunderbolt.deploy.revisions import served

# Never deployable, whatever --force says: the controller refuses them as well.
NEVER = {"Refused": "was refused (its model could not be verified)",
         "Rejected": "was rejected", "PendingApproval": "is waiting for approval"}  # fmt: skip


def parse_status(md: dict[str, Any]) -> ModelDeploymentStatus:
    try:
        return ModelDeploymentStatus.model_validate(md.get("status") or {})
    except ValidationError as exc:
        raise CliError(
            f"{md['metadata']['name']}: unreadable status ({exc.error_count()} errors)"
        ) from exc


def recorded_revisions(md: dict[str, Any]) -> list[int]:
    status = md.get("status") or {}
    numbers = {h.get("number") for h in status.get("history") or []}
    current = (status.get("currentRevision") or {}).get("number")
    numbers.add(current)
    return sorted(n for n in numbers if isinstance(n, int))


def rollback_target(md: dict[str, Any], to: int | None, force: bool = False) -> int:
    """The revision to roll back to; CliError explains when there is none."""
    name = md["metadata"]["name"]
    status = parse_status(md)
    current = status.currentRevision.number if status.currentRevision else None
    entries: dict[int, HistoryEntry] = {h.number: h for h in status.history}
    if to is not None:
        revisions = recorded_revisions(md)
        if to not in revisions:
            known = ", ".join(map(str, revisions)) or "none"
            raise CliError(f"{name} has no revision {to} (recorded: {known})")
        if to == current:
            raise CliError(f"{name} already serves revision {to}")
        item = entries.get(to)
        if item is not None:
            if item.outcome in NEVER:
                raise CliError(
                    f"{name}: revision {to} {NEVER[item.outcome]}; it cannot be deployed"
                )
            if item.deprecated:
                raise CliError(
                    f"{name}: revision {to} is deprecated ({item.deprecated.reason or '-'})"
                )
            if not served(item) and not force:
                raise CliError(
                    f"{name}: revision {to} never served ({item.outcome}: {item.reason or '-'}); "
                    "pass --force to deploy it anyway"
                )
        return to
    candidates = [
        h for h in status.history
        if (current is None or h.number < current) and served(h) and not h.deprecated
    ]  # fmt: skip
    if not candidates:
        raise CliError(
            f"{name} has no older revision that served before revision {current}; "
            "name one with --to N (and --force if it never served)"
        )
    return max(candidates, key=lambda h: h.number).number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback", help="roll a ModelDeployment back to a recorded revision", description=__doc__
    )
    parser.add_argument("modeldeployment")
    parser.add_argument("--to", type=int, default=None, metavar="N", help="revision number")
    parser.add_argument(
        "--force", action="store_true", help="allow a --to revision that never served"
    )
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    md = kube.get("modeldeployments", args.modeldeployment)
    target = rollback_target(md, args.to, getattr(args, "force", False))
    kube.patch("modeldeployments", args.modeldeployment, {"spec": {"rollbackTo": target}})
    current = ((md.get("status") or {}).get("currentRevision") or {}).get("number")
    print(
        f"modeldeployment/{args.modeldeployment}: rollback from revision {current} to {target} requested"
    )
    return 0
