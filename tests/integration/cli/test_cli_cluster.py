"""The CLI against the real cluster: real CRs, status written through the status subresource."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.fixtures.crds import crds  # noqa: F401
from thunderbolt.api.experiment import ExperimentSpec, ExperimentStatus, TrialCounts, TrialSummary
from thunderbolt.api.meta import GROUP, VERSION
from thunderbolt.api.modeldeployment import ModelDeploymentStatus
from thunderbolt.api.trial import SplitIdentity, TrialSpec, TrialStatus
from thunderbolt.api.trial_columns import TRIAL_COLUMNS
from thunderbolt.cli import main
from thunderbolt.cli.kube import Kube
from thunderbolt.cli.trial_reads import trials_of

REPO = pathlib.Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("crds")


def cli(cluster, namespace, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(
        [
            *argv,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--context",
            cluster.context,
            "-n",
            namespace,
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def create(kube_api, namespace: str, plural: str, body: dict, status: dict | None = None) -> dict:
    api = client.CustomObjectsApi(kube_api)
    obj = api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    if status is not None:
        obj = api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, body["metadata"]["name"], {"status": status}
        )
    return obj


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "examples" / name).read_text())


@pytest.fixture
def search(kube_api, namespace):
    """iris-sn with five Trials (two per spectral_norm value succeeded, one pruned)."""
    exp = example("iris-spectral-norm.yaml")
    spec = ExperimentSpec.model_validate(exp["spec"])
    outcomes = [
        (0, False, 0.90),
        (1, True, 0.97),
        (2, False, 0.93),
        (3, True, 0.95),
        (4, True, None),
    ]
    summaries = []
    for number, sn, objective in outcomes:
        name = f"iris-sn-{number:03d}"
        params = {"learning_rate": 0.01, "hidden_dim": 32, "spectral_norm": sn}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Trial",
            "metadata": {
                "name": name,
                "labels": {
                    "thunderbolt.io/experiment": "iris-sn",
                    "thunderbolt.io/param.spectral_norm": str(sn).lower(),
                },
            },
            "spec": TrialSpec(
                experiment="iris-sn",
                number=number,
                parameters=params,
                objective=spec.objective,
                template=spec.trialTemplate,
            ).model_dump(mode="json", exclude_none=True),
        }
        phase = "Pruned" if objective is None else "Succeeded"
        status = TrialStatus(
            phase=phase,
            objective=objective,
            durationSeconds=20.0 + number,
            jobName=name,
            reason=None if objective is not None else "MedianStop",
            metrics={} if objective is None else {"val_accuracy": objective, "epochs": 3.0},
            split=None if objective is None else SplitIdentity(seed=7, validationHash="ab12cd34"),
        )
        create(
            kube_api, namespace, "trials", body, status.model_dump(mode="json", exclude_none=True)
        )
        if objective is not None:
            summaries.append(
                TrialSummary(name=name, number=number, parameters=params, objective=objective)
            )
    summaries.sort(key=lambda s: -(s.objective or 0))
    status = ExperimentStatus(
        phase="Running",
        observedGeneration=1,
        trials=TrialCounts(total=5, running=0, succeeded=4, pruned=1),
        bestTrial=summaries[0],
        leaderboard=summaries,
        startTime="2026-01-01T10:00:00Z",
    )
    create(
        kube_api, namespace, "experiments", exp, status.model_dump(mode="json", exclude_none=True)
    )
    return exp


def test_get_lists_experiments_and_trials_with_selector(cluster, namespace, capsys, search):
    code, out, _ = cli(cluster, namespace, capsys, "get", "experiments")
    assert code == 0
    assert out.splitlines()[1].split()[:6] == [
        "iris-sn",
        "Running",
        "5/6",
        "0",
        "0.97",
        "iris-sn-001",
    ]
    code, out, _ = cli(
        cluster,
        namespace,
        capsys,
        "get",
        "tbtrial",
        "-l",
        "thunderbolt.io/param.spectral_norm=true",
    )
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [
        "iris-sn-001",
        "iris-sn-003",
        "iris-sn-004",
    ]


def _at(obj: dict[str, Any], json_path: str) -> Any:
    for key in json_path.lstrip(".").split("."):
        obj = (obj or {}).get(key)
    return obj


def test_compact_trials_from_the_table_carry_what_the_views_read(kube_api, namespace, search):
    kube = Kube(kube_api, namespace)
    compact = {t["metadata"]["name"]: t for t in trials_of(kube, "iris-sn")}
    whole = {t["metadata"]["name"]: t for t in trials_of(kube, "iris-sn", whole=True)}
    assert set(compact) == set(whole) and len(whole) == 5
    # only the columns travel: jobName is in every whole Trial and no compact one
    assert all(t["status"]["jobName"] == n for n, t in whole.items())
    assert not any("jobName" in t["status"] for t in compact.values())
    for name, trial in whole.items():
        for column in TRIAL_COLUMNS:
            if column.rebuilds:
                assert _at(compact[name], column.json_path) == _at(trial, column.json_path), (
                    name,
                    column.name,
                )
    assert compact["iris-sn-001"]["status"]["split"] == {"seed": 7, "validationHash": "ab12cd34"}
    assert compact["iris-sn-001"]["spec"]["parameters"]["spectral_norm"] is True
    assert compact["iris-sn-004"]["status"]["reason"] == "MedianStop"


def test_describe_shows_the_pipeline(cluster, namespace, capsys, search):
    code, out, _ = cli(cluster, namespace, capsys, "describe", "experiment", "iris-sn")
    assert code == 0, out
    assert f"Experiment iris-sn ({namespace}): Running" in out
    assert "[>] train    trial 5/6" in out
    assert "[>] best     iris-sn-001 val_accuracy=0.97" in out
    assert "[ ] promote  ModelDeployment iris not created yet" in out
    # one trial left, parallelTrials 2, mean duration of the five trials 22 s
    assert "ETA: 22s" in out


def test_leaderboard_ranks_trials(cluster, namespace, capsys, search):
    code, out, _ = cli(cluster, namespace, capsys, "leaderboard", "iris-sn")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == [
        "iris-sn-001",
        "iris-sn-003",
        "iris-sn-002",
        "iris-sn-000",
    ]


def test_compare_by_spectral_norm_with_png(cluster, namespace, capsys, search, tmp_path):
    png = tmp_path / "sn.png"
    code, out, _ = cli(
        cluster, namespace, capsys, "compare", "iris-sn", "--by", "spectral_norm", "--png", str(png)
    )
    assert code == 0, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:3]}
    assert rows["false"][:3] == ["2", "0.915", "0.93"]
    assert rows["true"][:3] == ["2", "0.96", "0.97"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = cli(cluster, namespace, capsys, "compare", "iris-sn", "--by", "nope")
    assert code == 1 and "not a parameter" in err


def test_rollback_patches_rollback_to_previous_revision(cluster, namespace, capsys, kube_api):
    md = example("iris-modeldeployment.yaml")
    status = ModelDeploymentStatus.model_validate(
        {
            "phase": "Available",
            "observedGeneration": 1,
            "currentRevision": {"number": 3, "trial": "iris-sn-001"},
            "history": [
                {
                    "number": 1,
                    "outcome": "Superseded",
                    "trial": "iris-sn-000",
                    "promotedAt": "2026-01-01T10:00:00Z",  # it served all traffic
                },
                {"number": 2, "outcome": "RolledBack", "trial": "iris-sn-002"},
                {"number": 3, "outcome": "Active", "trial": "iris-sn-001"},
            ],
        }
    )
    create(
        kube_api,
        namespace,
        "modeldeployments",
        md,
        status.model_dump(mode="json", exclude_none=True),
    )
    # The default target is the newest older revision that served: 1, not the canary
    # (revision 2) that was rolled back.
    code, out, _ = cli(cluster, namespace, capsys, "rollback", "iris")
    assert code == 0 and "from revision 3 to 1" in out
    api = client.CustomObjectsApi(kube_api)

    def rollback_to() -> int:
        obj = api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", "iris"
        )
        return int(obj["spec"]["rollbackTo"])

    assert rollback_to() == 1
    code, _, err = cli(cluster, namespace, capsys, "rollback", "iris", "--to", "2")
    assert code == 1 and "never served" in err and "--force" in err
    assert rollback_to() == 1
    code, out, _ = cli(cluster, namespace, capsys, "rollback", "iris", "--to", "2", "--force")
    assert code == 0 and rollback_to() == 2
    code, _, err = cli(cluster, namespace, capsys, "rollback", "iris", "--to", "9")
    assert code == 1 and "no revision 9" in err
    code, out, _ = cli(cluster, namespace, capsys, "get", "md")
    assert out.splitlines()[1].split()[:3] == ["iris", "Available", "3"]


def test_missing_objects_are_one_line_errors(cluster, namespace, capsys):
    code, _, err = cli(cluster, namespace, capsys, "describe", "experiment", "nope")
    assert code == 1 and err.startswith("error: cannot get experiments/nope")


def test_logs_of_a_trial_job(cluster, namespace, capsys, kube_api, base_image):
    exp = example("iris-spectral-norm.yaml")
    spec = ExperimentSpec.model_validate(exp["spec"])
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trial",
        "metadata": {"name": "iris-sn-007", "labels": {"thunderbolt.io/experiment": "iris-sn"}},
        "spec": TrialSpec(
            experiment="iris-sn", number=7, objective=spec.objective, template=spec.trialTemplate
        ).model_dump(mode="json", exclude_none=True),
    }
    create(kube_api, namespace, "trials", body, {"phase": "Running", "jobName": "iris-sn-007"})
    code, _, err = cli(cluster, namespace, capsys, "logs", "iris-sn-007")
    assert code == 1 and "no pods" in err
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "iris-sn-007"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "trainer",
                            "image": base_image,
                            "imagePullPolicy": "Never",
                            "command": [
                                "python3",
                                "-c",
                                "print('epoch 1 val_accuracy=0.5'); print('epoch 2 val_accuracy=0.9')",
                            ],
                            "securityContext": security,
                            "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
                        }
                    ],
                }
            },
        },
    }
    client.BatchV1Api(kube_api).create_namespaced_job(namespace, job)
    deadline = time.monotonic() + 120
    while True:
        done = (
            client.BatchV1Api(kube_api).read_namespaced_job_status("iris-sn-007", namespace).status
        )
        if done.succeeded or done.failed:
            break
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(1)
    code, out, err = cli(cluster, namespace, capsys, "logs", "iris-sn-007")
    assert code == 0, err
    assert out.splitlines() == ["epoch 1 val_accuracy=0.5", "epoch 2 val_accuracy=0.9"]
