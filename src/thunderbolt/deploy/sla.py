"""``spec.sla``: the serving revision watched continuously, not only during a canary.

Every ``intervalSeconds`` the controller reads the serving pods' own ``/metrics`` (as the
canary analysis does; no Prometheus needed) and judges the *window* since the last
reading: the counters' difference (``Snapshot.__sub__``; a restarted pod's reset counts
from zero) gives the window's error rate and p99, and the ready pods over ``replicas``
give availability. ``breachWindows`` breached windows in a row make a breach: a Degraded
condition (``SLABreached``), a Warning Event, and with ``onBreach: Rollback`` a rollback
to the newest older revision that served (``revisions.served``). The breached revision's
model is then not deployed again while the spec names it (``slaBreach`` on its entry).
"""

from __future__ import annotations

import dataclasses

from thunderbolt.api.modeldeployment import SLA
from thunderbolt.deploy.promparse import Snapshot


@dataclasses.dataclass
class Watch:
    """Per-deployment memory between windows: the last reading of the serving pods
    (revision, counters, monotonic time) and the latest verdict. Lost on restart: the
    next reading starts a new window."""

    reading: tuple[int, Snapshot, float] | None = None
    verdict: SlaVerdict | None = None


@dataclasses.dataclass(frozen=True)
class SlaVerdict:
    """One window's judgement. ``breached`` None: nothing to judge (too few requests)."""

    revision: int
    breached: bool | None
    message: str
    streak: int = 0  # consecutive breached windows, this one included


def judge(sla: SLA, revision: int, window: Snapshot, ready: int, replicas: int) -> SlaVerdict:
    problems = []
    if sla.minAvailability is not None and replicas > 0:
        availability = ready / replicas
        if availability < sla.minAvailability:
            problems.append(f"availability {availability:.0%} ({ready}/{replicas} pods ready) "
                            f"below {sla.minAvailability:.0%}")  # fmt: skip
    seen = f"{window.requests:.0f} requests in the window"
    judged = window.requests >= sla.minRequests and window.requests > 0
    if judged and sla.maxErrorRate is not None and window.error_rate() > sla.maxErrorRate:
        problems.append(f"error rate {window.error_rate():.1%} over {seen} exceeds "
                        f"{sla.maxErrorRate:.1%}")  # fmt: skip
    p99 = window.p99_ms
    if judged and sla.maxLatencyP99Ms is not None and p99 is not None and p99 > sla.maxLatencyP99Ms:
        problems.append(f"p99 latency {p99:.1f} ms over {seen} exceeds {sla.maxLatencyP99Ms:g} ms")
    if problems:
        return SlaVerdict(revision, True, "; ".join(problems))
    if not judged and sla.minAvailability is None:
        return SlaVerdict(revision, None, f"{seen}, need {sla.minRequests}")
    return SlaVerdict(revision, False, f"within the SLA ({seen})")


def streak(previous: SlaVerdict | None, verdict: SlaVerdict) -> SlaVerdict:
    """Count breached windows in a row (an unjudged window neither breaks nor extends it)."""
    before = previous.streak if previous and previous.revision == verdict.revision else 0
    if verdict.breached is None:
        return dataclasses.replace(verdict, streak=before)
    return dataclasses.replace(verdict, streak=before + 1 if verdict.breached else 0)
