"""What the checks produce: findings (a problem, where it is, how sure we are),
dimension scores (one measured number with a pass/warn/fail threshold) and
recommendations (what to change, tied to the finding that motivates it).

Kinds are stable strings (``thunderbolt.api.validation_summary.FINDING_KINDS``) so
scripts, dashboards and tests can match on them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from thunderbolt.api.validation_summary import FINDING_KINDS

Severity = Literal["info", "warn", "fail"]
Status = Literal["pass", "warn", "fail", "skipped"]
SEVERITY_RANK = {"info": 0, "warn": 1, "fail": 2}

# When several findings hold, causes come before symptoms: a diverging loss or dead
# units explain a collapse; leakage explains a too-good score. The first listed kind
# present is the report's primary finding.
KIND_PRIORITY: tuple[str, ...] = (
    "missing_values",
    "diverging_loss",
    "exploding_gradients",
    "dead_units",
    "vanishing_gradients",
    "collapse",
    "split_leakage",
    "target_leakage",
    "duplicate_rows",
    "label_noise",
    "feature_shift",
    "class_imbalance",
    "constant_feature",
    "near_duplicate_columns",
    "search_range_edge",
)
assert set(KIND_PRIORITY) == set(FINDING_KINDS)


@dataclasses.dataclass
class RowFlag:
    """One training row suspected of hurting the model."""

    row: int
    confidence: float  # 0..1
    explanation: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "confidence": round(self.confidence, 3), "why": self.explanation}


@dataclasses.dataclass
class Finding:
    kind: str
    severity: Severity
    message: str
    score: float = 0.0  # the measured size of the problem (fraction of rows, ratio...)
    rows: list[RowFlag] = dataclasses.field(default_factory=list)  # most suspect first
    columns: list[str] = dataclasses.field(default_factory=list)
    layers: list[str] = dataclasses.field(default_factory=list)
    # per-feature (or per-layer) importance for this problem, largest first
    importance: dict[str, float] = dataclasses.field(default_factory=dict)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")

    @property
    def row_indices(self) -> list[int]:
        return [r.row for r in self.rows]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "score": _round(self.score),
        }
        if self.rows:
            out["rows"] = [r.as_dict() for r in self.rows]
        for key in ("columns", "layers"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.importance:
            out["importance"] = {k: _round(v) for k, v in self.importance.items()}
        if self.details:
            out["details"] = _jsonable(self.details)
        return out


@dataclasses.dataclass
class Dimension:
    """One health dimension: its score, the thresholds it was judged by, the verdict."""

    name: str
    score: float
    status: Status
    warn: float | None = None  # the thresholds (direction in ``higher_is_worse``)
    fail: float | None = None
    higher_is_worse: bool = False
    detail: str = ""
    per_layer: dict[str, float] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "score": _round(self.score),
            "status": self.status,
            "warn": self.warn,
            "fail": self.fail,
            "direction": "higher is worse" if self.higher_is_worse else "lower is worse",
        }
        if self.detail:
            out["detail"] = self.detail
        if self.per_layer:
            out["perLayer"] = {k: _round(v) for k, v in self.per_layer.items()}
        return out


def judge(name: str, score: float, warn: float, fail: float, *, higher_is_worse: bool,
          detail: str = "") -> Dimension:  # fmt: skip
    """A dimension whose score crosses ``warn``/``fail`` (non-finite scores fail)."""
    if not math.isfinite(score):
        status: Status = "fail"
    elif higher_is_worse:
        status = "fail" if score >= fail else "warn" if score >= warn else "pass"
    else:
        status = "fail" if score <= fail else "warn" if score <= warn else "pass"
    return Dimension(name, score, status, warn, fail, higher_is_worse, detail)


@dataclasses.dataclass
class Recommendation:
    action: str  # stable: lower_learning_rate, spectral_norm, drop_leaking_rows...
    finding: str  # the finding kind it answers
    text: str
    impact: float  # 0..1, expected share of the problem it removes
    cost: float  # 0..1, relative effort (a config switch ~0.1, relabelling data ~0.8)
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)  # suggested values

    @property
    def rank_score(self) -> float:
        """Impact per unit of cost, the order recommendations are listed in."""
        return self.impact / (0.1 + self.cost)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "finding": self.finding,
            "text": self.text,
            "impact": round(self.impact, 2),
            "cost": round(self.cost, 2),
        }
        if self.parameters:
            out["parameters"] = _jsonable(self.parameters)
        return out


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first; among equals, causes before symptoms (``KIND_PRIORITY``)."""
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], KIND_PRIORITY.index(f.kind)))


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return _round(value)
    return value
