"""What an Experiment's retention deletes, and the Job that deletes it: pure functions.

The operator holds no store credentials, so it only decides: which finished Trials fall
outside the best ``spec.retention.keepBest`` (``victims``), which models no deletion may
touch because a ModelDeployment serves them or has them in its history
(``protected_models``), which prefixes go (``retention_plan``, ``deletion_plan``) and the
short Job that runs ``thunderbolt artifacts delete`` with the Trials' own credential
Secret and volumes (``cleanup_job``). The store layout it deletes is the trainer's
(``sdk.publish``): ``<uri>/<namespace>/<experiment>/<trial>/`` (model.onnx, result.json,
validation.json) and ``<uri>/checkpoints/<trial>/``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from thunderbolt.api.experiment import ExperimentSpec, TrialTemplate
from thunderbolt.api.meta import (
    EXPERIMENT_LABEL,
    GROUP,
    MANAGED_BY,
    owner_reference,
    restricted_container_security,
    restricted_pod_security,
)
from thunderbolt.api.trial import FINISHED_PHASES, trial_number
from thunderbolt.artifacts import join
from thunderbolt.settings import OperatorSettings

CLEANUP_LABEL = f"{GROUP}/artifact-cleanup"  # value: "retention" or "delete"
UID_LABEL = f"{GROUP}/experiment-uid"  # deletion Jobs outlive their Experiment: whose is it
TRIALS_ANNOTATION = f"{GROUP}/cleanup-trials"  # JSON list of the Trials a Job deletes for
# Bounds: a Job's arguments stay small (two prefixes per Trial); the rest waits for the next.
MAX_TRIALS_PER_JOB = 100
MAX_CHECKPOINT_PREFIXES = 500
JOB_DEADLINE_SECONDS = 600
JOB_BACKOFF_LIMIT = 2
JOB_TTL_SECONDS = 3600
SECRET_DIR = "/var/run/secrets/thunderbolt.io/artifacts"


@dataclass(frozen=True)
class Protected:
    """Models some ModelDeployment serves, will serve or has served."""

    trials: frozenset[tuple[str, str]] = frozenset()  # (namespace, trial)
    uris: frozenset[str] = frozenset()
    checksums: frozenset[str] = frozenset()


@dataclass
class Plan:
    """What one cleanup Job deletes (prefixes) and never touches (keep)."""

    prefixes: list[str]
    keep: list[str] = field(default_factory=list)
    trials: list[str] = field(default_factory=list)


def _records(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every object in a status that names a model (current revision, canary, history,
    and whatever later fields hold revisions), found by its keys, not its path."""
    if isinstance(node, Mapping):
        if any(k in node for k in ("modelUri", "modelChecksum", "trial")):
            yield node
        for value in node.values():
            yield from _records(value)
    elif isinstance(node, list):
        for item in node:
            yield from _records(item)


def protected_models(deployments: Iterable[Mapping[str, Any]]) -> Protected:
    """Trials, URIs and checksums named by the ModelDeployments' spec and status."""
    trials: set[tuple[str, str]] = set()
    uris: set[str] = set()
    checksums: set[str] = set()
    for md in deployments:
        namespace = md["metadata"]["namespace"]
        model = (md.get("spec") or {}).get("model") or {}
        if model.get("trialRef"):
            trials.add((namespace, str(model["trialRef"])))
        records = [{"modelUri": model.get("uri"), "modelChecksum": model.get("checksum")}]
        for record in [*records, *_records(md.get("status") or {})]:
            if isinstance(record.get("trial"), str) and record["trial"]:
                trials.add((namespace, record["trial"]))
            if isinstance(record.get("modelUri"), str) and record["modelUri"]:
                uris.add(record["modelUri"])
            if isinstance(record.get("modelChecksum"), str) and record["modelChecksum"]:
                checksums.add(record["modelChecksum"].lower())
    return Protected(frozenset(trials), frozenset(uris), frozenset(checksums))


def is_protected(trial: Mapping[str, Any], protected: Protected) -> bool:
    meta, status = trial["metadata"], trial.get("status") or {}
    checksum = status.get("modelChecksum")
    return (
        (meta["namespace"], meta["name"]) in protected.trials
        or (status.get("modelUri") or "") in protected.uris
        or (isinstance(checksum, str) and checksum.lower() in protected.checksums)
    )


def _artifacts_value(spec: Mapping[str, Any] | None, key: str) -> Any:
    return ((spec or {}).get("artifacts") or {}).get(key)


def store_uri(spec: Mapping[str, Any] | None, settings: OperatorSettings) -> str | None:
    """The artifact store of an Experiment's or Trial's spec, when one this can delete in
    (``file://``, ``s3://``; models kept in MLflow's own store are MLflow's)."""
    uri = _artifacts_value(spec, "uri") or settings.artifacts_uri
    if not uri or not str(uri).startswith(("s3://", "file://")):
        return None
    return str(uri).rstrip("/")


def trial_prefixes(store: str, trial: Mapping[str, Any]) -> list[str]:
    """Where the trainer put the Trial's files (``sdk.publish``, ``operator.builders``)."""
    meta = trial["metadata"]
    experiment = (trial.get("spec") or {}).get("experiment") or ""
    return [
        join(store, meta["namespace"], experiment, meta["name"]),
        join(store, "checkpoints", meta["name"]),
    ]


def ranked(spec: ExperimentSpec, trials: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Finished Trials with a model, best first on the first objective (ties: older first;
    no objective: last)."""
    sign = -1.0 if spec.primary.direction == "maximize" else 1.0

    def key(trial: Mapping[str, Any]) -> tuple[int, float, int]:
        value = (trial.get("status") or {}).get("objective")
        if isinstance(value, int | float) and math.isfinite(value):
            return (0, sign * float(value), trial_number(trial))
        return (1, 0.0, trial_number(trial))

    with_model = [
        t
        for t in trials
        if (t.get("status") or {}).get("phase") in FINISHED_PHASES
        and (t.get("status") or {}).get("modelUri")
    ]
    return sorted(with_model, key=key)


def victims(
    experiment: Mapping[str, Any],
    spec: ExperimentSpec,
    trials: Iterable[Mapping[str, Any]],
    store: str,
    settings: OperatorSettings,
    protected: Protected | None = None,
    *,
    any_store: bool = False,
) -> list[Mapping[str, Any]]:
    """Finished Trials whose artifacts retention deletes: outside the best ``keepBest``
    (and not the Experiment's best Trial or on its Pareto front), not deleted before,
    written to the same store (unless ``any_store``: the operator's Trial cache keeps no
    spec.artifacts) and, given ``protected``, not a deployed model. Idempotent: Trials
    already marked ``artifactsDeleted`` never come back."""
    keep_best = spec.retention.keepBest if spec.retention else None
    if keep_best is None:
        return []
    trials = list(trials)
    status = experiment.get("status") or {}
    kept = {t["metadata"]["name"] for t in ranked(spec, trials)[:keep_best]}
    kept |= {s.get("name") for s in [status.get("bestTrial") or {}] if s.get("name")}
    kept |= {s.get("name") for s in status.get("paretoFront") or [] if s.get("name")}
    out = []
    for trial in sorted(trials, key=trial_number):
        trial_status = trial.get("status") or {}
        if (
            trial_status.get("phase") not in FINISHED_PHASES
            or trial_status.get("artifactsDeleted")
            or trial["metadata"]["name"] in kept
            or trial["metadata"].get("deletionTimestamp")
            or (not any_store and store_uri(trial.get("spec"), settings) != store)
        ):
            continue
        if protected is not None and is_protected(trial, protected):
            continue
        out.append(trial)
    return out[:MAX_TRIALS_PER_JOB]


def _protected_dirs(store: str, protected: Protected) -> list[str]:
    """The folders of protected models that lie in this store: never deleted under."""
    return sorted(
        {u.rsplit("/", 1)[0] for u in protected.uris if u.startswith(store + "/") and "/" in u}
    )


def retention_plan(store: str, chosen: Iterable[Mapping[str, Any]], protected: Protected) -> Plan:
    chosen = list(chosen)
    prefixes = [p for t in chosen for p in trial_prefixes(store, t)]
    return Plan(
        prefixes, _protected_dirs(store, protected), [t["metadata"]["name"] for t in chosen]
    )


def deletion_plan(
    experiment: Mapping[str, Any],
    store: str,
    trials: Iterable[Mapping[str, Any]],
    protected: Protected,
) -> Plan:
    """Deleting the Experiment: its whole folder, and the checkpoints of its Trials
    (those that did not succeed first: a success already cleared its own), except what a
    ModelDeployment serves or served."""
    meta = experiment["metadata"]
    trials = sorted(trials, key=trial_number)
    keep = set(_protected_dirs(store, protected))
    checkpoints = []
    for trial in sorted(trials, key=lambda t: (t.get("status") or {}).get("phase") == "Succeeded"):
        model_dir, checkpoint_dir = trial_prefixes(store, trial)
        if is_protected(trial, protected):
            keep |= {model_dir, checkpoint_dir}
        else:
            checkpoints.append(checkpoint_dir)
    prefixes = [join(store, meta["namespace"], meta["name"])]
    prefixes += checkpoints[:MAX_CHECKPOINT_PREFIXES]
    return Plan(prefixes, sorted(keep), [t["metadata"]["name"] for t in trials])


def job_name(experiment: Mapping[str, Any], kind: str, plan: Plan) -> str:
    """Deterministic: the same plan twice is one Job (a 409), a new plan a new Job."""
    digest = hashlib.sha256(json.dumps([kind, plan.prefixes, plan.keep]).encode()).hexdigest()
    base = str(experiment["metadata"]["name"])[:40].rstrip("-.")
    return f"{base}-{'retain' if kind == 'retention' else 'delete'}-{digest[:8]}"


def _file_volumes(template: TrialTemplate | None) -> tuple[list[Any], list[Any]]:
    """The Trials' own volumes and the trainer's mounts of them: a ``file://`` store is a
    volume the Trials mount, and the cleanup must see the same files."""
    if template is None:
        return [], []
    volumes = [dict(v) for v in template.volumes]
    names = {v["name"] for v in volumes}
    mounts = [m.model_dump(exclude_none=True) for m in template.volumeMounts if m.name in names]
    for mount in mounts:
        mount.pop("readOnly", None)  # deleting needs write access where the trainer wrote
    return volumes, mounts


def cleanup_job(
    experiment: Mapping[str, Any],
    spec: ExperimentSpec | None,
    plan: Plan,
    settings: OperatorSettings,
    kind: str,
) -> dict[str, Any]:
    """The Job that runs ``thunderbolt artifacts delete`` for ``plan``: the trainer image,
    the Trials' credential Secret and volumes, Pod Security "restricted", bounded in time
    and retries. A retention Job is owned by the Experiment; a deletion Job is not (it
    must outlive the Experiment's deletion) and expires by its TTL."""
    meta = experiment["metadata"]
    raw_spec = experiment.get("spec") or {}
    args = ["artifacts", "delete", *plan.prefixes]
    for prefix in plan.keep:
        args += ["--keep", prefix]
    endpoint = _artifacts_value(raw_spec, "s3EndpointUrl") or settings.s3_endpoint_url
    if endpoint:
        args += ["--s3-endpoint-url", str(endpoint)]
    secret = (
        _artifacts_value(raw_spec, "credentialsSecret") or settings.artifacts_credentials_secret
    )
    volumes, mounts = _file_volumes(spec.trialTemplate if spec else None)
    volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})
    mounts.append({"name": "tmp", "mountPath": "/tmp"})
    env = [{"name": "HOME", "value": "/tmp"}, {"name": "AWS_MAX_ATTEMPTS", "value": "3"}]
    if secret:
        env.append({"name": "AWS_SHARED_CREDENTIALS_FILE", "value": f"{SECRET_DIR}/credentials"})
        mounts.append({"name": "artifacts-credentials", "mountPath": SECRET_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "artifacts-credentials",
                "secret": {
                    "secretName": secret,
                    "items": [{"key": "credentials", "path": "credentials"}],
                    "defaultMode": 0o440,
                },
            }
        )
    labels = {**MANAGED_BY, EXPERIMENT_LABEL: meta["name"], CLEANUP_LABEL: kind}
    if kind == "delete":
        labels[UID_LABEL] = meta["uid"]
    pod = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "containers": [
            {
                "name": "cleanup",
                "image": settings.serving_image,
                "imagePullPolicy": "IfNotPresent",
                "args": args,
                "env": env,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                "securityContext": restricted_container_security(read_only_root=True),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    job_meta: dict[str, Any] = {
        "name": job_name(experiment, kind, plan),
        "namespace": meta["namespace"],
        "labels": labels,
        "annotations": {TRIALS_ANNOTATION: json.dumps(plan.trials)},
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": JOB_BACKOFF_LIMIT,
        "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if kind == "retention":
        job_meta["ownerReferences"] = [owner_reference(experiment)]
    else:
        job_spec["ttlSecondsAfterFinished"] = JOB_TTL_SECONDS
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": job_spec}


def job_outcome(job: Mapping[str, Any]) -> str | None:
    """ "Succeeded", "Failed" (retries or deadline spent) or None while it runs."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    if status.get("succeeded"):
        return "Succeeded"
    return None


def job_trials(job: Mapping[str, Any]) -> list[str]:
    raw = (job["metadata"].get("annotations") or {}).get(TRIALS_ANNOTATION) or "[]"
    try:
        names = json.loads(raw)
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
