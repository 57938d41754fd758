"""One report, end to end: check it, persist it on the Trial, answer whether to prune.

The order of checks is deliberate: cheap, state-free checks first (path, media type,
size), then the rate limits (per source address and per Trial name, *before* the
credential, so forged reports cannot turn into Secret reads faster than the limits
allow), then the credential (an unauthenticated caller learns nothing; Secret reads for
tokens not in the cache share one budget), then the body. Nothing is written before every
check has passed, so a rejected report changes nothing.

Correctness never depends on this process's memory: caches only save API reads, and the
status write carries the resourceVersion the decision was made from, so a stale cache
costs one 409 and a re-read, never a lost or duplicated value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from thunderbolt.api.experiment import Pruner
from thunderbolt.api.meta import describe_errors, format_time, now_utc
from thunderbolt.api.report_schema import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    NAME_RE,
    NAMESPACE_RE,
    REPORT_ADAPTER,
    EpochReport,
    ErrorReply,
    ReportReply,
    StartReport,
    StopReport,
)
from thunderbolt.reports import events, metrics
from thunderbolt.reports.cache import TtlCache
from thunderbolt.reports.credentials import (
    Credential,
    LookupBudgetSpent,
    TokenVerifier,
    parse_bearer,
)
from thunderbolt.reports.errors import (
    Forbidden,
    InvalidJson,
    InvalidReport,
    NotFound,
    RateLimited,
    Rejected,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)
from thunderbolt.reports.history import Plan, plan
from thunderbolt.reports.pruning import PruneSnapshot, record_from_trial
from thunderbolt.reports.ratelimit import RateLimiter
from thunderbolt.reports.store import Conflict, StoreError, TrialStore
from thunderbolt.reports.writer import TrialWriter, WriteFailed

log = logging.getLogger(__name__)
AnyReport = StartReport | EpochReport | StopReport


def report_steps(template: dict[str, Any]) -> int:
    """Steps a Trial reports (fold k's epoch e is step k * epochs + e): Hyperband's max."""
    folds = int((template.get("validation") or {}).get("folds") or 1)
    return int(template.get("epochs") or 1) * folds


@dataclass(frozen=True)
class ServiceConfig:
    rate: float = 20.0  # reports per second per Trial (per replica)
    burst: float = 40.0
    source_rate: float = 200.0  # reports per second per source address (a node's pods share it)
    source_burst: float = 400.0
    lookup_rate: float = 50.0  # Secret reads per second for tokens not in the cache
    lookup_burst: float = 100.0
    write_attempts: int = 10  # optimistic status writes before answering 503
    # 0: acknowledge after the Trial is written; > 0: acknowledge after validation and
    # write a Trial's points together within this many seconds (see ``writer``).
    write_delay: float = 0.0
    experiment_ttl: float = 30.0
    peers_ttl: float = 2.0  # the Experiment's Trials, for pruning (see ``snapshot_ttl``)
    peers_per_ttl: int = 100  # ... and that much longer per this many Trials
    epoch_event_every: int = 10
    # Namespaces whose Trials may report (the operator's scope); others look nonexistent.
    in_scope: Callable[[str], bool] = lambda namespace: True


def snapshot_ttl(base: float, peers: int, per: int) -> float:
    """How long a pruning snapshot serves: it LISTs every Trial of the Experiment and
    builds a study of them, so it is refreshed at most every ``base x peers/per`` seconds
    (never less than ``base``): that keeps the snapshot's API bytes and CPU per second
    level as a search grows to thousands of Trials. The pruner then misses at most the
    Trials finished in that window, a small share of the many it compares against."""
    return base * max(1.0, peers / max(1, per))


def utc_now() -> str:
    return format_time(now_utc())


def parse_report(body: bytes) -> AnyReport:
    """Bytes -> a validated report; InvalidJson (400) or InvalidReport (422) otherwise."""
    try:
        return REPORT_ADAPTER.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise InvalidJson("body is not valid JSON") from None
        raise InvalidReport(describe_errors(exc, limit=5)) from None


class ReportService:
    """HTTP-agnostic report handling; ``server`` maps requests and replies onto it."""

    def __init__(
        self,
        store: TrialStore,
        config: ServiceConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config or ServiceConfig()
        self.lookups = RateLimiter(self.config.lookup_rate, self.config.lookup_burst, clock=clock)
        self.source_lookups = RateLimiter(
            self.config.lookup_rate / 10, self.config.lookup_burst / 10, max_keys=4096, clock=clock
        )
        self.verifier = TokenVerifier(store.get_secret, clock=clock)
        self.limiter = RateLimiter(self.config.rate, self.config.burst, clock=clock)
        self.sources = RateLimiter(
            self.config.source_rate, self.config.source_burst, max_keys=4096, clock=clock
        )
        self.events = events.EventSink(store)
        self.writer = TrialWriter(
            store,
            delay=self.config.write_delay,
            attempts=self.config.write_attempts,
            now=utc_now,
        )
        self._experiments: TtlCache[tuple[str, str], dict[str, Any] | None] = TtlCache(
            self.config.experiment_ttl, clock
        )
        self._snapshots: TtlCache[tuple[str, str], PruneSnapshot | None] = TtlCache(
            self.config.peers_ttl,
            clock,
            max_stale=self.config.peers_ttl,
            ttl_of=lambda snap: snapshot_ttl(
                self.config.peers_ttl,
                len(snap.records) if snap is not None else 0,
                self.config.peers_per_ttl,
            ),
        )
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def start(self) -> None:
        self.events.start()

    async def stop(self) -> None:
        await self.writer.flush_all()
        await self.events.stop()

    def _lookup_budget(self, source: str) -> Callable[[], float]:
        """Secret reads for tokens the cache cannot vouch for: a tenth of the budget per
        source address (each pod has its own), the whole budget for everyone together."""

        def wait() -> float:
            return self.source_lookups.check(source) or self.lookups.check("all")

        return wait

    async def handle(
        self,
        namespace: str,
        trial: str,
        *,
        authorization: str | None,
        content_type: str | None,
        body: bytes,
        source: str | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(HTTP status, JSON reply, extra headers) for one report from ``source``."""
        began = time.perf_counter()
        kind = "unknown"
        try:
            with metrics.PHASE_SECONDS.labels("admit").time():
                report, credential = await self._admit(
                    namespace, trial, authorization, content_type, body, source
                )
            kind = report.kind
            reply = await self._ingest(namespace, trial, credential, report)
            metrics.REPORTS.labels(kind, reply.result).inc()
            return 200, reply.model_dump(), {}
        except Rejected as exc:
            metrics.REPORTS.labels(kind, exc.code).inc()
            headers = {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(max(1, round(exc.retry_after + 0.5)))
            reply_body = ErrorReply(error=exc.code, message=exc.message).model_dump()
            return exc.status, reply_body, headers
        finally:
            metrics.INGEST_SECONDS.labels(kind).observe(time.perf_counter() - began)

    async def collect(
        self, namespace: str, trial: str, report: AnyReport, *, owner_uid: str
    ) -> ReportReply:
        """A report the operator read itself from the Trial's container (StdOut/File
        collectors): no token and no per-Trial rate limit (the collector bounds its own
        rate), otherwise the same path as a pushed report: persist, prune, events.
        Raises ``Rejected`` (finished Trial, step conflicts, API trouble)."""
        began = time.perf_counter()
        try:
            reply = await self._ingest(namespace, trial, Credential(b"", owner_uid), report)
        except Rejected as exc:
            metrics.REPORTS.labels("collected", exc.code).inc()
            raise
        finally:
            metrics.INGEST_SECONDS.labels("collected").observe(time.perf_counter() - began)
        metrics.REPORTS.labels("collected", reply.result).inc()
        return reply

    async def _admit(
        self,
        namespace: str,
        trial: str,
        authorization: str | None,
        content_type: str | None,
        body: bytes,
        source: str | None = None,
    ) -> tuple[AnyReport, Credential]:
        if not NAMESPACE_RE.match(namespace) or not NAME_RE.match(trial):
            raise NotFound("no such trial")
        if not self.config.in_scope(namespace):
            raise NotFound("no such trial")
        media = (content_type or "").split(";")[0].strip().lower()
        if media != CONTENT_TYPE:
            raise UnsupportedMediaType(f"content type must be {CONTENT_TYPE}")
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(f"report bodies are limited to {MAX_BODY_BYTES} bytes")
        token = parse_bearer(authorization)
        if token is None:
            raise Unauthenticated("an 'Authorization: Bearer <trial token>' header is required")
        wait = self.sources.check(source or "unknown")
        if wait > 0:
            raise RateLimited("too many reports from this address", retry_after=wait)
        wait = self.limiter.check((namespace, trial))
        if wait > 0:
            raise RateLimited("too many reports for this trial", retry_after=wait)
        try:
            credential = await self.verifier.verify(
                namespace, trial, token, budget=self._lookup_budget(source or "unknown")
            )
        except LookupBudgetSpent as exc:
            raise RateLimited(
                "too many unknown tokens; retry", retry_after=exc.retry_after
            ) from None
        except StoreError as exc:
            raise Unavailable(str(exc)) from None
        if credential is None:
            raise Forbidden("the token is not valid for this trial")
        return parse_report(body), credential

    async def _read_trial(self, key: tuple[str, str]) -> dict[str, Any]:
        try:
            obj = await self.store.get_trial(*key)
        except StoreError as exc:
            raise Unavailable(str(exc)) from None
        if obj is None:
            self.writer.forget(key)
            raise NotFound("no such trial")
        self.writer.remember(key, obj)
        return obj

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _decide(
        self,
        key: tuple[str, str],
        credential: Credential,
        report: AnyReport,
        obj: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], Plan]:
        """Plan against ``obj`` (default: what this replica knows); a rejection is only
        ever made from a fresh read."""
        fresh = obj is not None
        obj = obj or self.writer.known(key)
        if obj is None:
            obj, fresh = await self._read_trial(key), True
        while True:
            try:
                if credential.owner_uid and obj["metadata"].get("uid") != credential.owner_uid:
                    raise Forbidden("the token belongs to an earlier trial of this name")
                return obj, plan(self.writer.view(key, obj), report)
            except Rejected:
                if fresh:
                    raise
                obj, fresh = await self._read_trial(key), True

    async def _persist(
        self, key: tuple[str, str], credential: Credential, report: AnyReport
    ) -> tuple[dict[str, Any], Plan]:
        """Record the report; returns the Trial as this replica now sees it, and the plan."""
        try:
            if self.config.write_delay > 0:
                obj, decided = await self._decide(key, credential, report)
                if decided.writes:
                    self.writer.enqueue(key, decided.add, decided.start)
                if isinstance(report, StopReport):  # the last word: everything goes now
                    await self.writer.flush(key)
                return self.writer.view(key, self.writer.known(key) or obj), decided
            fresh: dict[str, Any] | None = None
            for _ in range(self.config.write_attempts):
                obj, decided = await self._decide(key, credential, report, fresh)
                if not decided.writes:
                    return obj, decided
                try:
                    return await self.writer.write_once(
                        key, obj, decided.add, decided.start
                    ), decided
                except Conflict:  # changed since: decide again on what is there now
                    fresh = await self._read_trial(key)
        except WriteFailed as exc:
            if exc.gone:
                raise NotFound("no such trial") from None
            raise Unavailable(str(exc)) from None
        raise Unavailable("the trial is changing too fast; retry")

    async def _ingest(
        self, namespace: str, trial: str, credential: Credential, report: AnyReport
    ) -> ReportReply:
        key = (namespace, trial)
        with metrics.PHASE_SECONDS.labels("persist").time():
            async with self._lock(key):
                obj, decided = await self._persist(key, credential, report)
        prune = False
        if isinstance(report, EpochReport):
            with metrics.PHASE_SECONDS.labels("prune").time():
                prune = await self._decide_prune(namespace, obj)
        self._announce(obj, report, decided, prune)
        reply_step = self.writer.stored_step(key)
        if isinstance(report, StopReport):
            self.writer.done(key)
        return ReportReply(
            result=decided.result,
            kind=report.kind,
            step=report.step,
            prune=prune,
            storedStep=reply_step,
        )

    async def _snapshot(self, namespace: str, experiment: str) -> PruneSnapshot | None:
        """The Experiment's pruner over its Trials, rebuilt at most every ``peers_ttl``."""

        async def load() -> PruneSnapshot | None:
            exp = await self._experiments.get(
                (namespace, experiment),
                lambda: self.store.get_experiment(namespace, experiment),
            )
            if exp is None:
                return None
            spec = exp.get("spec") or {}
            config = Pruner.model_validate(spec.get("pruner") or {})
            peers = (
                [] if config.name == "none" else await self.store.list_trials(namespace, experiment)
            )
            return PruneSnapshot(
                config,
                direction=(spec.get("objective") or {}).get("direction", "maximize"),
                study_name=f"{namespace}/{experiment}/{exp['metadata'].get('uid', '')}",
                max_resource=report_steps(spec.get("trialTemplate") or {}),
                trials=[record_from_trial(p) for p in peers],
            )

        return await self._snapshots.get((namespace, experiment), load, stale_ok=True)

    async def _decide_prune(self, namespace: str, obj: dict[str, Any]) -> bool:
        """Ask the Experiment's pruner; any failure here answers "keep training"."""
        experiment = str((obj.get("spec") or {}).get("experiment") or "")
        try:
            snapshot = await self._snapshot(namespace, experiment)
            if snapshot is None or snapshot.config.name == "none":
                return False
            decision = snapshot.decide(record_from_trial(obj))
        except Exception as exc:  # noqa: BLE001 — never fail a report over a pruning problem
            log.warning("pruning %s/%s: %s", namespace, obj["metadata"]["name"], exc)
            return False
        name = snapshot.config.name
        metrics.PRUNE_DECISIONS.labels(name, "prune" if decision else "continue").inc()
        return decision

    def _announce(self, obj: dict[str, Any], report: AnyReport, decided: Plan, prune: bool) -> None:
        """Events and gauges for what this report changed (duplicates change nothing)."""
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        experiment = str((obj.get("spec") or {}).get("experiment") or "")
        if decided.start or isinstance(report, StartReport):
            # the operator may have seen the pod run first (phase already Running): the
            # trainer's word still deserves its Event (named once per Trial)
            self.events.emit(events.build_event(obj, "TrainingStarted", "training started", step=0))
        if prune and decided.value is not None:
            # also for a repeated report: the verdict may differ from the first answer's,
            # and the Event's name makes it appear once per step
            message = f"pruner asked to stop at epoch {report.step} (value {decided.value:.6g})"
            self.events.emit(events.build_event(obj, "PruneRequested", message, step=report.step))
        if decided.result != "accepted":
            return
        if isinstance(report, EpochReport) and decided.value is not None:
            metrics.observe_value(ns, experiment, name, report.step, decided.value)
            if events.sample_epoch(report.step, self.config.epoch_event_every):
                shown = ", ".join(f"{k}={v:.6g}" for k, v in sorted(report.metrics.items())[:8])
                message = f"epoch {report.step}: value={decided.value:.6g} ({shown})"
                self.events.emit(
                    events.build_event(obj, "EpochReported", message, step=report.step)
                )
        elif isinstance(report, StopReport):
            metrics.forget_trial(ns, experiment, name)
            objective = "none" if report.objective is None else f"{report.objective:.6g}"
            message = (
                f"training stopped: {report.status}, objective {objective} at step {report.step}"
            )
            if report.reason:
                message += f" ({report.reason})"
            kind = "Normal" if report.status != "Failed" else "Warning"
            self.events.emit(
                events.build_event(
                    obj, "TrainingStopped", message, step=report.step, event_type=kind
                )
            )
