"""`thunderbolt approve|reject|deprecate MODELDEPLOYMENT [--revision N] --reason TEXT`.

Each writes one annotation, ``approval.thunderbolt.io/<N>``, with a merge patch of the
ModelDeployment (field manager ``thunderbolt-cli``): whoever may ``patch``
modeldeployments in the namespace may decide, as with the equivalent ``kubectl
annotate``. The controller records the decision, the user, the field manager, the time
and the reason in the revision's history entry (see docs/modeldeployment.md#approval).

``approve`` and ``reject`` act on a revision waiting as ``PendingApproval`` (default: the
newest); ``deprecate`` marks any recorded revision so that its model is never deployed
by this ModelDeployment again (the serving one keeps serving until replaced).
"""

from __future__ import annotations

import argparse
from typing import Any

from thunderbolt.cli.kube import CliError, Kube, add_kube_args, connect, friendly
from thunderbolt.cli.rollback import parse_status
from thunderbolt.deploy import approval

DECISIONS = {"approve": "Approved", "reject": "Rejected", "deprecate": "Deprecated"}


def target_revision(md: dict[str, Any], command: str, number: int | None) -> int:
    """The revision the decision is about; CliError when it cannot take that decision."""
    name = md["metadata"]["name"]
    status = parse_status(md)
    entries = {h.number: h for h in status.history}
    if command == "deprecate":
        if number is None:
            raise CliError("deprecate needs --revision N")
        if number not in entries:
            raise CliError(f"{name} has no revision {number} in its history")
        if entries[number].deprecated is not None:
            raise CliError(f"{name}: revision {number} is already deprecated")
        return number
    waiting = [h.number for h in status.history if h.outcome == "PendingApproval"]
    if number is None:
        if not waiting:
            raise CliError(f"{name} has no revision waiting for approval")
        return max(waiting)
    item = entries.get(number)
    if item is None:
        raise CliError(f"{name} has no revision {number} in its history")
    if item.outcome != "PendingApproval":
        raise CliError(
            f"{name}: revision {number} is {item.outcome}, not PendingApproval; "
            "decisions are final (deprecate it, or roll back, instead)"
        )
    return number


def whoami(kube: Kube, kubeconfig: str | None, context: str | None) -> str | None:
    """The user the API server authenticates us as (SelfSubjectReview, Kubernetes 1.27+),
    else the kubeconfig's user name for the context (what the client says, no more)."""
    from kubernetes import client

    try:
        review: Any = client.AuthenticationV1Api(kube.api_client).create_self_subject_review(
            client.V1SelfSubjectReview(
                api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
            )
        )
        username = review.status.user_info.username
        if username:
            return str(username)
    except Exception:  # noqa: BLE001 — older API servers (404), or not allowed: fall back
        pass
    try:
        from kubernetes import config

        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        user = ((chosen or {}).get("context") or {}).get("user")
        return str(user) if user else None
    except Exception:  # noqa: BLE001 — in-cluster: no kubeconfig
        return None


def register(subparsers: argparse._SubParsersAction) -> None:
    helps = {
        "approve": "let a revision waiting for approval roll out",
        "reject": "refuse a revision waiting for approval (it is never deployed)",
        "deprecate": "never deploy a revision's model again in this ModelDeployment",
    }
    for command, text in helps.items():
        parser = subparsers.add_parser(command, help=text, description=__doc__)
        parser.add_argument("modeldeployment")
        parser.add_argument("--revision", type=int, default=None, metavar="N")
        parser.add_argument("--reason", required=True, help="why (recorded in the history)")
        add_kube_args(parser)
        parser.set_defaults(func=run, decision_command=command)


@friendly
def run(args: argparse.Namespace) -> int:
    reason = " ".join(args.reason.split())
    if not reason:
        raise CliError("--reason must not be empty")
    kube = connect(args)
    md = kube.get("modeldeployments", args.modeldeployment)
    command = args.decision_command
    number = target_revision(md, command, args.revision)
    by = whoami(kube, getattr(args, "kubeconfig", None), getattr(args, "context", None))
    key, value = approval.annotation(number, DECISIONS[command], reason, by)
    body = {"metadata": {"annotations": {key: value}}}
    kube.patch("modeldeployments", args.modeldeployment, body, approval.FIELD_MANAGER)
    who = f" as {by}" if by else ""
    print(
        f"modeldeployment/{args.modeldeployment}: revision {number} {DECISIONS[command].lower()}{who}"
    )
    return 0
