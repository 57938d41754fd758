"""`thunderbolt history MODELDEPLOYMENT [-o wide|json]`: each revision's lineage in one line.

Trial -> MLflow run -> model version -> checksum -> who decided -> when it served all
traffic -> outcome and reason, oldest first, read from the ModelDeployment's status (the
one record of it). A revision waiting for approval shows its objective next to the
serving one and the Trial's validation verdict: what a person needs to decide. What the
Trial ran and cost (image digest, code revision, CPU-seconds, peak memory) is read from
the Trial itself, while it exists (``-o wide`` and ``-o json``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from thunderbolt.api.modeldeployment import HistoryEntry
from thunderbolt.cli.kube import add_kube_args, connect, friendly
from thunderbolt.cli.rollback import parse_status
from thunderbolt.cli.tables import number, table


def lineage(item: HistoryEntry) -> dict[str, Any]:
    """One revision's chain, as JSON-able values."""
    decided = item.approval
    return {
        "revision": item.number,
        "outcome": item.outcome,
        "source": item.source,
        "trial": item.trial,
        "experiment": item.experiment,
        "mlflowRunId": item.mlflowRunId,
        "mlflowModel": (
            f"{item.mlflowModelName or '?'}/{item.mlflowModelVersion}"
            if item.mlflowModelVersion
            else None
        ),
        "modelUri": item.modelUri,
        "checksum": item.modelChecksum,
        "objective": item.objective,
        "objectiveMetric": item.objectiveMetric,
        "servingObjective": item.servingObjective,
        "validation": item.validation,
        "decision": decided.decision if decided else None,
        "decidedBy": decided.by if decided else None,
        "decidedAt": decided.at if decided else None,
        "deprecated": item.deprecated.reason or True if item.deprecated else None,
        "deployedAt": item.deployedAt,
        "servedFrom": item.promotedAt,
        "servedUntil": item.retiredAt if item.promotedAt else None,
        "reason": item.reason,
    }


TRIAL_FACTS = ("imageDigest", "codeRevision", "cpuSeconds", "peakMemoryBytes")


def with_trial(row: dict[str, Any], trial: dict[str, Any] | None) -> dict[str, Any]:
    """The row with what its Trial ran and cost (None where the Trial is gone)."""
    status = (trial or {}).get("status") or {}
    return {**row, **{key: status.get(key) for key in TRIAL_FACTS}}


def _short(checksum: str | None) -> str:
    return "-" if not checksum else checksum.removeprefix("sha256:")[:12]


def _who(row: dict[str, Any]) -> str:
    if not row["decision"]:
        return "-"
    return f"{row['decision'].lower()}:{row['decidedBy'] or '?'}"


def _served(row: dict[str, Any]) -> str:
    if not row["servedFrom"]:
        return "never"
    return f"{row['servedFrom']}..{row['servedUntil'] or 'now'}"


def render(rows: list[dict[str, Any]], wide: bool = False) -> str:
    headers = ["REV", "OUTCOME", "TRIAL", "RUN", "MODEL", "CHECKSUM", "OBJECTIVE", "DECIDED",
               "SERVED"]  # fmt: skip
    if wide:
        headers += ["IMAGE", "CODE", "CPU-S", "PEAK-MIB", "REASON"]
    lines = []
    for r in rows:
        objective = number(r["objective"])
        if r["outcome"] == "PendingApproval":
            objective += (
                f" (serving {number(r['servingObjective'])}, validation {r['validation'] or '-'})"
            )
        line = [r["revision"], r["outcome"] + (" [deprecated]" if r["deprecated"] else ""),
                r["trial"] or "-", (r["mlflowRunId"] or "-")[:12], r["mlflowModel"] or "-",
                _short(r["checksum"]), objective, _who(r), _served(r)]  # fmt: skip
        if wide:
            peak = r.get("peakMemoryBytes")
            line += [_short(r.get("imageDigest")), (r.get("codeRevision") or "-")[:12],
                     number(r.get("cpuSeconds")) if r.get("cpuSeconds") is not None else "-",
                     f"{peak / 2**20:.0f}" if peak is not None else "-", r["reason"] or ""]  # fmt: skip
        lines.append(line)
    return table(headers, lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history", help="a ModelDeployment's revisions with their lineage", description=__doc__
    )
    parser.add_argument("modeldeployment")
    parser.add_argument("-o", "--output", choices=["table", "wide", "json"], default="table")
    add_kube_args(parser)
    parser.set_defaults(func=run)


@friendly
def run(args: argparse.Namespace) -> int:
    kube = connect(args)
    md = kube.get("modeldeployments", args.modeldeployment)
    rows = [lineage(h) for h in parse_status(md).history]
    if args.output != "table":
        trials = {r["trial"] for r in rows if r["trial"]}
        found = {name: kube.get_optional("trials", name) for name in sorted(trials)}
        rows = [with_trial(r, found.get(r["trial"] or "")) for r in rows]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"modeldeployment/{args.modeldeployment} has no revisions yet")
    else:
        print(render(rows, wide=args.output == "wide"))
    return 0
