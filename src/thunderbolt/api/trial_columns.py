"""The Trial's printer columns, and compact Trials rebuilt from them.

Reading 10 000 Trials whole costs the API server ~5 KiB of JSON per Trial (curves,
conditions); the views (``leaderboard``, ``compare``, ``get trials``, ``describe``) need
a dozen fields. So those fields are printer columns (priority 1: ``kubectl get`` shows
them only with ``-o wide``), the CLI asks for the Table of an Experiment's Trials
(``application/json;as=Table``: cells only, no objects) and rebuilds a compact Trial
from each row with :func:`compact_trial`. Map-valued columns come back as JSON text
(the API server prints maps and lists with ``json.Marshal``).

One home for both sides: ``crdgen`` writes these columns into the CRD and the CLI reads
them back by the same names, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string | number | integer | date (CRD printer-column types)
    json_path: str
    priority: int = 0
    rebuilds: bool = True  # False: display only, not put back into the compact Trial
    json_text: bool = False  # a map the API server prints as JSON text

    def printer_column(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            column["priority"] = self.priority
        return column


TRIAL_COLUMNS: tuple[Column, ...] = (
    Column("Phase", "string", ".status.phase"),
    Column("Objective", "number", ".status.objective"),
    Column("Spectral-Norm", "string", ".spec.parameters.spectral_norm", rebuilds=False),
    Column("Reason", "string", ".status.reason", priority=1),
    # a date column arrives as an age ("5m"): the views get the timestamp from "Created"
    Column("Age", "date", ".metadata.creationTimestamp", rebuilds=False),
    # What the views need besides the above; priority 1 keeps `kubectl get` short.
    Column("Created", "string", ".metadata.creationTimestamp", priority=1),
    Column("Experiment", "string", ".spec.experiment", priority=1),
    Column("Number", "integer", ".spec.number", priority=1),
    Column("Objective-Std", "number", ".status.objectiveStd", priority=1),
    Column("Duration-Seconds", "number", ".status.durationSeconds", priority=1),
    Column("Parameters", "string", ".spec.parameters", priority=1, json_text=True),
    Column("Metrics", "string", ".status.metrics", priority=1, json_text=True),
    Column("Split", "string", ".status.split", priority=1, json_text=True),
)

#: What :func:`compact_trial` fills in; a Table missing any of these columns comes from
#: a CRD older than this code, and the caller falls back to reading whole Trials.
REBUILT_COLUMNS = tuple(c.name for c in TRIAL_COLUMNS if c.rebuilds)


def printer_columns() -> list[dict[str, Any]]:
    return [c.printer_column() for c in TRIAL_COLUMNS]


def has_all_columns(table: dict[str, Any]) -> bool:
    names = {d.get("name") for d in table.get("columnDefinitions") or []}
    return "Name" in names and all(name in names for name in REBUILT_COLUMNS)


def compact_trial(names: list[str], cells: list[Any], namespace: str) -> dict[str, Any]:
    """A Trial holding only the column fields, shaped like the real object (so the views
    read it unchanged); absent fields (a cell of None) stay absent."""
    by_name = {c.name: c for c in TRIAL_COLUMNS if c.rebuilds}
    trial: dict[str, Any] = {"metadata": {"namespace": namespace}, "spec": {}, "status": {}}
    for name, cell in zip(names, cells, strict=True):
        if name == "Name":
            trial["metadata"]["name"] = cell
            continue
        column = by_name.get(name)
        if column is None or cell is None or cell == "":
            continue
        value = json.loads(cell) if column.json_text else cell
        *parents, leaf = column.json_path.lstrip(".").split(".")
        node = trial
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return trial


def compact_trials(table: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Every row of a Table answer as a compact Trial."""
    names = [d["name"] for d in table.get("columnDefinitions") or []]
    return [compact_trial(names, row["cells"], namespace) for row in table.get("rows") or []]
