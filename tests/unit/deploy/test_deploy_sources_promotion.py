"""Model source resolution (uri, trialRef) and Experiment promotion decisions."""

from __future__ import annotations

import pytest

from thunderbolt.api.modeldeployment import ModelSource
from thunderbolt.deploy import promotion
from thunderbolt.deploy.sources import (
    MlflowSource,
    Resolver,
    SourceNotReady,
    SourceRefused,
    TrialSource,
    UriSource,
    read_onnx,
    tagged_checksum,
)

CHECKSUM = "sha256:" + "b" * 64


def trials(**objects):
    return TrialSource(lambda name: objects.get(name))


def trial(phase="Succeeded", **status):
    return {"spec": {"experiment": "iris-search"}, "status": {"phase": phase, **status}}


def test_uri_source_passes_uri_and_checksum_through():
    resolved = UriSource().resolve(ModelSource(uri="s3://m/iris.onnx", checksum=CHECKSUM))
    assert resolved.identity() == ("s3://m/iris.onnx", CHECKSUM) and resolved.source == "uri"


def test_trial_source_takes_a_succeeded_trials_model_and_objective():
    source = trials(
        t7=trial(
            modelUri="s3://m/t7.onnx",
            modelChecksum=CHECKSUM,
            objective=0.93,
            mlflowModelVersion="4",
        )
    )
    resolved = source.resolve(ModelSource(trialRef="t7"))
    assert resolved.identity() == ("s3://m/t7.onnx", CHECKSUM)
    assert (resolved.trial, resolved.experiment, resolved.objective) == ("t7", "iris-search", 0.93)
    assert resolved.source == "trial/t7" and resolved.mlflow_version == "4"
    revision = resolved.revision(5, "2026-01-01T00:00:00Z")
    assert revision.number == 5 and revision.trial == "t7" and revision.objective == 0.93


@pytest.mark.parametrize(
    ("objects", "error", "reason"),
    [
        ({}, SourceNotReady, "TrialNotFound"),
        ({"t": trial("Running")}, SourceNotReady, "TrialNotFinished"),
        ({"t": trial("Failed")}, SourceRefused, "TrialNotSucceeded"),
        ({"t": trial(modelUri="s3://m/t.onnx")}, SourceRefused, "TrialHasNoModel"),
    ],
)
def test_trial_source_waits_or_refuses(objects, error, reason):
    with pytest.raises(error) as raised:
        trials(**objects).resolve(ModelSource(trialRef="t"))
    assert raised.value.reason == reason


def test_resolver_picks_the_source_by_kind():
    resolver = Resolver(trials(), MlflowSource("http://mlflow:5000"))
    assert isinstance(resolver.for_model(ModelSource(trialRef="t")), TrialSource)
    assert isinstance(
        resolver.for_model(ModelSource(mlflowModel={"name": "m", "alias": "a"})), MlflowSource
    )
    assert isinstance(
        resolver.for_model(ModelSource(uri="file:///m.onnx", checksum=CHECKSUM)), UriSource
    )


def test_mlflow_source_without_any_tracking_uri_is_refused():
    with pytest.raises(SourceRefused) as raised:
        MlflowSource(None).resolve(ModelSource(mlflowModel={"name": "m", "version": "1"}))
    assert raised.value.reason == "NoTrackingUri"


def test_checksum_tags_are_read_from_version_then_run():
    assert tagged_checksum({"thunderbolt.io/checksum": CHECKSUM}, {}) == CHECKSUM
    assert tagged_checksum({}, {"model_checksum": "b" * 64}) == CHECKSUM
    assert tagged_checksum({"other": "x"}, None) is None


def test_read_onnx_finds_the_single_model_file(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {}")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    assert read_onnx(tmp_path) == b"onnx"
    (tmp_path / "extra.onnx").write_bytes(b"x")
    assert read_onnx(tmp_path) == b"onnx"  # model.onnx is preferred
    (tmp_path / "model.onnx").unlink()
    (tmp_path / "b.onnx").write_bytes(b"y")
    with pytest.raises(SourceRefused):
        read_onnx(tmp_path)


def md(trial_ref="old", objective=None, rollback=None):
    status = (
        {"currentRevision": {"number": 1, "objective": objective}} if objective is not None else {}
    )
    spec = {"model": {"trialRef": trial_ref}}
    if rollback is not None:
        spec["rollbackTo"] = rollback
    return {"spec": spec, "status": status}


@pytest.mark.parametrize(
    ("when", "direction", "best", "serving", "expected"),
    [
        ("Improved", "maximize", 0.95, 0.90, True),
        ("Improved", "maximize", 0.85, 0.90, False),
        ("Improved", "minimize", 0.10, 0.20, True),
        ("Improved", "minimize", 0.30, 0.20, False),
        ("Improved", "maximize", 0.90, 0.90, False),  # a tie is no improvement
        ("Always", "maximize", 0.50, 0.90, True),
        ("Improved", "maximize", 0.50, None, True),  # nothing comparable serving
    ],
)
def test_promotion_respects_when_and_direction(when, direction, best, serving, expected):
    decision = promotion.decide(when, direction, "best", best, md(objective=serving))
    assert decision.promote is expected, decision.reason


def test_promotion_is_idempotent_and_respects_a_rollback_pin():
    assert not promotion.decide("Always", "maximize", "best", 1.0, md(trial_ref="best")).promote
    pinned = promotion.decide("Always", "maximize", "best", 1.0, md(rollback=2))
    assert not pinned.promote and "rollbackTo" in pinned.reason
    assert not promotion.decide("Always", "maximize", None, None, md()).promote


def test_promotion_patch_points_at_the_trial_and_names_the_experiment():
    patch = promotion.patch_for("search", "search-t3")
    assert patch["spec"]["model"] == {
        "trialRef": "search-t3",
        "mlflowModel": None,
        "uri": None,
        "checksum": None,
    }
    annotations = patch["metadata"]["annotations"]
    assert promotion.source_label(annotations, "search-t3") == "experiment/search"
    assert promotion.source_label(annotations, "someone-else") is None


def test_a_runs_objective_is_the_trials_own_value_for_its_metric_else_the_logged_one():
    from thunderbolt.deploy.sources import run_objective

    tags = {"thunderbolt.objective": "0.9512", "thunderbolt.objective_metric": "val_accuracy"}
    metrics = {"val_accuracy": 0.94, "val_loss": 0.2}
    # The trainer's tag (e.g. a cross-validated mean) wins over the last logged epoch.
    assert run_objective(None, tags, metrics) == (0.9512, "val_accuracy")
    assert run_objective("val_accuracy", tags, metrics) == (0.9512, "val_accuracy")
    assert run_objective("val_loss", tags, metrics) == (0.2, "val_loss")
    assert run_objective(None, {}, metrics) == (None, None)
    assert run_objective("val_f1", tags, metrics) == (None, "val_f1")
    assert run_objective(None, {**tags, "thunderbolt.objective": "nan"}, metrics) == (
        0.94,
        "val_accuracy",
    )


def test_promotion_compares_only_objectives_of_the_same_metric():
    def deployment(metric):
        revision = {"number": 1, "objective": 0.2, "objectiveMetric": metric}
        return {"spec": {"model": {"mlflowModel": {"name": "m", "version": "1"}}},
                "status": {"currentRevision": revision}}  # fmt: skip

    same = promotion.decide("Improved", "maximize", "t2", 0.19, deployment("val_accuracy"),
                            metric="val_accuracy")  # fmt: skip
    assert not same.promote and "does not beat" in same.reason
    other = promotion.decide("Improved", "maximize", "t2", 0.19, deployment("val_loss"),
                             metric="val_accuracy")  # fmt: skip
    assert other.promote and "not comparable" in other.reason


def test_promotion_never_brings_back_a_deprecated_trial():
    md = {"spec": {"model": {"trialRef": "t1"}},
          "status": {"history": [{"number": 1, "trial": "t9", "deprecated": {"decision": "Deprecated"}}]}}  # fmt: skip
    decision = promotion.decide("Always", "maximize", "t9", 0.99, md)
    assert not decision.promote and "deprecated" in decision.reason
