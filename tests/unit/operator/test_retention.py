"""spec.retention: which Trials' artifacts go, which models are never touched, the Job."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from operator_specs import raw, spec

from thunderbolt.api.experiment import parse_spec
from thunderbolt.api.meta import EXPERIMENT_LABEL
from thunderbolt.operator import retention
from thunderbolt.operator.builders import build_trial, trainer_config
from thunderbolt.operator.trialcache import compact
from thunderbolt.sdk.checkpoint import FILENAME as CHECKPOINT_FILE
from thunderbolt.sdk.publish import artifact_prefix
from thunderbolt.settings import OperatorSettings

STORE = "s3://models/runs"
SETTINGS = OperatorSettings(artifacts_uri=STORE, artifacts_credentials_secret="s3-creds")
PARAMS = {"learning_rate": 0.01, "hidden_dim": 64, "activation": "gelu", "spectral_norm": True}


def experiment(**changes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "thunderbolt.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "iris", "namespace": "ml", "uid": "0123456789abcdef"},
        "spec": raw(**changes),
        "status": {},
    }


def trial(exp: dict[str, Any], number: int, objective: float | None, phase: str = "Succeeded"):
    obj = build_trial(exp, parse_spec(exp["spec"]), number, PARAMS)
    obj["metadata"]["uid"] = f"trial-{number}"
    status: dict[str, Any] = {"phase": phase}
    if objective is not None:
        prefix = f"{STORE}/ml/iris/{obj['metadata']['name']}"
        status |= {
            "objective": objective,
            "modelUri": f"{prefix}/model.onnx",
            "modelChecksum": f"sha256:{number:064x}",
        }
    obj["status"] = status
    return obj


def names(trials: list[Any]) -> list[str]:
    return [t["metadata"]["name"] for t in trials]


def deployment(status: dict[str, Any], model: dict[str, Any] | None = None, ns: str = "ml"):
    return {
        "metadata": {"name": "iris-serving", "namespace": ns},
        "spec": {"model": model or {"trialRef": "unrelated"}},
        "status": status,
    }


@pytest.fixture
def exp() -> dict[str, Any]:
    return experiment(retention={"keepBest": 2})


@pytest.fixture
def trials(exp: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        trial(exp, 0, 0.5),
        trial(exp, 1, 0.9),
        trial(exp, 2, 0.7),
        trial(exp, 3, 0.8),
        trial(exp, 4, None, phase="Failed"),
        trial(exp, 5, None, phase="Running"),
    ]


def chosen(exp, trials, protected=None):
    return retention.victims(
        exp, parse_spec(exp["spec"]), trials, STORE, SETTINGS, protected or retention.Protected()
    )


def test_keeps_the_best_n_on_the_objective_and_deletes_the_other_finished_trials(exp, trials):
    # best two: 0.9 (001) and 0.8 (003); the failed Trial's checkpoints go too; running stays
    assert names(chosen(exp, trials)) == ["iris-000", "iris-002", "iris-004"]


def test_a_minimized_objective_keeps_the_lowest(trials):
    exp = experiment(
        retention={"keepBest": 2}, objective={"metric": "val_loss", "direction": "minimize"}
    )
    assert names(chosen(exp, trials)) == ["iris-001", "iris-003", "iris-004"]


def test_the_experiments_best_trial_and_pareto_front_are_always_kept(exp, trials):
    exp["status"] = {"bestTrial": {"name": "iris-000"}, "paretoFront": [{"name": "iris-002"}]}
    assert names(chosen(exp, trials)) == ["iris-004"]


def test_without_keep_best_nothing_is_deleted(trials):
    exp = experiment(retention={"onDelete": "Delete"})
    assert chosen(exp, trials) == []
    assert chosen(experiment(), trials) == []


def test_trials_already_deleted_never_come_back(exp, trials):
    first = chosen(exp, trials)
    for t in trials:
        if t in first:
            t["status"]["artifactsDeleted"] = {"reason": "Retention", "job": "iris-retain-x"}
    assert chosen(exp, trials) == []
    # and the ranking does not move: the kept two are still the best two
    assert names(retention.ranked(spec(), trials)[:2]) == ["iris-001", "iris-003"]


def test_a_trial_written_to_another_store_is_left_alone(exp, trials):
    trials[0]["spec"]["artifacts"] = {"uri": "s3://elsewhere/x"}
    assert "iris-000" not in names(chosen(exp, trials))


def test_the_cheap_check_on_cached_trials_sees_them_without_their_spec(exp, trials):
    """The operator's Trial cache drops spec.artifacts: the pre-check must still find work
    (the Job is then planned from freshly listed Trials)."""
    cached = [compact(t) for t in trials]
    assert "artifacts" not in cached[0]["spec"]
    bare = OperatorSettings()  # no default store: a Trial's store is its spec's
    assert retention.victims(exp, parse_spec(exp["spec"]), cached, STORE, bare) == []
    found = retention.victims(exp, parse_spec(exp["spec"]), cached, STORE, bare, any_store=True)
    assert names(found) == ["iris-000", "iris-002", "iris-004"]


def test_models_a_deployment_serves_or_served_are_never_chosen(exp, trials):
    by_trial = deployment({"currentRevision": {"number": 3, "trial": "iris-000"}})
    by_uri = deployment(
        {"history": [{"number": 1, "modelUri": trials[2]["status"]["modelUri"]}]}, ns="other"
    )
    by_checksum = deployment(
        {"history": [{"number": 2, "modelChecksum": trials[2]["status"]["modelChecksum"].upper()}]}
    )
    by_spec = deployment({}, {"trialRef": "iris-004"})
    protected = retention.protected_models([by_trial, by_spec])
    assert names(chosen(exp, trials, protected)) == ["iris-002"]
    for md in (by_uri, by_checksum):
        protected = retention.protected_models([md])
        assert "iris-002" not in names(chosen(exp, trials, protected))


def test_a_trial_of_the_same_name_in_another_namespace_is_not_protected(exp, trials):
    other = deployment({"currentRevision": {"number": 1, "trial": "iris-000"}}, ns="team-b")
    assert "iris-000" in names(chosen(exp, trials, retention.protected_models([other])))


def test_prefixes_are_where_the_trainer_writes(exp, trials):
    obj = trials[0]
    config = trainer_config(obj, SETTINGS, with_report=False)
    model_dir, checkpoint_dir = retention.trial_prefixes(STORE, obj)
    assert model_dir == artifact_prefix(config)
    assert f"{checkpoint_dir}/{CHECKPOINT_FILE}".startswith(config.checkpointUri or "-")
    assert obj["status"]["modelUri"].startswith(model_dir + "/")


def test_retention_plan_keeps_the_folders_of_protected_models(exp, trials):
    served = deployment({"currentRevision": {"number": 1, "modelUri": f"{STORE}/x/y/model.onnx"}})
    protected = retention.protected_models([served])
    plan = retention.retention_plan(STORE, chosen(exp, trials, protected), protected)
    assert plan.trials == ["iris-000", "iris-002", "iris-004"]
    assert f"{STORE}/ml/iris/iris-000" in plan.prefixes
    assert f"{STORE}/checkpoints/iris-004" in plan.prefixes
    assert plan.keep == [f"{STORE}/x/y"]


def test_deleting_the_experiment_deletes_its_folder_but_not_a_served_model(exp, trials):
    served = deployment({"history": [{"number": 1, "trial": "iris-001"}]})
    plan = retention.deletion_plan(exp, STORE, trials, retention.protected_models([served]))
    assert plan.prefixes[0] == f"{STORE}/ml/iris"
    assert f"{STORE}/ml/iris/iris-001" in plan.keep
    assert f"{STORE}/checkpoints/iris-001" in plan.keep
    assert f"{STORE}/checkpoints/iris-001" not in plan.prefixes
    # Trials that did not succeed come first: their checkpoints were not cleared
    assert plan.prefixes[1] in (f"{STORE}/checkpoints/iris-004", f"{STORE}/checkpoints/iris-005")


def test_store_uri_only_for_stores_the_job_can_delete_in():
    assert retention.store_uri({"artifacts": {"uri": "mlflow"}}, SETTINGS) is None
    assert retention.store_uri({}, OperatorSettings()) is None
    assert retention.store_uri({}, SETTINGS) == STORE
    assert retention.store_uri({"artifacts": {"uri": "file:///data/"}}, SETTINGS) == "file:///data"


def test_the_job_runs_the_cli_with_the_trials_credentials_restricted_and_bounded(exp, trials):
    plan = retention.retention_plan(STORE, chosen(exp, trials), retention.Protected())
    plan.keep = [f"{STORE}/keep"]
    job = retention.cleanup_job(exp, parse_spec(exp["spec"]), plan, SETTINGS, "retention")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == SETTINGS.serving_image
    assert container["args"][:2] == ["artifacts", "delete"]
    assert container["args"][2:8] == plan.prefixes
    assert container["args"][8:] == ["--keep", f"{STORE}/keep"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    secret = next(v for v in pod["volumes"] if v["name"] == "artifacts-credentials")
    assert secret["secret"]["secretName"] == "s3-creds"
    assert {
        "name": "AWS_SHARED_CREDENTIALS_FILE",
        "value": f"{retention.SECRET_DIR}/credentials",
    } in (container["env"])
    assert 0 < job["spec"]["activeDeadlineSeconds"] <= 3600
    assert 0 <= job["spec"]["backoffLimit"] <= 3
    assert job["metadata"]["ownerReferences"][0]["uid"] == exp["metadata"]["uid"]
    assert job["metadata"]["labels"][EXPERIMENT_LABEL] == "iris"
    assert retention.job_trials(job) == plan.trials
    # the same plan is the same Job (a 409 on the second create), another plan another
    again = retention.cleanup_job(
        exp, parse_spec(exp["spec"]), copy.deepcopy(plan), SETTINGS, "retention"
    )
    assert again["metadata"]["name"] == job["metadata"]["name"]
    plan.prefixes = plan.prefixes[:2]
    other = retention.cleanup_job(exp, parse_spec(exp["spec"]), plan, SETTINGS, "retention")
    assert other["metadata"]["name"] != job["metadata"]["name"]
    assert len(job["metadata"]["name"]) <= 63


def test_the_deletion_job_outlives_its_experiment_and_mounts_the_trials_volumes():
    volumes = [{"name": "store", "persistentVolumeClaim": {"claimName": "models"}}]
    mounts = [{"name": "store", "mountPath": "/srv/models", "readOnly": True}]
    exp = experiment(
        **{
            "retention": {"onDelete": "Delete"},
            "artifacts": {"uri": "file:///srv/models", "s3EndpointUrl": "http://s3:9000"},
            "trialTemplate.volumes": volumes,
            "trialTemplate.volumeMounts": mounts,
        }
    )
    plan = retention.deletion_plan(exp, "file:///srv/models", [], retention.Protected())
    job = retention.cleanup_job(exp, parse_spec(exp["spec"]), plan, SETTINGS, "delete")
    pod = job["spec"]["template"]["spec"]
    assert "ownerReferences" not in job["metadata"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["metadata"]["labels"][retention.UID_LABEL] == exp["metadata"]["uid"]
    assert {"name": "store", "persistentVolumeClaim": {"claimName": "models"}} in pod["volumes"]
    assert {"name": "store", "mountPath": "/srv/models"} in pod["containers"][0]["volumeMounts"]
    assert pod["containers"][0]["args"][-2:] == ["--s3-endpoint-url", "http://s3:9000"]
    assert plan.prefixes == ["file:///srv/models/ml/iris"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({}, None),
        ({"active": 1}, None),
        ({"succeeded": 1}, "Succeeded"),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, "Succeeded"),
        ({"failed": 3, "conditions": [{"type": "Failed", "status": "True"}]}, "Failed"),
        ({"failed": 1, "active": 1}, None),
    ],
)
def test_job_outcome(status: dict[str, Any], outcome: str | None) -> None:
    assert retention.job_outcome({"metadata": {}, "status": status}) == outcome


def test_a_job_without_a_readable_trial_list_marks_nothing() -> None:
    job = {"metadata": {"annotations": {retention.TRIALS_ANNOTATION: "{not json"}}}
    assert retention.job_trials(job) == []
    job["metadata"]["annotations"][retention.TRIALS_ANNOTATION] = json.dumps({"a": 1})
    assert retention.job_trials(job) == []


def test_retention_is_validated() -> None:
    with pytest.raises(ValueError):
        spec(retention={"keepBest": 0})
    with pytest.raises(ValueError):
        spec(retention={"onDelete": "Purge"})
    assert spec(retention={}).retention.onDelete == "Retain"  # type: ignore[union-attr]
