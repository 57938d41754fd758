"""How a canary weight becomes traffic without a service mesh: by pod counts.

One Service selects the pods of both revisions, and kube-proxy spreads connections evenly
over ready endpoints, so the canary's share is ``canary_pods / (stable_pods + canary_pods)``
(per connection, not per request: keep-alive clients stick to one pod). The larger side
gets ``replicas`` pods and the smaller side as few as give the nearest ratio, never fewer
than one, so stable capacity never drops below one pod and never more than
``2 * replicas`` pods run at once. With ``replicas: 1`` a 10 % step is really 50 %; with
``replicas: 9`` it is 10 % (9 stable : 1 canary). ``effective_weight`` reports the truth.

When the Gateway API is served, an HTTPRoute with exact weights is written as well; a
mesh that implements it (GAMMA) then splits requests exactly.
"""

from __future__ import annotations

import dataclasses

from thunderbolt.api.modeldeployment import CanaryStep


@dataclasses.dataclass(frozen=True)
class Split:
    stable: int
    canary: int

    @property
    def effective_weight(self) -> float:
        total = self.stable + self.canary
        return 100.0 * self.canary / total if total else 0.0


def split_replicas(replicas: int, weight: int) -> Split:
    """Pods per side for a canary ``weight`` (1..100) of a deployment of ``replicas`` pods."""
    replicas = max(1, replicas)
    weight = min(100, max(0, weight))
    if weight >= 100:
        return Split(stable=1, canary=replicas)
    if weight <= 0:
        return Split(stable=replicas, canary=0)
    if weight <= 50:
        canary = max(1, round(replicas * weight / (100 - weight)))
        return Split(stable=replicas, canary=min(canary, replicas))
    stable = max(1, round(replicas * (100 - weight) / weight))
    return Split(stable=min(stable, replicas), canary=replicas)


def route_weights(stable: int, canary: int, weight: int) -> dict[int, int]:
    """HTTPRoute backend weights by revision number."""
    return {stable: 100 - weight, canary: weight}


@dataclasses.dataclass(frozen=True)
class StepDecision:
    """What to do at a canary step: stay, move on to ``next_step``, or promote."""

    action: str  # "wait" | "advance" | "promote"
    next_step: int
    why: str


def step_decision(
    steps: list[CanaryStep],
    step: int,
    ready: bool,
    seconds_in_step: float | None,
    analysis_ok: bool | None,
) -> StepDecision:
    """The pause counts from when the step's pods are ready; analysis must have passed
    (``True``) or be switched off (``None``) -- ``False`` (not enough requests yet) waits."""
    current = steps[step]
    if not ready or seconds_in_step is None:
        return StepDecision("wait", step, f"waiting for step {step + 1} pods to be ready")
    if seconds_in_step < current.pauseSeconds:
        left = current.pauseSeconds - seconds_in_step
        return StepDecision("wait", step, f"step {step + 1} pause, {left:.0f}s left")
    if analysis_ok is False:
        return StepDecision("wait", step, f"step {step + 1}: waiting for enough requests to judge")
    if step + 1 < len(steps):
        return StepDecision("advance", step + 1, f"step {step + 1} passed")
    return StepDecision("promote", step, f"all {len(steps)} steps passed")
