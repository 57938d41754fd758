"""One tick of the controller: read fresh state, resolve the model, analyse, plan, write.

Level-triggered: every tick starts from the object as the API server has it now and the
revision Deployments it sees, so a restarted operator (or a lost write) just carries on.
The status is written first (guarded by resourceVersion), the children after: a tick that
loses a race writes nothing, and children lagging behind a written status are brought in
line by the next tick. Per-object memory is only a cache (alias lookups, the latest canary
verdict): losing it costs one extra lookup or scrape.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiException
from pydantic import ValidationError

from thunderbolt.api.meta import EVENT_MESSAGE_LIMIT, describe_errors
from thunderbolt.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, parse_spec
from thunderbolt.api.refusals import is_unfixable, refusal_message
from thunderbolt.deploy import approval, guards, metrics, promotion
from thunderbolt.deploy import builders as b
from thunderbolt.deploy import revisions as rv
from thunderbolt.deploy import shadow as shadows
from thunderbolt.deploy import sla as slas
from thunderbolt.deploy.analysis import Verdict, judge, parse
from thunderbolt.deploy.kube import Kube, scrape
from thunderbolt.deploy.rollout import Desired, Plan, Unresolved, plan
from thunderbolt.deploy.sources import (
    MlflowSource,
    ResolvedModel,
    Resolver,
    SourceNotReady,
    SourcePolicy,
    SourceRefused,
    TrialSource,
)
from thunderbolt.settings import OperatorSettings

Post = Callable[[str, str, str], None]  # (type, reason, message) -> a Kubernetes Event
log = logging.getLogger(__name__)
RETRY_UNRESOLVED_S = 10.0
# A deployment at rest (nothing rolling out, generation observed) is re-checked this often;
# anything in flight is ticked every time the timer fires.
STEADY_RESYNC_S = 30.0
FORGET_AFTER_S = 600.0
# A ModelDeployment's name becomes a label value and its Service's name (both <= 63).
MAX_NAME = 63
# Status reason when the API server refused a child (Deployment, Service, route) as invalid.
CHILD_REFUSED = "InvalidServingSpec"


def drop_empty(value: Any) -> Any:
    """Leave out empty strings: the local 1.20 API server reads ``""`` as null and rejects it."""
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


def at_rest(body: dict[str, Any]) -> bool:
    """Nothing for a tick to move: no canary, no revision rolling out, spec observed,
    serving (or held Degraded). Read from the watch cache, so deciding costs no API call."""
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    waiting_first = status.get("phase") == "Pending" and status.get("reason") == "PendingApproval"
    if status.get("phase") not in ("Available", "Degraded") and not waiting_first:
        return False
    if status.get("canary") or status.get("shadow"):
        return False
    if status.get("observedGeneration") != generation:
        return False
    return not any(h.get("outcome") == "Active" for h in status.get("history") or [])


def refused_for_good(obj: dict[str, Any]) -> bool:
    """A child of this generation was refused by the API server: nothing to retry."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    return status.get("reason") == CHILD_REFUSED and status.get("observedGeneration") == generation


@dataclasses.dataclass
class ObjectState:
    resolved_key: str | None = None
    resolved: Desired | None = None
    resolved_at: float = 0.0
    verdict: tuple[int, Verdict, float] | None = None
    shadow: tuple[shadows.ShadowVerdict, float] | None = None
    sla: slas.Watch = dataclasses.field(default_factory=slas.Watch)
    last_promotion_note: str | None = None
    seen: float = 0.0
    last_tick: float = 0.0
    mlflow_model: str | None = None  # the registered model it names (webhooks re-check it)
    recheck: bool = False  # a registry webhook said the model changed: look it up now


class Controller:
    def __init__(
        self, kube: Kube, defaults: b.ServingDefaults, policy: SourcePolicy | None = None
    ) -> None:
        self.kube = kube
        self.defaults = defaults
        # Without a policy only the operator's own MLflow may be fetched from.
        own = OperatorSettings(mlflow_tracking_uri=defaults.mlflow_tracking_uri)
        self.mlflow = MlflowSource(
            defaults.mlflow_tracking_uri, policy or SourcePolicy.from_settings(own)
        )
        self.states: dict[str, ObjectState] = {}

    def state(self, uid: str) -> ObjectState:
        """Caches of one object; those of objects not seen for a while (deleted) are dropped."""
        now = time.monotonic()
        if len(self.states) > 64:
            self.states = {k: v for k, v in self.states.items() if now - v.seen < FORGET_AFTER_S}
        state = self.states.setdefault(uid, ObjectState())
        state.seen = now
        return state

    def desired(self, obj: dict[str, Any], spec: ModelDeploymentSpec,
                status: ModelDeploymentStatus, state: ObjectState) -> Desired:  # fmt: skip
        if spec.rollbackTo is not None:
            try:
                return rv.rollback_target(status, spec.rollbackTo)
            except rv.RevisionNotFound as exc:
                return Unresolved("RevisionNotFound", str(exc), error=True)
        key = spec.model.model_dump_json()
        ttl = float(spec.model.mlflowModel.pollSeconds) if spec.model.mlflowModel else 0.0
        if isinstance(state.resolved, Unresolved) and not state.resolved.refused:
            ttl = min(ttl, RETRY_UNRESOLVED_S)
        now = time.monotonic()
        state.mlflow_model = spec.model.mlflowModel.name if spec.model.mlflowModel else None
        if (
            state.resolved_key == key
            and state.resolved is not None
            and now - state.resolved_at < ttl
            and not state.recheck
        ):
            return state.resolved
        state.recheck = False
        namespace = obj["metadata"]["namespace"]
        resolver = Resolver(
            TrialSource(lambda n: self.kube.get(namespace, "trials", n)), self.mlflow
        )
        result: Desired
        try:
            result = resolver.resolve(spec.model)
        except SourceNotReady as exc:
            result = Unresolved(exc.reason, str(exc))
        except SourceRefused as exc:
            result = Unresolved(exc.reason, str(exc), refused=True, model=exc.model)
        label = promotion.source_label(obj["metadata"].get("annotations"), spec.model.trialRef)
        if label and isinstance(result, ResolvedModel):
            result = dataclasses.replace(result, source=label)
        state.resolved_key, state.resolved, state.resolved_at = key, result, now
        return result

    def verdict(self, obj: dict[str, Any], spec: ModelDeploymentSpec,
                status: ModelDeploymentStatus, state: ObjectState) -> Verdict | None:  # fmt: skip
        canary, limits = status.canary, spec.strategy.analysis
        if canary is None or limits is None:
            state.verdict = None
            return None
        now = time.monotonic()
        last = state.verdict
        if last and last[0] == canary.revision and now - last[2] < limits.intervalSeconds:
            return last[1]
        meta = obj["metadata"]
        ips = self.kube.ready_pod_ips(meta["namespace"], meta["name"], canary.revision)
        texts = []
        for ip in ips:
            try:
                texts.append(scrape(ip, spec.serving.port))
            except OSError as exc:  # a pod that does not answer is judged next time
                log.info("canary pod %s: /metrics: %s", ip, exc)
        if not texts:
            return last[1] if last and last[0] == canary.revision else None
        verdict = judge(parse(texts, spec.modelName or meta["name"]), limits)
        state.verdict = (canary.revision, verdict, now)
        return verdict

    def shadow_verdict(self, obj: dict[str, Any], spec: ModelDeploymentSpec,
                       status: ModelDeploymentStatus, state: ObjectState,
                       ) -> shadows.ShadowVerdict | None:  # fmt: skip
        """A running shadow's analysis from the candidate's and stable's pods (every
        ``analysis.intervalSeconds``); None before it starts or when no pod answered."""
        running, stable = status.shadow, status.currentRevision
        if running is None or running.startedAt is None or stable is None:
            state.shadow = None
            return None
        limits = shadows.limits(spec)
        now, last = time.monotonic(), state.shadow
        if (
            last
            and last[0].figures.revision == running.revision
            and now - last[1] < limits.intervalSeconds
        ):
            return last[0]
        meta = obj["metadata"]
        texts: dict[int, list[str]] = {}
        for number in (running.revision, stable.number):
            texts[number] = []
            for ip in self.kube.ready_pod_ips(meta["namespace"], meta["name"], number):
                try:
                    texts[number].append(scrape(ip, spec.serving.port))
                except OSError as exc:  # judged next time
                    log.info("shadow: pod %s: /metrics: %s", ip, exc)
        if not texts[running.revision]:
            return last[0] if last and last[0].figures.revision == running.revision else None
        model = spec.modelName or meta["name"]
        try:
            figures = shadows.measure(texts[running.revision], texts[stable.number], model,
                                      running.revision)  # fmt: skip
        except ValueError as exc:
            log.info("shadow: unreadable /metrics: %s", exc)
            return None
        verdict = shadows.judge(figures, limits, shadows.settings(spec))
        state.shadow = (verdict, now)
        return verdict

    def due(self, body: dict[str, Any]) -> bool:
        """Whether the timer should run a full tick now (see ``at_rest``)."""
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        state = self.state(str(meta.get("uid")))
        now = time.monotonic()
        poll = ((spec.get("model") or {}).get("mlflowModel") or {}).get("pollSeconds")
        if state.recheck:
            return True  # a registry webhook: the alias may point elsewhere now
        if poll is not None and now - state.resolved_at >= float(poll):
            return True  # an alias (or version) to look up again
        if approval.undecided(meta, (body.get("status") or {}).get("history") or []):
            return True  # someone approved, rejected or deprecated a revision
        sla = (spec.get("sla") or {}).get("intervalSeconds")
        if spec.get("sla") and now - state.last_tick >= float(sla or 30):
            return True  # the serving revision's next SLA window
        return not at_rest(body) or now - state.last_tick >= STEADY_RESYNC_S

    def recheck_mlflow_model(self, name: str) -> int:
        """Make every ModelDeployment naming registered model ``name`` look it up on its
        next tick (a registry webhook); how many there are."""
        marked = 0
        for state in list(self.states.values()):
            if state.mlflow_model == name:
                state.recheck = True
                marked += 1
        return marked

    def tick(
        self, name: str, namespace: str, post: Post, now: dt.datetime | None = None
    ) -> Plan | None:
        obj = self.kube.get(namespace, b.PLURAL, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        meta = obj["metadata"]
        state = self.state(meta["uid"])
        state.last_tick = time.monotonic()
        if len(name) > MAX_NAME:
            # The name is a label value and the Service's name: every list and create
            # would be refused (400/422) on every tick.
            self._invalid(obj, f"metadata.name: {len(name)} characters; at most {MAX_NAME}", post)
            return None
        try:
            spec = parse_spec(obj.get("spec") or {})
        except ValidationError as exc:
            self._invalid(obj, exc, post)
            return None
        if refused_for_good(obj):
            return None
        try:
            status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            status = ModelDeploymentStatus()  # unreadable status: rebuild from the children
        owner = b.Owner(name, namespace, meta["uid"])
        children = self.kube.revisions(namespace, name)
        observed = {n: o for n, (o, _) in children.items()}
        desired = self.desired(obj, spec, status, state)
        verdict = self.verdict(obj, spec, status, state)
        shadow = self.shadow_verdict(obj, spec, status, state)
        gateway = self.kube.gateway_version() if spec.strategy.type == "Canary" else None
        decisions, bad = approval.decisions(meta)
        gate_results = guards.gate_results(self.kube, owner, spec, status)
        sla = guards.sla_window(self.kube, obj, spec, status, state.sla, observed)
        result = plan(
            spec, status, desired, observed, now or dt.datetime.now(dt.UTC),
            generation=meta.get("generation"), verdict=verdict, gateway_api=gateway is not None,
            decisions=decisions, bad_decisions=bad, gate_results=gate_results, sla=sla,
            shadow=shadow,
        )  # fmt: skip
        model = b.model_name(owner, spec)
        result.status.endpoint = b.endpoint(name, namespace, spec.serving.port, model)
        result.status.previewEndpoint = (
            b.endpoint(b.preview_name(owner), namespace, spec.serving.port, model)
            if spec.strategy.type == "BlueGreen"
            else None
        )
        new_status = drop_empty(result.status.model_dump(mode="json", exclude_none=True))
        if new_status != obj.get("status"):
            if not self.kube.replace_status(obj, new_status):
                return None  # someone wrote in between: the next tick starts over
        for type_, reason, message in result.events:
            post(type_, reason, message)
            metrics.observe_event(namespace, name, reason)
        try:
            self.apply(owner, spec, result, children, gateway)
            if spec.gate is not None:
                guards.run_gates(self.kube, self.defaults, owner, spec, result)
        except ApiException as exc:
            if not is_unfixable(exc):
                raise
            self._refused(namespace, name, refusal_message(exc), post)
        return result

    def apply(self, owner: b.Owner, spec: ModelDeploymentSpec, p: Plan,
              children: dict[int, Any], gateway: str | None) -> None:  # fmt: skip
        ns, port = owner.namespace, spec.serving.port
        services = self.kube.services(ns, owner.name)
        shadow = b.shadow_name(owner)
        mirror_host = None
        if spec.strategy.type == "Shadow":  # first: the pods mirror to its ClusterIP
            target = b.shadow_selector(owner, p.shadow_revision)
            self.kube.ensure_service(b.service(owner, shadow, target, port), services.get(shadow))
            if shadow not in services:
                services = self.kube.services(ns, owner.name)
            mirror_host = (services.get(shadow) or {}).get("ip") or None
        elif shadow in services:
            self.kube.delete_service(ns, shadow)
        for number, (revision, replicas) in sorted(p.deployments.items()):
            body = b.deployment(owner, spec, revision, replicas, self.defaults, mirror_host)
            existing = children.get(number)
            self.kube.ensure_deployment(body, existing[1] if existing else None)
        selector = None
        if p.select_all:
            selector = b.all_revisions_selector(owner)
        elif p.selector_revision is not None:
            selector = b.revision_selector(owner, p.selector_revision)
        if selector is not None:
            body = b.service(owner, owner.name, selector, port, spec.serving.grpcPort)
            self.kube.ensure_service(body, services.get(owner.name))
        preview = b.preview_name(owner)
        if p.preview_revision is not None:
            selector = b.revision_selector(owner, p.preview_revision)
            body = b.service(owner, preview, selector, port, spec.serving.grpcPort)
            self.kube.ensure_service(body, services.get(preview))
        elif preview in services:
            self.kube.delete_service(ns, preview)
        if gateway is not None:
            self._route(owner, p, services, gateway, port)
        for number in p.delete:
            self.kube.delete_deployment(ns, b.revision_name(owner, number))

    def _route(
        self, owner: b.Owner, p: Plan, services: dict[str, Any], api_version: str, port: int
    ) -> None:
        weights = p.route_weights or {}
        wanted = {b.revision_name(owner, n): n for n in weights}
        for svc, number in wanted.items():
            body = b.service(owner, svc, b.revision_selector(owner, number), port)
            self.kube.ensure_service(body, services.get(svc))
        if weights:
            self.kube.ensure_route(b.http_route(owner, weights, port, api_version))
        else:
            self.kube.delete_route(api_version, owner.namespace, owner.name)
        for svc in services:
            if svc.startswith(f"{owner.name}-r") and svc not in wanted:
                self.kube.delete_service(owner.namespace, svc)

    def _refused(self, namespace: str, name: str, message: str, post: Post) -> None:
        """The API server refused a child as invalid: say so once and stop trying until
        the spec changes (a new generation), instead of retrying every tick."""
        obj = self.kube.get(namespace, b.PLURAL, name)
        if obj is None:
            return
        status = dict(obj.get("status") or {})
        status.update(
            phase="Degraded",
            reason=CHILD_REFUSED,
            message=message[:1024],
            observedGeneration=obj["metadata"].get("generation"),
        )
        if self.kube.replace_status(obj, status):
            post("Warning", CHILD_REFUSED, message)

    def _invalid(self, obj: dict[str, Any], problem: ValidationError | str, post: Post) -> None:
        text = problem if isinstance(problem, str) else describe_errors(problem)
        message = text[:EVENT_MESSAGE_LIMIT]
        status = dict(obj.get("status") or {})
        if status.get("reason") == "InvalidSpec" and status.get("message") == message:
            return
        status.update(phase="Degraded", reason="InvalidSpec", message=message)
        if self.kube.replace_status(obj, status):
            post("Warning", "InvalidSpec", message)

    def promote(
        self,
        experiment: dict[str, Any],
        post: Post,
        post_target: Callable[[dict[str, Any], str, str, str], None],
    ) -> None:
        """Experiment ``spec.promote``: patch the named ModelDeployment's model when due."""
        meta, spec = experiment["metadata"], experiment.get("spec") or {}
        status = experiment.get("status") or {}
        promote = spec.get("promote") or {}
        if not promote or status.get("phase") != "Succeeded":
            return
        state = self.state(meta["uid"])
        target = self.kube.get(meta["namespace"], b.PLURAL, promote["modelDeployment"])
        best = status.get("bestTrial") or {}
        if target is None:
            note = f"ModelDeployment {promote['modelDeployment']} not found: nothing promoted"
            if state.last_promotion_note != note:
                post("Warning", "PromotionTargetMissing", note)
                state.last_promotion_note = note
            return
        # the promoted Trial must beat what serves on the (first) objective
        first = spec.get("objective") or (spec.get("objectives") or [{}])[0]
        direction = first.get("direction", "maximize")
        metric = first.get("metric")
        decision = promotion.decide(
            promote.get("when", "Improved"),
            direction,
            best.get("name"),
            best.get("objective"),
            target,
            margin=promotion.required_margin(
                promote.get("minImprovement"),
                promote.get("minImprovementStds"),
                best.get("objectiveStd"),
            ),
            metric=metric,
        )
        if not decision.promote:
            if state.last_promotion_note != decision.reason:
                post("Normal", "PromotionSkipped", decision.reason)
                state.last_promotion_note = decision.reason
            return
        self.kube.patch_modeldeployment(
            meta["namespace"],
            promote["modelDeployment"],
            promotion.patch_for(meta["name"], best["name"]),
        )
        state.last_promotion_note = None
        post("Normal", "Promoted", f"{promote['modelDeployment']}: {decision.reason}")
        post_target(target, "Normal", "Promoted", f"experiment {meta['name']}: {decision.reason}")
