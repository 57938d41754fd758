"""The Trial's printer columns: written into the CRD, read back into compact Trials."""

from __future__ import annotations

import json
from typing import Any

import pytest

from thunderbolt.api import crdgen, trial_columns
from thunderbolt.api.trial_columns import TRIAL_COLUMNS, compact_trial, compact_trials


def _trial_crd_version() -> dict[str, Any]:
    kind = next(k for k in crdgen.KINDS if k.kind == "Trial")
    crd = crdgen.crd(kind)
    version: dict[str, Any] = crd["spec"]["versions"][0]
    return version


def test_the_crd_carries_every_column_and_kubectl_get_stays_short() -> None:
    version = _trial_crd_version()
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == [c.name for c in TRIAL_COLUMNS]
    assert [c["name"] for c in printed if not c.get("priority")] == [
        "Phase",
        "Objective",
        "Spectral-Norm",
        "Age",
    ]


@pytest.mark.parametrize("column", TRIAL_COLUMNS, ids=lambda c: c.name)
def test_every_column_path_exists_in_the_schema(column: trial_columns.Column) -> None:
    node = _trial_crd_version()["schema"]["openAPIV3Schema"]
    for key in column.json_path.lstrip(".").split("."):
        if key == "metadata":
            node = {"properties": {"creationTimestamp": {"type": "string"}}}
            continue
        properties = node.get("properties") or {}
        if key not in properties:
            # a map's value (spec.parameters.spectral_norm): any key is allowed
            assert "additionalProperties" in node or node.get(
                "x-kubernetes-preserve-unknown-fields"
            ), (column.name, key)
            return
        node = properties[key]
    if column.json_text:
        assert node.get("type") == "object", column.name


def _table(rows: list[list[Any]], names: list[str] | None = None) -> dict[str, Any]:
    names = names or ["Name", *(c.name for c in TRIAL_COLUMNS)]
    return {
        "kind": "Table",
        "columnDefinitions": [{"name": n, "type": "string"} for n in names],
        "rows": [{"cells": cells} for cells in rows],
    }


def _row(**cells: Any) -> list[Any]:
    return [cells.get("Name"), *(cells.get(c.name) for c in TRIAL_COLUMNS)]


def test_a_row_becomes_a_trial_shaped_like_the_real_one() -> None:
    params = {"learning_rate": 0.01, "spectral_norm": True}
    row = _row(
        Name="exp-007",
        Phase="Succeeded",
        Objective=0.91,
        **{"Spectral-Norm": "true"},
        Age="5m",
        Created="2026-01-01T00:00:00Z",
        Experiment="exp",
        Number=7,
        **{"Objective-Std": 0.02, "Duration-Seconds": 12.5},
        Parameters=json.dumps(params),
        Metrics=json.dumps({"val_loss": 0.3}),
        Split=json.dumps({"seed": 1, "validationHash": "ab"}),
    )
    [trial] = compact_trials(_table([row]), "team-a")
    assert trial == {
        "metadata": {
            "namespace": "team-a",
            "name": "exp-007",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"experiment": "exp", "number": 7, "parameters": params},
        "status": {
            "phase": "Succeeded",
            "objective": 0.91,
            "objectiveStd": 0.02,
            "durationSeconds": 12.5,
            "metrics": {"val_loss": 0.3},
            "split": {"seed": 1, "validationHash": "ab"},
        },
    }


def test_absent_fields_stay_absent() -> None:
    trial = compact_trial(["Name", "Phase", "Objective", "Split"], ["t", None, None, ""], "ns")
    assert trial == {"metadata": {"namespace": "ns", "name": "t"}, "spec": {}, "status": {}}


def test_a_table_from_an_older_crd_is_not_enough() -> None:
    current = _table([])
    assert trial_columns.has_all_columns(current)
    old = _table([], ["Name", "Phase", "Objective", "Spectral-Norm", "Reason", "Age"])
    assert not trial_columns.has_all_columns(old)
    assert not trial_columns.has_all_columns({"kind": "Status"})
