"""The Shadow strategy: the candidate sees a mirrored copy of live traffic, clients never see it.

No service mesh: the stable revision's own server pods mirror (``thunderbolt.serving.mirror``).
Every pod of a Shadow deployment gets ``THUNDERBOLT_MIRROR_URL`` pointing at the Service
``<name>-shadow``, which selects the candidate revision while a shadow runs and no pod
otherwise (connections are then refused at once, and the pods pause mirroring). The main
Service selects only the stable revision throughout, so every client answer is stable's.

The analysis reads two sources, both cumulative and both restart-proof:

- the candidate pods' own ``/metrics`` (they start with the shadow and only ever received
  mirrored requests): error rate and p99 latency, judged with ``strategy.analysis``
  exactly as a canary's (``analysis.judge``);
- the stable pods' ``/metrics``: rows of mirrored requests compared with stable's answer,
  labelled by the version (revision number) the candidate answered with, plus their
  timeouts and drops.

A failure ends the shadow at once (``RolledBack``, reason ``ShadowFailed: ...``; the
candidate's pods are deleted, stable untouched). A pass needs ``minRequests`` answered
mirrored requests, ``minAgreement`` of the compared rows and ``durationSeconds`` since the
candidate's pods were ready; the candidate then scales to ``replicas`` and takes all
traffic once ready, through the same promotion as every other strategy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

from prometheus_client.parser import text_string_to_metric_families

from thunderbolt.api.meta import parse_time
from thunderbolt.api.modeldeployment import (
    Analysis,
    HistoryEntry,
    ModelDeploymentSpec,
    Shadow,
    ShadowStatus,
)
from thunderbolt.api.serving import METRIC_MIRROR_ROWS, METRIC_MIRRORS
from thunderbolt.deploy import analysis
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy.promparse import Snapshot
from thunderbolt.deploy.step import PROGRESS_DEADLINE_S, Step

SHADOW_FAILED = rv.SHADOW_FAILED


def settings(spec: ModelDeploymentSpec) -> Shadow:
    return spec.strategy.shadow or Shadow()


def limits(spec: ModelDeploymentSpec) -> Analysis:
    return spec.strategy.analysis or Analysis()


def candidate_replicas(replicas: int, percent: int) -> int:
    """Pods for the candidate while it shadows: its share of stable's load, at least one."""
    return max(1, math.ceil(max(1, replicas) * percent / 100))


@dataclasses.dataclass(frozen=True)
class Figures:
    """What one look at the pods measured for candidate revision ``revision``."""

    revision: int
    candidate: Snapshot  # the candidate pods' own request counters and latency
    agreed: float = 0.0  # compared rows on which it agreed with stable
    rows: float = 0.0
    timeouts: float = 0.0  # mirrored requests stable's pods gave up on
    dropped: float = 0.0  # mirrored requests not sent (in-flight limit, body size)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.rows if self.rows else None


def measure(
    candidate_texts: Iterable[str], stable_texts: Iterable[str], model: str, revision: int
) -> Figures:
    """Candidate and stable pods' ``/metrics`` texts -> Figures (raises ValueError on text
    that is not Prometheus exposition)."""
    counts = {"agreed": 0.0, "rows": 0.0, "timeouts": 0.0, "dropped": 0.0}
    rows_family, mirrors_family = (
        METRIC_MIRROR_ROWS.removesuffix("_total"),
        METRIC_MIRRORS.removesuffix("_total"),
    )
    for text in stable_texts:
        for family in text_string_to_metric_families(text):
            if family.name not in (rows_family, mirrors_family):
                continue
            for sample in family.samples:
                labels = sample.labels
                if labels.get("model") != model or labels.get("candidate") != str(revision):
                    continue
                if sample.name == METRIC_MIRROR_ROWS:
                    counts["rows"] += sample.value
                    if labels.get("agree") == "true":
                        counts["agreed"] += sample.value
                elif sample.name == METRIC_MIRRORS and labels.get("result") == "timeout":
                    counts["timeouts"] += sample.value
                elif sample.name == METRIC_MIRRORS and labels.get("result") == "dropped":
                    counts["dropped"] += sample.value
    return Figures(revision, analysis.parse(candidate_texts, model), **counts)


@dataclasses.dataclass(frozen=True)
class ShadowVerdict:
    """``passed`` None: not enough mirrored requests (or compared rows) to judge yet."""

    passed: bool | None
    reason: str
    message: str
    figures: Figures


def judge(figures: Figures, limits: Analysis, shadow: Shadow) -> ShadowVerdict:
    """Error rate and p99 as a canary's, then agreement with stable.

    A candidate that accepts requests but never answers records nothing of its own, so
    stable's mirror timeouts are its only trace: with no answered request and at least
    ``minRequests`` timeouts it fails. A slow candidate that does answer is judged on its
    own figures (its server records each request even after the mirror gave up).
    """
    if not figures.candidate.requests and figures.timeouts >= max(1, limits.minRequests):
        return ShadowVerdict(
            False,
            "MirrorTimeouts",
            f"{figures.timeouts:.0f} mirrored requests timed out and none was answered",
            figures,
        )
    base = analysis.judge(figures.candidate, limits)
    if base.passed is not True:
        return ShadowVerdict(base.passed, base.reason, f"{base.message} (mirrored)", figures)
    share = figures.agreement
    if share is None:
        return ShadowVerdict(
            None, "NoComparedRows", "no answer compared with stable's yet", figures
        )
    compared = f"{figures.rows:.0f} compared rows"
    if share < shadow.minAgreement:
        return ShadowVerdict(
            False,
            "AgreementTooLow",
            f"agrees with stable on {share:.1%} of {compared}, needs {shadow.minAgreement:.1%}",
            figures,
        )
    message = f"{base.message} (mirrored), agreement {share:.1%} of {compared}"
    return ShadowVerdict(True, "AnalysisPassed", message, figures)


def _with_figures(status: ShadowStatus, verdict: ShadowVerdict) -> ShadowStatus:
    f = verdict.figures
    return status.model_copy(
        update={
            "requests": int(f.candidate.requests),
            "errorRate": round(f.candidate.error_rate(), 6),
            "latencyP99Ms": None if f.candidate.p99_ms is None else round(f.candidate.p99_ms, 3),
            "comparedRows": int(f.rows),
            "agreement": None if f.agreement is None else round(f.agreement, 6),
            "mirrorTimeouts": int(f.timeouts),
            "mirrorDropped": int(f.dropped),
            "message": verdict.message[:1024],
        }
    )


def roll(
    s: Step,
    item: HistoryEntry,
    ready: Callable[[int], bool],
    verdict: ShadowVerdict | None,
    want: dict[int, int],
) -> None:
    """One planner step of a running shadow for ``item``; ``ready(n)`` says whether the
    candidate's Deployment has ``n`` ready pods of its current template."""
    assert s.stable is not None
    replicas = s.spec.replicas
    config = settings(s.spec)
    current = s.shadow if s.shadow is not None and s.shadow.revision == item.number else None
    sh = current or ShadowStatus(
        revision=item.number, replicas=candidate_replicas(replicas, config.percent)
    )
    want[s.stable.number] = replicas
    if verdict is not None and verdict.figures.revision == item.number:
        sh = _with_figures(sh, verdict)
        if verdict.passed is False and sh.passedAt is None:
            reason = f"{SHADOW_FAILED}: {verdict.message}"
            rv.set_outcome(s.history, item.number, "RolledBack", reason, s.now_s)
            s.event("RolledBack", f"revision {item.number}: shadow analysis failed: "
                    f"{verdict.message}", warning=True)  # fmt: skip
            s.shadow = None
            s.degraded = (SHADOW_FAILED, f"revision {item.number} failed its shadow analysis: "
                          f"{verdict.message}; revision {s.stable.number} keeps serving")  # fmt: skip
            return
    if sh.passedAt is not None:
        want[item.number] = replicas
        if ready(replicas):
            s.promote(item, f"shadow passed ({sh.message or 'analysis passed'})")
            want.clear()
            want[item.number] = replicas
            return
        s.shadow = sh
        s.progress = ("ShadowFinishing", f"scaling revision {item.number} to {replicas} pods")
        return
    want[item.number] = sh.replicas
    if sh.startedAt is None and not ready(sh.replicas):
        s.shadow = sh
        s.progress = ("WaitingForReadiness", f"shadow revision {item.number}: "
                      f"waiting for {sh.replicas} ready pod(s)")  # fmt: skip
        created = parse_time(item.deployedAt)
        age = (s.now - created).total_seconds() if created is not None else 0.0
        if age > PROGRESS_DEADLINE_S:
            s.degraded = ("ProgressDeadlineExceeded", f"shadow revision {item.number} not ready "
                          f"after {age:.0f}s; revision {s.stable.number} keeps serving")  # fmt: skip
        return
    if sh.startedAt is None:
        sh = sh.model_copy(update={"startedAt": s.now_s})
        s.event("ShadowStarted", f"revision {item.number} receives {config.percent}% of "
                f"stable's requests, mirrored ({sh.replicas} pod(s))")  # fmt: skip
    started = parse_time(sh.startedAt)
    age = (s.now - started).total_seconds() if started is not None else 0.0
    if verdict is not None and verdict.passed is True and age >= config.durationSeconds:
        sh = sh.model_copy(update={"passedAt": s.now_s})
        want[item.number] = replicas
        s.event("ShadowPassed", f"revision {item.number}: {verdict.message}")
        s.shadow = sh
        s.progress = ("ShadowFinishing", f"scaling revision {item.number} to {replicas} pods")
        return
    s.shadow = sh
    if verdict is not None and verdict.passed is True:
        left = config.durationSeconds - age
        why = f"analysis passing; observing {left:.0f}s more ({verdict.message})"
    else:
        why = verdict.message if verdict is not None else "waiting for mirrored requests"
    s.progress = ("ShadowProgressing", f"revision {item.number}: {why}"[:1024])
