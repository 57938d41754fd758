"""approve/reject/deprecate targets and the lineage view of ``thunderbolt history`` (pure)."""

from __future__ import annotations

import json

import pytest

from tests.unit.cli.cli_objects import modeldeployment
from thunderbolt.cli import build_parser
from thunderbolt.cli.approve import target_revision
from thunderbolt.cli.history import lineage, render
from thunderbolt.cli.kube import CliError
from thunderbolt.cli.rollback import parse_status

HISTORY = [
    {"number": 1, "outcome": "Superseded", "trial": "iris-001", "mlflowRunId": "abcdef0123456789",
     "mlflowModelName": "iris", "mlflowModelVersion": "3", "modelChecksum": "sha256:" + "a" * 64,
     "objective": 0.93, "promotedAt": "2026-01-01T10:00:00Z", "retiredAt": "2026-01-02T10:00:00Z",
     "approval": {"decision": "Approved", "by": "alice", "at": "2026-01-01T09:59:00Z",
                  "reason": "ok"}},
    {"number": 2, "outcome": "Promoted", "trial": "iris-004", "objective": 0.95,
     "promotedAt": "2026-01-02T10:00:00Z"},
    {"number": 3, "outcome": "Rejected", "trial": "iris-007", "objective": 0.90,
     "reason": "new model from trial/iris-007; rejected by bob: worse",
     "approval": {"decision": "Rejected", "by": "bob", "reason": "worse"}},
    {"number": 4, "outcome": "PendingApproval", "trial": "iris-009", "objective": 0.97,
     "servingObjective": 0.95, "validation": "Warn"},
]  # fmt: skip


def md():
    return modeldeployment({"currentRevision": {"number": 2}, "history": HISTORY})


def test_approve_and_reject_take_the_newest_waiting_revision_and_only_a_waiting_one():
    assert target_revision(md(), "approve", None) == 4
    assert target_revision(md(), "reject", 4) == 4
    with pytest.raises(CliError, match="revision 3 is Rejected, not PendingApproval"):
        target_revision(md(), "approve", 3)
    with pytest.raises(CliError, match="no revision 9"):
        target_revision(md(), "reject", 9)
    nothing = modeldeployment({"history": HISTORY[:2]})
    with pytest.raises(CliError, match="no revision waiting"):
        target_revision(nothing, "approve", None)


def test_deprecate_needs_a_recorded_revision_once():
    assert target_revision(md(), "deprecate", 1) == 1
    with pytest.raises(CliError, match="needs --revision"):
        target_revision(md(), "deprecate", None)
    marked = modeldeployment(
        {"history": [{**HISTORY[0], "deprecated": {"decision": "Deprecated"}}]}
    )
    with pytest.raises(CliError, match="already deprecated"):
        target_revision(marked, "deprecate", 1)


def test_the_decision_commands_require_a_reason():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["approve", "iris"])
    args = parser.parse_args(["reject", "iris", "--revision", "4", "--reason", "worse"])
    assert (args.decision_command, args.revision, args.reason) == ("reject", 4, "worse")


def test_history_shows_each_revisions_chain_from_trial_to_traffic():
    rows = [lineage(h) for h in parse_status(md()).history]
    first = rows[0]
    assert (first["trial"], first["mlflowRunId"], first["mlflowModel"]) == (
        "iris-001",
        "abcdef0123456789",
        "iris/3",
    )
    assert (first["decision"], first["decidedBy"]) == ("Approved", "alice")
    assert (first["servedFrom"], first["servedUntil"]) == (
        "2026-01-01T10:00:00Z",
        "2026-01-02T10:00:00Z",
    )
    assert rows[2]["servedFrom"] is None
    text = render(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["REV", "OUTCOME", "TRIAL"]
    assert "approved:alice" in lines[1] and "aaaaaaaaaaaa" in lines[1]
    assert "2026-01-02T10:00:00Z..now" in lines[2]
    assert "rejected:bob" in lines[3] and "never" in lines[3]
    assert "0.97 (serving 0.95, validation Warn)" in lines[4]
    assert json.loads(json.dumps(rows))[3]["outcome"] == "PendingApproval"
    assert "worse" in render(rows, wide=True).splitlines()[3]
