"""The server's memory budget: what one request may cost, and all of them together.

Decoding a JSON tensor turns every number into a Python float in a list (~40 bytes for
a few bytes of text), so a 14 MiB body can need ~200 MiB while it is decoded; two at
once took a 512Mi pod over its limit. So every inference request holds a ``Lease`` on
one ``MemoryBudget`` for as long as it is processed, sized from what it will need
(its body, then an estimate of its decoding and its tensors, ``json_decode_cost`` and
``tensor_cost``). A request that would not fit now is answered 503 with ``Retry-After``;
one that could never fit, 413. The budget is derived from the container's memory limit
(cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``, or an explicit setting) minus
what the process holds once the model is loaded (``plan_memory``). Pure except
``cgroup_memory_limit``'s and ``rss_bytes``'s file reads.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from collections.abc import Iterable, Sequence

import numpy as np

from thunderbolt.cpu_threads import CGROUP_ROOT, cgroup_v2_dirs, read_text_or_none

MiB = 1024 * 1024
DEFAULT_MAX_BODY = 16 * MiB
BODY_LIMIT_SHARE = 32  # default body limit: the memory limit / 32 (16 MiB from 512Mi), capped
USABLE_SHARE = 0.85  # of the limit; the rest is slack for the allocator and the runtime
MIN_BUDGET = 8 * MiB
RETRY_AFTER_S = 1
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge page-rounded number
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?i?[bB]?$")
_UNITS = {None: 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_UNITS.update({"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40})


class BudgetExceeded(Exception):
    """A request the budget refuses: ``status`` 503 (try again later) or 413 (never fits)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def memory_quantity(value: str) -> int:
    """``512Mi``, ``1Gi``, ``500M`` or plain bytes, as bytes."""
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"not a memory size: {value!r} (e.g. 512Mi, 1Gi, 536870912)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def cgroup_memory_limit(
    root: pathlib.Path = CGROUP_ROOT, proc_cgroup: str | None = None
) -> int | None:
    """The container's memory limit in bytes (cgroup v2, else v1), None when unlimited."""
    for directory in cgroup_v2_dirs(root, proc_cgroup):
        text = read_text_or_none(directory / "memory.max")
        if text is not None:
            return None if text == "max" or not text.isdigit() else int(text)
    text = read_text_or_none(root / "memory" / "memory.limit_in_bytes")
    if text is not None and text.isdigit() and int(text) < _UNLIMITED:
        return int(text)
    return None


def container_memory_limit(root: pathlib.Path = CGROUP_ROOT) -> int | None:
    return cgroup_memory_limit(root, read_text_or_none(pathlib.Path("/proc/self/cgroup")))


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (``VmRSS``), 0 where /proc does not tell."""
    for line in (read_text_or_none(pathlib.Path(f"/proc/{pid}/status")) or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """``limit``: the container's (None: unlimited); ``max_body``: largest request body
    (also the largest gRPC message); ``budget``: bytes all in-flight requests may hold."""

    limit: int | None
    max_body: int
    budget: int | None


def default_max_body(limit: int | None) -> int:
    """The memory limit / 32, at most 16 MiB: a 512Mi pod keeps 16 MiB, 256Mi 8 MiB."""
    if limit is None:
        return DEFAULT_MAX_BODY
    return max(64 * 1024, min(DEFAULT_MAX_BODY, limit // BODY_LIMIT_SHARE))


def plan_memory(
    limit: int | None, baseline_rss: int, workers: int = 1, max_body: int | None = None
) -> MemoryPlan:
    """85% of the limit, shared by the worker processes, less what this one holds with
    its model loaded (``baseline_rss``); no limit, no budget. At least ``MIN_BUDGET``."""
    body = max_body if max_body is not None else default_max_body(limit)
    if limit is None:
        return MemoryPlan(None, body, None)
    share = int(limit * USABLE_SHARE) // max(1, workers)
    return MemoryPlan(limit, body, max(MIN_BUDGET, share - baseline_rss))


class MemoryBudget:
    """Bytes reserved by requests in flight, against a fixed total (None: unbounded)."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.used = 0
        self.refused = 0  # 503s and 413s handed out, for the log and tests

    def lease(self) -> Lease:
        return Lease(self)


class Lease:
    """One request's reservation; ``resize`` up or down as the request's needs become
    known, ``release`` (or leave the ``with`` block) when its answer is written."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.held = 0

    def resize(self, nbytes: int, what: str = "this request") -> None:
        budget, nbytes = self.budget, max(0, int(nbytes))
        if budget.total is not None and nbytes > self.held:
            if nbytes > budget.total:
                budget.refused += 1
                raise BudgetExceeded(
                    413,
                    f"{what} needs about {_mib(nbytes)} of memory to process, more than this "
                    f"server's budget of {_mib(budget.total)}: send it in smaller batches",
                )
            if budget.used - self.held + nbytes > budget.total:
                budget.refused += 1
                raise BudgetExceeded(
                    503,
                    f"{what} needs about {_mib(nbytes)} of memory and the server's budget of "
                    f"{_mib(budget.total)} is in use by other requests: retry later",
                )
        budget.used += nbytes - self.held
        self.held = nbytes

    def grow(self, nbytes: int, what: str = "this request") -> None:
        self.resize(self.held + nbytes, what)

    def release(self) -> None:
        self.budget.used -= self.held
        self.held = 0

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _mib(nbytes: int) -> str:
    return f"{nbytes / MiB:.1f} MiB"


# Upper bounds of what json.loads builds, per structural byte of its input (CPython 3.11+,
# 64-bit), measured with tracemalloc in tests/unit/serving/test_serving_memory.py: a
# float 24 bytes + its list slot 8 (+ over-allocation); an empty list 56, a dict with a
# few keys up to ~360; a string ~50 + its text. Each array element may then become a
# float64 array and a converted copy (16 bytes).
PER_ELEMENT = 40 + 16
PER_LIST = 72
PER_DICT = 400
PER_STRING = 64
PER_DOCUMENT = 64 * 1024  # the decoder's own small allocations, and the numpy arrays' headers


def json_decode_cost(data: bytes | bytearray, end: int | None = None) -> int:
    """Bytes that decoding ``data[:end]`` (JSON text) into Python objects and numpy arrays
    may take, from a count of its separators (fast: each ``count`` is a memchr over the
    buffer, no copy). Separators inside strings count too, so it errs on the safe side."""
    end = len(data) if end is None else end
    elements = data.count(b",", 0, end) + 1
    lists, dicts = data.count(b"[", 0, end), data.count(b"{", 0, end)
    quotes = data.count(b'"', 0, end)
    return (
        PER_DOCUMENT
        + 2 * end  # the text decoded to str, and string contents
        + PER_ELEMENT * elements
        + PER_LIST * lists
        + PER_DICT * dicts
        + PER_STRING * (quotes // 2)
    )


def output_bytes(shapes: Iterable[Sequence[int]], rows: int, itemsize: int = 8) -> int:
    """Bytes of outputs whose first dynamic dimension is ``rows`` (other unknown dims 1)."""
    total = 0
    for shape in shapes:
        dims = [rows if i == 0 and d == -1 else max(1, d) for i, d in enumerate(shape)]
        total += math.prod(dims) * itemsize
    return total


def tensor_cost(arrays: Iterable[np.ndarray], outputs: int) -> int:
    """Running a decoded request: the batcher's concatenated copy of its inputs, the
    model's outputs and their encoded form (each about ``outputs`` bytes)."""
    return sum(a.nbytes for a in arrays) + 3 * outputs
