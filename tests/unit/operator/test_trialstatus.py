import json
from datetime import UTC, datetime, timedelta

from thunderbolt.operator.trialstatus import (
    derive,
    job_created,
    never_started,
    parse_result,
    status_patch,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T0 = "2026-01-01T11:58:00Z"
T1 = "2026-01-01T11:59:40Z"


def trial(gpus=0, status=None):
    return {
        "metadata": {"name": "e-001", "namespace": "ns", "creationTimestamp": T0},
        "spec": {
            "number": 1,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "template": {"resources": {"gpus": gpus}},
        },
        "status": status or {},
    }


def job(condition=None, start=T0, completion=None):
    status = {"startTime": start}
    if condition:
        status["conditions"] = [condition]
    if completion:
        status["completionTime"] = completion
    return {"metadata": {"name": "e-001"}, "status": status}


def complete():
    return {"type": "Complete", "status": "True"}


def failed(reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit"):
    return {
        "type": "Failed",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": T1,
    }


def pod(phase="Succeeded", state=None, created=T0, reason=None, last_state=None):
    status = {
        "phase": phase,
        "containerStatuses": [
            {
                "name": "trainer",
                "image": "img:1",
                "imageID": "docker.io/library/img@sha256:" + "d" * 64,
                "state": state or {},
                "lastState": last_state or {},
            }
        ],
    }
    if reason:
        status["reason"] = reason
    return {"metadata": {"name": "e-001-abc", "creationTimestamp": created}, "status": status}


def terminated(message="", exit_code=0, reason="Completed"):
    return {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}}


def result(**fields):
    return json.dumps({"status": "Succeeded", **fields})


def test_success_reads_objective_metrics_and_model_from_the_termination_message():
    msg = result(
        objective=0.95,
        metrics={"val_accuracy": 0.95, "val_loss": 0.1},
        modelUri="s3://b/m.onnx",
        modelChecksum="sha256:" + "a" * 64,
        mlflowRunId="run1",
        mlflowRunUrl="http://mlflow/#/runs/run1",
        switches={"spectral_norm": False},
    )
    out = derive(trial(gpus=2), job(complete(), completion=T1), [pod(state=terminated(msg))], NOW)
    s = out.status
    assert s["switches"] == {"spectral_norm": False}
    assert s["phase"] == "Succeeded" and out.finished
    assert s["objective"] == 0.95
    assert s["metrics"] == {"val_accuracy": 0.95, "val_loss": 0.1}
    assert s["modelUri"] == "s3://b/m.onnx" and s["mlflowRunId"] == "run1"
    assert s["startTime"] == T0 and s["completionTime"] == T1
    assert s["durationSeconds"] == 100.0
    assert s["gpuSeconds"] == 200.0
    assert s["image"] == "img:1" and s["imageDigest"] == "sha256:" + "d" * 64
    conditions = {c["type"]: c["status"] for c in s["conditions"]}
    assert conditions == {
        "Running": "False",
        "Succeeded": "True",
        "Failed": "False",
        "Pruned": "False",
    }


def test_objective_falls_back_to_the_metric_named_by_the_spec():
    msg = result(metrics={"val_accuracy": 0.8})
    out = derive(trial(), job(complete(), completion=T1), [pod(state=terminated(msg))], NOW)
    assert out.status["objective"] == 0.8


def test_success_without_a_result_is_a_failure_with_a_reason():
    out = derive(trial(), job(complete(), completion=T1), [pod(state=terminated("hello"))], NOW)
    assert (out.status["phase"], out.status["reason"]) == ("Failed", "NoResult")


def test_success_without_a_finite_objective_fails():
    msg = '{"status": "Succeeded", "objective": NaN}'
    out = derive(trial(), job(complete(), completion=T1), [pod(state=terminated(msg))], NOW)
    assert (out.status["phase"], out.status["reason"]) == ("Failed", "NoObjective")


def test_trainer_pruned_result_makes_the_trial_pruned():
    msg = json.dumps({"status": "Pruned", "reason": "Pruned", "metrics": {"val_accuracy": 0.3}})
    out = derive(trial(), job(complete(), completion=T1), [pod(state=terminated(msg))], NOW)
    assert out.status["phase"] == "Pruned" and out.finished


def test_trainer_reason_such_as_diverged_is_kept():
    msg = json.dumps(
        {"status": "Failed", "reason": "Diverged", "message": "loss is nan at epoch 3"}
    )
    pods = [pod("Failed", terminated(msg, exit_code=2, reason="Error"))]
    out = derive(trial(), job(failed()), pods, NOW)
    assert out.status["phase"] == "Failed"
    assert out.status["reason"] == "Diverged"
    assert out.status["message"] == "loss is nan at epoch 3"
    assert out.status["completionTime"] == T1


def test_oom_killed_pod_shows_oomkilled():
    pods = [pod("Failed", terminated("", exit_code=137, reason="OOMKilled"))]
    out = derive(trial(), job(failed()), pods, NOW)
    assert (out.status["phase"], out.status["reason"]) == ("Failed", "OOMKilled")


def test_deadline_exceeded_comes_from_the_job():
    out = derive(trial(), job(failed("DeadlineExceeded", "Job was active longer")), [], NOW)
    assert (out.status["phase"], out.status["reason"]) == ("Failed", "DeadlineExceeded")


def test_nonzero_exit_keeps_the_log_tail_as_message():
    tail = "Traceback (most recent call last):\nValueError: boom"
    pods = [pod("Failed", terminated(tail, exit_code=1, reason="Error"))]
    out = derive(trial(), job(failed()), pods, NOW)
    assert out.status["reason"] == "Error"
    assert out.status["message"].startswith("exit code 1: Traceback")
    assert "ValueError: boom" in out.status["message"]


def test_result_json_after_log_lines_is_found():
    message = "epoch 1\nepoch 2\n" + json.dumps({"status": "Failed", "reason": "Collapsed"})
    assert parse_result(message).reason == "Collapsed"
    assert parse_result("not json") is None
    assert parse_result('{"status": "Weird"}') is None


def test_evicted_pod_is_a_failure_reason():
    pods = [pod("Failed", reason="Evicted")]
    out = derive(trial(), job(failed()), pods, NOW)
    assert out.status["reason"] == "Evicted"


def test_image_pull_errors_wait_for_a_grace_period_then_fail_and_stop_the_job():
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    young = pod(
        "Pending", waiting, created=(NOW - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    out = derive(trial(), job(), [young], NOW)
    assert (out.status["phase"], out.status["reason"], out.stop_job) == (
        "Pending",
        "ImagePullBackOff",
        False,
    )
    old = pod(
        "Pending", waiting, created=(NOW - timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    out = derive(trial(), job(), [old], NOW)
    assert (out.status["phase"], out.status["reason"], out.stop_job) == (
        "Failed",
        "ImagePullBackOff",
        True,
    )


def test_never_pull_of_a_missing_image_fails_at_once():
    waiting = {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}
    out = derive(trial(), job(), [pod("Pending", waiting, created=T1)], NOW)
    assert (out.status["phase"], out.status["reason"]) == ("Failed", "ErrImageNeverPull")


def test_running_container_makes_the_trial_running():
    out = derive(trial(), job(), [pod("Running", {"running": {"startedAt": T0}})], NOW)
    assert out.status["phase"] == "Running" and not out.finished
    assert "durationSeconds" not in out.status


def test_unschedulable_pod_says_why():
    p = pod("Pending")
    p["status"]["containerStatuses"] = []
    p["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes: Insufficient nvidia.com/gpu.",
        }
    ]
    out = derive(trial(gpus=1), job(), [p], NOW)
    assert out.status["phase"] == "Pending"
    assert "nvidia.com/gpu" in out.status["message"]


def test_status_patch_never_writes_intermediate_and_skips_unchanged_fields():
    current = {"phase": "Running", "intermediate": [{"step": 1, "value": 0.5}], "jobName": "e-001"}
    derived = {"phase": "Succeeded", "jobName": "e-001", "intermediate": []}
    assert status_patch(current, derived) == {"phase": "Succeeded"}


def test_condition_transition_time_is_kept_while_its_status_holds():
    first = derive(trial(), job(), [pod("Running", {"running": {}})], NOW)
    later = derive(
        trial(status=first.status),
        job(),
        [pod("Running", {"running": {}})],
        NOW + timedelta(minutes=5),
    )
    assert first.status["conditions"] == later.status["conditions"]


def test_a_trial_that_can_never_run_is_final_at_once_with_its_reason():
    running = {"conditions": [{"type": "Running", "status": "False", "reason": "Pending"}]}
    status = never_started(trial(status=running), "InvalidJobSpec", "x" * 10000, NOW)
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidJobSpec")
    assert status["completionTime"] == "2026-01-01T12:00:00Z"
    assert status["durationSeconds"] == 0.0 and status["gpuSeconds"] == 0.0
    assert len(status["message"]) <= 4096  # fits TrialStatus.message
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Failed"]["status"] == "True" and by_type["Failed"]["reason"] == "InvalidJobSpec"
    assert by_type["Running"]["status"] == "False"
    # applying it again changes nothing: the Trial is told once
    assert (
        status_patch(
            status, never_started(trial(status=status), "InvalidJobSpec", "x" * 10000, NOW)
        )
        == {}
    )


def test_the_status_written_with_the_job_is_what_its_first_sync_derives():
    created = job_created(trial(), "e-001", NOW)
    assert created["phase"] == "Pending" and created["jobName"] == "e-001"
    fresh_job = {"metadata": {"name": "e-001"}, "status": {}}  # no pod, not started yet
    later = NOW + timedelta(seconds=3)
    derived = derive(trial(status=created), fresh_job, [], later).status
    assert status_patch(created, derived) == {}  # the Job's first event writes nothing
    started = derive(trial(status=created), job(), [], later).status
    assert status_patch(created, started) == {"startTime": T0}  # but news still lands
