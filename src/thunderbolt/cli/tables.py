"""Plain-text tables and the small value formatters every CLI view shares (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from thunderbolt.api.meta import parse_time


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by three spaces, like kubectl's output."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    """Compact kubectl-style duration: 45s, 3m12s, 2h5m, 3d4h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def age(timestamp: str | None, now: dt.datetime) -> str:
    start = parse_time(timestamp)
    return "-" if start is None else duration((now - start).total_seconds())


def number(value: Any, digits: int = 4) -> str:
    """An objective or metric: 4 significant digits, '-' when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:.{digits}g}"
    return str(value)


def param_value(value: Any) -> str:
    """Parameter values as users wrote them: booleans lower-case like YAML."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_text(parameters: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={param_value(v)}" for k, v in sorted((parameters or {}).items()))
