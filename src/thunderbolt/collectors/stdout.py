"""The StdOut collector: follow a Trial container's log through the API server and turn
its metric lines into the same reports the push endpoint stores (pruning included).

Why the log API: it needs nothing in the pod (no sidecar, no webhook, no namespace label,
no change to the image), only ``get pods/log`` for the operator, and the kubelet already
keeps the output. The price is one long-lived HTTP stream per running StdOut Trial.

Bounded by construction: a reader thread takes the stream in ``chunk_bytes`` pieces,
keeps at most one partial line (``MAX_LINE_CHARS``), and passes lines through a token
bucket (``lines_per_second``) — a container that floods its output is read at that rate
(TCP back-pressure holds the rest in the kubelet's log file, not in the operator). Samples
wait in an inbox of at most ``MAX_BACKLOG`` entries that the submitter sends as one report
(the latest step plus the earlier ones as ``backlog``); when the service is slower than
the container, the oldest waiting samples are dropped and counted.

Restart safety: steps are a pure function of the log (the ``stepKey`` value, else the
count of report lines), so a follower that starts again (operator restart, dropped
stream) re-reads the log from its start and sends only steps after the last one on the
Trial; a re-sent step is a duplicate to the service, never a second point.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from thunderbolt.api.report_schema import MAX_BACKLOG, BacklogPoint, EpochReport, ReportReply
from thunderbolt.metric_lines import MAX_LINE_CHARS, LineParser, Sample
from thunderbolt.reports.errors import NotFound, Rejected, TrialFinished, Unavailable

log = logging.getLogger(__name__)
CONFLICT = "stepConflict"
DROPPED = "droppedWhileBusy"


@dataclass(frozen=True)
class FollowConfig:
    # ~13 us of parsing a line (bench/stdout_collect.py): a flooding pod costs at most
    # ~1.3% of a core, ten of them ~13%.
    lines_per_second: float = 1000.0
    burst_lines: float = 2000.0
    chunk_bytes: int = 64 * 1024
    reconnect_seconds: float = 1.0
    retry_seconds: float = 1.0


class LogSource(Protocol):
    """Where a follower reads from; the operator's is the pod's log through the API."""

    def open(self) -> Iterable[bytes]: ...  # chunks of the log from its start

    def close(self) -> None: ...  # unblock a read in progress (from another thread)

    def finished(self) -> bool: ...  # the container has exited (or the pod is gone)


class LineSplitter:
    """Bytes -> complete lines, holding at most one partial line of MAX_LINE_CHARS."""

    def __init__(self) -> None:
        self._partial = bytearray()
        self._overflow = False

    def feed(self, chunk: bytes) -> Iterator[str]:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            yield self._line(chunk[start:end])
            start = end + 1
        self._add(chunk[start:])

    def flush(self) -> Iterator[str]:
        if self._partial or self._overflow:
            yield self._line(b"")

    def _add(self, piece: bytes) -> None:
        if self._overflow:
            return
        self._partial += piece
        if len(self._partial) > MAX_LINE_CHARS:
            self._overflow = True
            del self._partial[MAX_LINE_CHARS + 1 :]

    def _line(self, tail: bytes) -> str:
        self._add(tail)
        data = bytes(self._partial)
        self._partial.clear()
        self._overflow = False
        return data.decode("utf-8", errors="replace").rstrip("\r")


class RateGate:
    """A blocking token bucket: ``wait()`` returns once a line may be handled."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst, self._clock, self._sleep = rate, burst, clock, sleep
        self._tokens, self._at = burst, clock()

    def wait(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            self._sleep((1 - self._tokens) / self.rate)
            self._tokens, self._at = 1.0, self._clock()
        self._tokens -= 1


class Inbox:
    """Samples waiting for the submitter (thread-safe, bounded; drops the oldest)."""

    def __init__(self, limit: int = MAX_BACKLOG) -> None:
        self._lock = threading.Lock()
        self._items: deque[Sample] = deque()
        self.limit = limit
        self.dropped = 0

    def put(self, sample: Sample) -> None:
        with self._lock:
            if len(self._items) >= self.limit:
                self._items.popleft()
                self.dropped += 1
            self._items.append(sample)

    def take(self) -> list[Sample]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def put_back(self, samples: list[Sample]) -> None:
        with self._lock:
            merged = samples + list(self._items)
            self.dropped += max(0, len(merged) - self.limit)
            self._items = deque(merged[-self.limit :])


def batch_report(samples: list[Sample]) -> EpochReport:
    """One report for the waiting samples: the latest, the others as its backlog."""
    last = samples[-1]
    backlog = [BacklogPoint(step=s.step, value=s.value) for s in samples[:-1]][-(MAX_BACKLOG):]
    return EpochReport(
        kind="epoch", step=last.step, metrics=last.metrics, value=last.value, backlog=backlog
    )


Submit = Callable[[EpochReport], Awaitable[ReportReply]]


@dataclass
class Follower:
    """Reads one container's output to its end; ``run`` returns what it saw."""

    source: LogSource
    parser: LineParser
    submit: Submit
    start_after: int = 0
    config: FollowConfig = field(default_factory=FollowConfig)
    pruned_at: Sample | None = None
    finished_early: bool = False  # the Trial finished (or vanished) before the log ended
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.inbox = Inbox()
        self.gate = RateGate(self.config.lines_per_second, self.config.burst_lines)

    def stop(self) -> None:
        self._stop.set()
        self.source.close()

    async def run(self) -> None:
        """Read (in a thread of its own: a followed stream blocks for the Trial's whole
        run, which must not hold one of the event loop's shared executor threads) and
        submit what was read, until the log has ended and everything is sent."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        read_done = threading.Event()

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has gone (shutdown): nobody is waiting
                pass

        def read() -> None:
            try:
                self._read(notify)
            except Exception:  # noqa: BLE001 — the follower must always come to an end
                log.exception("collector: reader failed")
            finally:
                read_done.set()
                notify()

        threading.Thread(target=read, name="tb-collector", daemon=True).start()
        try:
            while not self._stop.is_set():
                await wake.wait()
                wake.clear()
                done = read_done.is_set()  # before submitting: nothing is added after it
                await self._submit_waiting()
                if done:
                    break
        finally:
            self.stop()

    async def _submit_waiting(self) -> None:
        while not self._stop.is_set():
            samples = self.inbox.take()
            if not samples:
                return
            try:
                reply = await self.submit(batch_report(samples))
            except (TrialFinished, NotFound):
                self.finished_early = True
                self.stop()
                return
            except Unavailable as exc:
                log.warning("collector: report not stored yet (%s); retrying", exc.message)
                self.inbox.put_back(samples)
                await asyncio.sleep(self.config.retry_seconds)
                continue
            except Rejected as exc:  # a step that conflicts with one on record
                log.info("collector: report skipped: %s", exc.message)
                self.parser.skipped[CONFLICT] += 1
                continue
            if reply.prune:
                self.pruned_at = samples[-1]
                self.stop()
                return

    def _read(self, wake: Callable[[], None]) -> None:  # noqa: C901
        """The reader thread: the stream from its start, again after a drop, until the
        container has exited and its output is read to the end."""
        consumed = 0  # lines handled in earlier connections (the log is append-only)
        while not self._stop.is_set():
            splitter = LineSplitter()
            seen = 0
            try:
                for chunk in self.source.open():
                    for line in splitter.feed(chunk):
                        seen += 1
                        if seen > consumed:
                            consumed = seen
                            self._handle(line, wake)
                    if self._stop.is_set():
                        return
                for line in splitter.flush():
                    seen += 1
                    if seen > consumed:
                        consumed = seen
                        self._handle(line, wake)
            except Exception as exc:  # noqa: BLE001 — a dropped stream is reconnected
                if self._stop.is_set():
                    return
                log.info("collector: log stream ended: %s", exc)
            try:
                if self.source.finished():
                    return
            except Exception as exc:  # noqa: BLE001
                log.info("collector: pod state unknown: %s", exc)
            self._stop.wait(self.config.reconnect_seconds)

    def _handle(self, line: str, wake: Callable[[], None]) -> None:
        self.gate.wait()
        sample = self.parser.feed(line)
        if sample is not None and sample.step > self.start_after:
            self.inbox.put(sample)
            wake()

    def problems(self) -> dict[str, int]:
        counts = self.parser.problems()
        if self.inbox.dropped:
            counts[DROPPED] = self.inbox.dropped
        return counts


def collector_status(follower: Follower) -> dict[str, Any]:
    """``status.collector`` once the follower is done."""
    parser = follower.parser
    status: dict[str, Any] = {
        "kind": "StdOut",
        "state": "Done",
        "lines": parser.lines,
        "reports": parser.reports,
        "skipped": follower.problems(),
    }
    if parser.last is not None:
        status["lastStep"] = parser.last.step
        status["lastMetrics"] = parser.last.metrics
    return status


def summary(problems: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(problems.items()))
