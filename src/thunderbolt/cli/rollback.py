"""`thunderbolt rollback MODELDEPLOYMENT [--to N]`: ask the controller to roll back.

Sets ``spec.rollbackTo``; the deploy controller does the rollout and records it in
the history. Without ``--to`` the target is the newest recorded revision older than
the one serving now.
"""

from __future__ import annotations

import argparse
from typing import Any

from thunderbolt.cli.kube import CliError, add_kube_args, connect, friendly


def recorded_revisions(md: dict[str, Any]) -> list[int]:
    status = md.get("status") or {}
    numbers = {h.get("number") for h in status.get("history") or []}
    current = (status.get("currentRevision") or {}).get("number")
    numbers.add(current)
    return sorted(n for n in numbers if isinstance(n, int))


def rollback_target(md: dict[str, Any], to: int | None) -> int:
    """The revision to roll back to; CliError explains when there is none."""
    name = md["metadata"]["name"]
    revisions = recorded_revisions(md)
    current = ((md.get("status") or {}).get("currentRevision") or {}).get("number")
    if to is not None:
        if to not in revisions:
            known = ", ".join(map(str, revisions)) or "none"
            raise CliError(f"{name} has no revision {to} (recorded: {known})")
        if to == current:
            raise CliError(f"{name} already serves revision {to}")
        return to
    older = [n for n in revisions if current is None or n < current]
    if not older:
        raise CliError(f"{name} has no revision older than {current} to roll back to")
    return older[-1]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback", help="roll a ModelDeployment back to a recorded revision", description=__doc__
    )
    parser.add_argument("modeldeployment")
    parser.add_argument("--to", type=int, default=None, metavar="N", help="revision number")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    md = kube.get("modeldeployments", args.modeldeployment)
    target = rollback_target(md, args.to)
    kube.patch("modeldeployments", args.modeldeployment, {"spec": {"rollbackTo": target}})
    current = ((md.get("status") or {}).get("currentRevision") or {}).get("number")
    print(
        f"modeldeployment/{args.modeldeployment}: rollback from revision {current} to {target} requested"
    )
    return 0
