"""docs/crd-reference.md is generated from the API models and must not drift."""

from __future__ import annotations

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[3]


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_crd_reference", REPO / "hack" / "gen_crd_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crd_reference_is_up_to_date():
    gen = load_generator()
    assert (REPO / "docs" / "crd-reference.md").read_text() == gen.render(), (
        "docs/crd-reference.md is stale: run `python hack/gen_crd_reference.py`"
    )


def test_reference_lists_every_field_with_constraints():
    text = load_generator().render()
    for needle in (
        "| `spec.maxTrials` | integer | yes | min 1; max 10000 |",
        "`spec.parameters[].choices`",
        "`status.bestTrial.objective`",
        "`spec.model.trialRef`",
        "`status.history[].outcome`",
        "short name `tbmd`",
    ):
        assert needle in text


def test_check_mode_fails_on_a_stale_file(tmp_path):
    gen = load_generator()
    stale = tmp_path / "ref.md"
    stale.write_text("old\n")
    assert gen.main(["--check", "--out", str(stale)]) == 1
    assert gen.main(["--out", str(stale)]) == 0
    assert gen.main(["--check", "--out", str(stale)]) == 0
