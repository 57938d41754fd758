"""What a training run cost and which code it ran: CPU-seconds, peak memory, code revision.

Measured by the process that writes the result, with ``resource.getrusage`` over itself
and its waited-for children (DataLoader workers, a launcher's ranks once they exited):
CPU is user + system time of both; peak memory is the larger of the two maxima (Linux
reports kibibytes), i.e. the largest single process, not a sum. The code revision comes
from ``THUNDERBOLT_CODE_REVISION``, which an image bakes in at build time (the trainer
image from git; see docs/byo.md for your own): an OCI label is not visible from a pod.
"""

from __future__ import annotations

import os
import re
import sys
from typing import NamedTuple

CODE_REVISION_ENV = "THUNDERBOLT_CODE_REVISION"
# A commit id, a tag or `git describe` output; anything else is not recorded.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/:@-]{0,99}$")


class Usage(NamedTuple):
    cpu_seconds: float
    peak_memory_bytes: int


def measure() -> Usage | None:
    """This process's and its finished children's usage so far (None where unsupported)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    unit = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return Usage(round(cpu, 3), max(own.ru_maxrss, kids.ru_maxrss) * unit)


def code_revision(environ: dict[str, str] | None = None) -> str | None:
    """The image's code revision, when it provides a well-formed one."""
    value = (os.environ if environ is None else environ).get(CODE_REVISION_ENV, "").strip()
    return value if _REVISION.match(value) else None
