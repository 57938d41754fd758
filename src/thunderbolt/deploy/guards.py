"""The controller's I/O for the guards around a rollout: the quality-gate Jobs
(``spec.gate``) and the serving revision's SLA windows (``spec.sla``).

Each function gathers what the pure planner needs (a gate result, an SLA verdict) or
carries out what it asked for (the gate Job); the decisions live in ``accept``,
``gate`` and ``sla``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from thunderbolt.api.modeldeployment import GateResult, ModelDeploymentSpec, ModelDeploymentStatus
from thunderbolt.deploy import builders as b
from thunderbolt.deploy import gate as gates
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy import sla as slas
from thunderbolt.deploy.analysis import parse
from thunderbolt.deploy.kube import Kube, scrape
from thunderbolt.deploy.rollout import Observed, Plan

log = logging.getLogger(__name__)


def gate_results(kube: Kube, owner: b.Owner, spec: ModelDeploymentSpec,
                 status: ModelDeploymentStatus) -> dict[int, GateResult]:  # fmt: skip
    """The finished gate Job of the revision that waits for its gate, if any."""
    item = rv.pending(status)
    if spec.gate is None or item is None or item.gate is not None or rv.is_rollback(item):
        return {}
    outcome = kube.job_outcome(owner.namespace, gates.job_name(owner, item.number))
    if outcome is None:
        return {}
    state, message = outcome
    found = gates.parse_result(message)
    if found is None:
        why = "the gate Job failed" if state == "Failed" else "the gate Job said nothing"
        detail = f" ({message[:200]})" if message and state == "Failed" else ""
        found = GateResult(passed=False, message=f"{why}{detail}")
    return {item.number: found}


def run_gates(kube: Kube, defaults: b.ServingDefaults, owner: b.Owner,
              spec: ModelDeploymentSpec, p: Plan) -> None:  # fmt: skip
    """Run the gate Job the plan asks for; remove the others (their results are recorded)."""
    wanted = None
    if p.gate_revision is not None:
        candidate = next(h for h in p.status.history if h.number == p.gate_revision)
        body = gates.job(owner, spec, rv.as_revision(candidate), p.status.currentRevision, defaults)
        wanted = body["metadata"]["name"]
        kube.ensure_job(body)
    for job in kube.gate_jobs(owner.namespace, owner.name):
        if job != wanted:
            kube.delete_job(owner.namespace, job)


def sla_window(kube: Kube, obj: dict[str, Any], spec: ModelDeploymentSpec,
               status: ModelDeploymentStatus, watch: slas.Watch,
               observed: dict[int, Observed]) -> slas.SlaVerdict | None:  # fmt: skip
    """The serving revision's latest window against ``spec.sla`` (one scrape per
    ``intervalSeconds``; the first reading of a revision only starts its window)."""
    sla, stable = spec.sla, status.currentRevision
    if sla is None or stable is None or status.canary is not None:
        watch.reading = watch.verdict = None
        return None
    now = time.monotonic()
    last = watch.reading
    if last is not None and last[0] == stable.number and now - last[2] < sla.intervalSeconds:
        return watch.verdict
    meta = obj["metadata"]
    texts = []
    for ip in kube.ready_pod_ips(meta["namespace"], meta["name"], stable.number):
        try:
            texts.append(scrape(ip, spec.serving.port))
        except OSError as exc:  # a pod that does not answer is judged by availability
            log.info("serving pod %s: /metrics: %s", ip, exc)
    reading = parse(texts, spec.modelName or meta["name"])
    watch.reading = (stable.number, reading, now)
    if last is None or last[0] != stable.number:
        watch.verdict = None
        return None
    obs = observed.get(stable.number)
    verdict = slas.judge(
        sla, stable.number, reading - last[1], obs.ready if obs else 0, spec.replicas
    )
    watch.verdict = slas.streak(watch.verdict, verdict)
    return watch.verdict
