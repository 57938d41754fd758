"""The operator's RecordsConsistent condition: the verdict from real MLflow records (a local
sqlite MLflow the SDK wrote to), the condition it becomes, and who the operator may ask."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tests.fixtures.mlflow_runs import train
from thunderbolt.api import lineage
from thunderbolt.operator.conditions import condition, merge_conditions
from thunderbolt.operator.consistency import CONDITION, allowed, conditions_with, judge, tracking
from thunderbolt.settings import OperatorSettings

EXPERIMENT = {"metadata": {"name": "iris", "namespace": "ns", "uid": "e1", "generation": 2},
              "spec": {"tracking": {"mlflow": {"experimentName": "iris"}}}}  # fmt: skip


def test_verdict_follows_the_records_and_never_quotes_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sqlite MLflow keeps artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trials = [train(uri, tmp_path, n, 0.8 + n / 100) for n in range(2)]
    status, reason, message = judge(EXPERIMENT, trials, uri, "iris")
    assert (status, reason) == ("True", "Consistent"), message
    assert message.startswith("16 checks agree")

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_tag(trials[0]["status"]["mlflowRunId"], lineage.OBJECTIVE_TAG, "0.123456789")
    status, reason, message = judge(EXPERIMENT, trials, uri, "iris")
    assert (status, reason) == ("False", "ObjectiveDiffers")
    assert "0.123456789" not in message and "1 of 16 checks disagree" in message

    client.delete_run(trials[1]["status"]["mlflowRunId"])
    status, reason, message = judge(EXPERIMENT, trials, uri, "iris")
    assert status == "False" and "RunMissing 1" in message and "ObjectiveDiffers 1" in message


def test_an_unreachable_mlflow_is_unknown_not_inconsistent(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    status, reason, message = judge(EXPERIMENT, [], "http://127.0.0.1:9", "iris")
    assert (status, reason) == ("Unknown", "MlflowUnreachable") and "127.0.0.1" not in message


def test_the_condition_changes_only_when_the_verdict_does():
    old = merge_conditions([], [condition("Running", True, "TrialsRunning", "1/2", "t0", 2)])
    first = conditions_with(old, ("True", "Consistent", "4 checks agree"), "t1", 2)
    assert first is not None and [c["type"] for c in first] == ["Running", CONDITION]
    assert conditions_with(first, ("True", "Consistent", "4 checks agree"), "t2", 2) is None
    again = conditions_with(first, ("True", "Consistent", "6 checks agree"), "t3", 2)
    assert again is not None and again[-1]["lastTransitionTime"] == "t1"
    bad = conditions_with(first, ("False", "RunMissing", "1 of 6 checks disagree"), "t4", 2)
    assert bad is not None
    assert bad[-1] == {"type": CONDITION, "status": "False", "reason": "RunMissing",
                       "message": "1 of 6 checks disagree", "lastTransitionTime": "t4",
                       "observedGeneration": 2}  # fmt: skip
    # The Experiment reconcile rewrites its own conditions and keeps this one.
    kept = merge_conditions(bad, [condition("Running", False, "Succeeded", None, "t5", 2)])
    assert [c["type"] for c in kept] == ["Running", CONDITION] and kept[-1] == bad[-1]


def test_only_tracked_experiments_on_allowed_hosts_are_checked():
    own = OperatorSettings(mlflow_tracking_uri="http://10.0.0.1:5000")
    assert tracking(EXPERIMENT, own) == ("http://10.0.0.1:5000", "iris")
    assert tracking({**EXPERIMENT, "spec": {}}, own) is None
    assert tracking(EXPERIMENT, OperatorSettings()) is None
    assert allowed("http://10.0.0.1:5000", own)
    assert not allowed("http://169.254.169.254/", own)
    assert not allowed("sqlite:////etc/passwd.db", own)
    listed = OperatorSettings(model_source_hosts=("mlflow.*.svc",))
    assert allowed("http://mlflow.team.svc:5000", listed)
    assert not allowed("http://10.0.0.1:5000", listed)
