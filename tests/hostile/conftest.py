"""Hostile-input suite: what Thunderbolt must refuse, and how, in one place.

Files:

- ``test_hostile_inference.py``: ~100 hostile requests (malformed JSON, NaN/Infinity/1e39,
  wrong shapes and datatypes, huge shapes, deep nesting, oversize and compressed bodies,
  content types, malformed HTTP, slow-loris headers and bodies, concurrent 13.7 MiB
  requests, gRPC garbage) against a real ``python -m thunderbolt.serving`` process.
- ``test_hostile_reports.py``: forged reports against the real report endpoint.
- ``manifests.py`` + ``test_hostile_manifests.py``: bad Experiments and ModelDeployments
  against the pydantic models and the CRDs' CEL rules; ``test_hostile_manifests_cluster.py``
  (marked ``cluster``) the same against the real API server's structural schema.

Run: ``pytest tests/hostile -m "not cluster"`` (~40 s, part of ``make test-unit``); the
cluster file runs in ``make test-integration``. The table of figures (cases and status
codes per category, the server's peak memory) is printed at the end of every run.

Fixtures: ``served`` is the server process on a real ONNX model, told its memory limit is
512Mi (the ModelDeployment default) and given short slow-client deadlines; a thread
samples its resident memory, and its peak (``VmHWM``) must stay under the limit.
``report_endpoint`` is the report endpoint's aiohttp server in its own thread over the
in-memory store the report unit tests use. ``figures`` collects the counts that
``pytest_terminal_summary`` prints (no ``-s`` needed).
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.serving.server_process import ServerProcess
from tests.unit.serving import onnx_models
from thunderbolt.serving.memory import MiB, rss_bytes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "unit" / "reports"))

from reports_world import RunningEndpoint, World, experiment, trial  # noqa: E402

from thunderbolt.reports.service import ServiceConfig  # noqa: E402

MEMORY_LIMIT = 512 * MiB
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 1.0, 2.0


@dataclasses.dataclass
class Figures:
    cases: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    codes: dict[str, collections.Counter[str]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    max_rss: int = 0
    peak_rss: int = 0  # VmHWM of the server process

    def record(self, category: str, code: int | str) -> None:
        self.cases[category] += 1
        self.codes[category][str(code)] += 1


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def _peak_rss(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Served(ServerProcess):
    """The server process, with its resident memory sampled every 10 ms."""

    def __init__(self, *args: str, log_dir: pathlib.Path) -> None:
        super().__init__(*args, log_dir=log_dir)
        self.max_rss = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self._sampling and self.proc.poll() is None:
            self.max_rss = max(self.max_rss, rss_bytes(self.proc.pid))
            time.sleep(0.01)

    def peak_rss(self) -> int:
        return _peak_rss(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> int:
        self._sampling = False
        return super().stop(timeout)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, figures: Figures) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hostile-serving")
    uri, checksum = onnx_models.write_model(onnx_models.linear_model(), tmp)
    grpc_port = str(_free_port())
    server = Served(
        "--model-uri", uri, "--checksum", checksum, "--model-name", "iris",
        "--memory-limit", str(MEMORY_LIMIT), "--grpc-port", grpc_port,
        "--header-timeout", str(HEADER_TIMEOUT_S), "--body-timeout", str(BODY_TIMEOUT_S),
        log_dir=tmp,
    )  # fmt: skip
    server.grpc_url = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    server.wait_ready()
    yield server
    peak = server.peak_rss()
    figures.max_rss, figures.peak_rss = server.max_rss, peak
    assert server.proc.poll() is None, "the server died during the hostile suite"
    assert server.stop() == 0
    logs = server.logs()
    assert "Traceback" not in logs, logs[-3000:]
    assert peak < MEMORY_LIMIT, f"peak RSS {peak / MiB:.0f} MiB over the 512 MiB limit"


def _free_port() -> int:
    from tests.integration.serving.server_process import free_port

    return free_port()


ReportEndpoint = RunningEndpoint


@pytest.fixture(scope="module")
def report_endpoint() -> Iterator[ReportEndpoint]:
    world = World(config=ServiceConfig(rate=5, burst=20, lookup_rate=50, lookup_burst=100))
    world.add_experiment(experiment())
    world.add_trial(trial("exp-0", number=0))
    world.add_trial(trial("exp-1", number=1))
    world.add_trial(trial("exp-done", number=2, phase="Succeeded", objective=0.9))
    endpoint = ReportEndpoint(world)
    yield endpoint
    endpoint.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES.cases:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hostile input figures")
    write(f"{'category':<28} {'cases':>6}  status codes")
    for category in sorted(FIGURES.cases):
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(FIGURES.codes[category].items()))
        write(f"{category:<28} {FIGURES.cases[category]:>6}  {codes}")
    total: collections.Counter[str] = collections.Counter()
    for counter in FIGURES.codes.values():
        total.update(counter)
    write(f"{'total':<28} {sum(FIGURES.cases.values()):>6}  " + ", ".join(
        f"{c}: {n}" for c, n in sorted(total.items())
    ))  # fmt: skip
    if FIGURES.peak_rss:
        write(
            f"serving memory: limit {MEMORY_LIMIT / MiB:.0f} MiB, peak RSS (VmHWM) "
            f"{FIGURES.peak_rss / MiB:.0f} MiB, highest sampled {FIGURES.max_rss / MiB:.0f} MiB"
        )
