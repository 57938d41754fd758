"""``spec.gate``: a quality gate each new revision passes before it receives any traffic.

Why a Job: the gate reads the held-out dataset the way the trainer reads datasets
(``builtin://``, ``s3://``, ``file://``, ``http(s)://``; csv, parquet, json) and runs the
model with onnxruntime, and the serving image has all of that while the operator's image
does not. So the controller runs ``thunderbolt gate`` in a Job (``<name>-gate-r<N>``)
from the serving image, with the serving pods' credentials and security context; the Job
verifies the candidate's (and the serving model's) checksum, measures, and writes a
``GateResult`` as its termination message. The controller records it in the revision's
history entry; a failed gate makes the revision ``GateFailed`` and it never gets a pod.

The measuring itself is pure (numpy) and lives here, next to the Job builder, so both
are unit-tested without a cluster.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from thunderbolt.api.meta import restricted_container_security, restricted_pod_security
from thunderbolt.api.modeldeployment import (
    GATE_MAXIMIZE,
    Gate,
    GateResult,
    ModelDeploymentSpec,
    Revision,
)
from thunderbolt.api.serving import COMMAND
from thunderbolt.deploy import builders as b

SUBCOMMAND = "gate"
ENV_REQUEST = "THUNDERBOLT_GATE"
CONTAINER = "gate"
LABEL_GATE = f"{b.LABEL_MD.rsplit('/', 1)[0]}/gate-revision"
# Regression outputs agree when within this share of the serving model's value (or 1e-6).
REGRESSION_AGREEMENT_RTOL = 0.01


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    checksum: str | None = None


class GateRequest(BaseModel):
    """What the Job is asked (JSON in ``THUNDERBOLT_GATE``)."""

    model_config = ConfigDict(extra="forbid")

    gate: Gate
    candidate: ModelRef
    baseline: ModelRef | None = None


def job_name(owner: b.Owner, number: int) -> str:
    return f"{owner.name}-gate-r{number}"


def measure(metric: str, output: np.ndarray, truth: np.ndarray) -> float:
    """``accuracy`` compares class indices (``output`` holds scores per class); the
    regression metrics use the first output column."""
    if metric == "accuracy":
        return float(np.mean(np.argmax(output, axis=1) == truth))
    pred = output.reshape(len(output), -1)[:, 0].astype(np.float64)
    y = truth.astype(np.float64)
    if metric == "mse":
        return float(np.mean((pred - y) ** 2))
    if metric == "mae":
        return float(np.mean(np.abs(pred - y)))
    if metric == "r2":
        total = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else 0.0
    raise ValueError(f"unknown gate metric {metric!r}")


def agreement(candidate: np.ndarray, baseline: np.ndarray, classification: bool) -> float:
    """The share of rows on which two models agree (same class; regression: within 1%)."""
    if classification:
        return float(np.mean(np.argmax(candidate, axis=1) == np.argmax(baseline, axis=1)))
    a = candidate.reshape(len(candidate), -1)[:, 0].astype(np.float64)
    z = baseline.reshape(len(baseline), -1)[:, 0].astype(np.float64)
    return float(np.mean(np.abs(a - z) <= np.maximum(1e-6, REGRESSION_AGREEMENT_RTOL * np.abs(z))))


def verdict(gate: Gate, value: float | None, agreed: float | None, rows: int) -> GateResult:
    """Pass only when every check the gate asks for passes; the message says what failed."""
    problems = []
    if gate.metric is not None and gate.threshold is not None:
        better = gate.metric in GATE_MAXIMIZE
        if value is None or not np.isfinite(value):
            problems.append(f"{gate.metric} could not be measured")
        elif (value < gate.threshold) if better else (value > gate.threshold):
            word = "below" if better else "above"
            problems.append(f"{gate.metric} {value:.4g} is {word} the threshold {gate.threshold:g}")
    if gate.minAgreement is not None and agreed is not None and agreed < gate.minAgreement:
        problems.append(f"agrees with the serving model on {agreed:.1%} of rows, "
                        f"needs {gate.minAgreement:.1%}")  # fmt: skip
    measured = [f"{gate.metric} {value:.4g}" if value is not None and gate.metric else "",
                f"agreement {agreed:.1%}" if agreed is not None else ""]  # fmt: skip
    summary = ", ".join(m for m in measured if m) or "nothing measured"
    return GateResult(
        passed=not problems,
        metric=gate.metric,
        value=value,
        threshold=gate.threshold,
        agreement=agreed,
        minAgreement=gate.minAgreement,
        rows=rows,
        message=("; ".join(problems) if problems else f"passed: {summary} on {rows} rows")[:1024],
    )


def parse_result(message: str | None) -> GateResult | None:
    """The Job's termination message (its last JSON line), or None."""
    for line in reversed((message or "").strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            return GateResult.model_validate(json.loads(line))
        except (ValueError, ValidationError):
            continue
    return None


def job(
    owner: b.Owner,
    spec: ModelDeploymentSpec,
    candidate: Revision,
    baseline: Revision | None,
    defaults: b.ServingDefaults,
) -> dict[str, Any]:
    """The gate Job for ``candidate``: the serving pods' image, env and security."""
    assert spec.gate is not None
    request = GateRequest(
        gate=spec.gate,
        candidate=ModelRef(uri=candidate.modelUri or "", checksum=candidate.modelChecksum),
        baseline=(
            ModelRef(uri=baseline.modelUri or "", checksum=baseline.modelChecksum)
            if baseline is not None and spec.gate.minAgreement is not None
            else None
        ),
    )
    template = b.pod_template(owner, spec, candidate, defaults)
    served = template["spec"]["containers"][0]
    env = [e for e in served["env"] if not e["name"].startswith("THUNDERBOLT_MODEL_")]
    env.append({"name": ENV_REQUEST, "value": request.model_dump_json(exclude_none=True)})
    container = {
        "name": CONTAINER,
        "image": served["image"],
        "imagePullPolicy": served["imagePullPolicy"],
        "command": [COMMAND],
        "args": [SUBCOMMAND],
        "env": env,
        "resources": served["resources"],
        "securityContext": restricted_container_security(read_only_root=True),
        "volumeMounts": served["volumeMounts"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    labels = {**b.base_labels(owner), LABEL_GATE: str(candidate.number)}
    pod_spec = {
        **{k: v for k, v in template["spec"].items() if k != "containers"},
        "securityContext": restricted_pod_security(),
        "restartPolicy": "Never",
        "containers": [container],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(owner, candidate.number),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.gate.timeoutSeconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
