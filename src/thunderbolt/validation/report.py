"""The validation report: dimensions, findings and recommendations, as the full JSON
document (artifact, ``-o json``), the compact summary a Trial carries
(``status.validation``), readable text (the CLI) and an SVG bar chart of the scores."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from typing import Any

from thunderbolt.api.validation_summary import (
    MAX_FINDINGS,
    MAX_RECOMMENDATIONS,
    MAX_ROWS,
    FindingSummary,
    RecommendationSummary,
    ValidationSummary,
)
from thunderbolt.validation.findings import (
    SEVERITY_RANK,
    Dimension,
    Finding,
    Recommendation,
    sort_findings,
)
from thunderbolt.validation.recommend import recommend

SCHEMA = "thunderbolt.io/validation-report/v1"


@dataclasses.dataclass
class ValidationReport:
    findings: list[Finding] = dataclasses.field(default_factory=list)
    dimensions: list[Dimension] = dataclasses.field(default_factory=list)
    recommendations: list[Recommendation] = dataclasses.field(default_factory=list)
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    # the dataset profiler behind the report (label-noise refinement); never serialized
    profiler: Any = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, findings: list[Finding], dimensions: list[Dimension] | None = None,
              params: dict[str, Any] | None = None,
              context: dict[str, Any] | None = None) -> ValidationReport:  # fmt: skip
        ordered = sort_findings(findings)
        return cls(ordered, list(dimensions or []), recommend(ordered, params), dict(context or {}))

    def merge(
        self, other: ValidationReport, params: dict[str, Any] | None = None
    ) -> ValidationReport:
        """Dataset findings and model findings in one report (recommendations redone)."""
        merged = ValidationReport.build(self.findings + other.findings,
                                        self.dimensions + other.dimensions, params,
                                        {**self.context, **other.context})  # fmt: skip
        merged.profiler = self.profiler or other.profiler
        return merged

    # --- verdicts ----------------------------------------------------------------------
    @property
    def verdict(self) -> str:
        """The worst finding's severity: pass, warn or fail."""
        worst = max((SEVERITY_RANK[f.severity] for f in self.findings), default=0)
        return {0: "pass", 1: "warn", 2: "fail"}[worst]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fail"]

    @property
    def primary(self) -> str | None:
        """The most important finding's kind (causes before symptoms), or None."""
        serious = [f for f in self.findings if f.severity != "info"]
        return serious[0].kind if serious else None

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings if f.severity != "info"}

    def finding(self, kind: str) -> Finding | None:
        return next((f for f in self.findings if f.kind == kind), None)

    # --- forms -------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "primary": self.primary,
            "failedDimensions": [d.name for d in self.dimensions if d.status == "fail"],
            "findings": [f.as_dict() for f in self.findings],
            "dimensions": [d.as_dict() for d in self.dimensions],
            "recommendations": [r.as_dict() for r in self.recommendations],
            "context": self.context,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.as_dict(), indent=indent, allow_nan=False, default=str)

    def summary(self, report_uri: str | None = None) -> ValidationSummary:
        """The bounded digest for ``status.validation`` (well under 2 KB)."""
        return ValidationSummary(
            verdict=self.verdict,  # type: ignore[arg-type]
            failed=[d.name for d in self.dimensions if d.status == "fail"][:16],
            warned=[d.name for d in self.dimensions if d.status == "warn"][:16],
            findings=[
                FindingSummary(
                    kind=f.kind,
                    severity=f.severity,  # type: ignore[arg-type]
                    message=_clip(f.message, 256),
                    rows=f.row_indices[:MAX_ROWS],
                    columns=[_clip(c, 64) for c in f.columns[:MAX_ROWS]],
                    layers=[_clip(x, 64) for x in f.layers[:MAX_ROWS]],
                )
                for f in self.findings
                if f.severity != "info"
            ][:MAX_FINDINGS],
            recommendations=[
                RecommendationSummary(action=r.action, finding=r.finding, text=_clip(r.text, 256))
                for r in self.recommendations[:MAX_RECOMMENDATIONS]
            ],
            reportUri=report_uri,
        )

    def render(self, *, rows: int = 5) -> str:
        """The readable report the CLI prints."""
        lines = [f"verdict: {self.verdict.upper()}"]
        ctx = self.context
        if ctx:
            shown = ", ".join(f"{k}={v}" for k, v in ctx.items() if not isinstance(v, dict))
            lines.append(f"  ({shown})")
        if self.dimensions:
            lines.append("")
            lines.append("dimensions:")
            for d in self.dimensions:
                mark = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}.get(d.status, d.status)
                sense = ">=" if d.higher_is_worse else "<="
                limits = f"warn {sense} {_num(d.warn)}, fail {sense} {_num(d.fail)}"
                lines.append(f"  {mark} {d.name:<20} {_num(d.score):>10}   ({limits})"
                             + (f"  {d.detail}" if d.detail else ""))  # fmt: skip
        lines.append("")
        if not self.findings:
            lines.append("findings: none")
        else:
            lines.append("findings:")
            for f in self.findings:
                lines.append(f"  [{f.severity}] {f.kind}: {f.message}")
                for flag in f.rows[:rows]:
                    lines.append(
                        f"      row {flag.row} ({flag.confidence:.2f}): {flag.explanation}"
                    )
                if len(f.rows) > rows:
                    lines.append(f"      ... {len(f.rows) - rows} more rows (-o json lists them)")
                if f.importance:
                    top = list(f.importance.items())[:5]
                    lines.append("      importance: " + ", ".join(f"{k}={v:.2f}" for k, v in top))
        if self.recommendations:
            lines.append("")
            lines.append("recommendations (best impact per cost first):")
            for i, r in enumerate(self.recommendations, 1):
                lines.append(f"  {i}. {r.text}  [{r.action}; for {r.finding}; impact "
                             f"{r.impact:.2f}, cost {r.cost:.2f}]")  # fmt: skip
        return "\n".join(lines)

    def svg(self) -> str:
        """A bar per dimension: its margin to the fail threshold (green/amber/red)."""
        dims = [d for d in self.dimensions if d.fail is not None]
        height = 24 * len(dims) + 40
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" '
                 'font-family="sans-serif" font-size="12">',
                 f'<text x="10" y="18">validation: {self.verdict}</text>']  # fmt: skip
        colours = {"pass": "#3a3", "warn": "#e90", "fail": "#c33", "skipped": "#999"}
        for i, d in enumerate(dims):
            y = 30 + 24 * i
            health = _health(d)
            parts.append(f'<text x="10" y="{y + 14}">{html.escape(d.name)}</text>')
            parts.append(f'<rect x="180" y="{y}" width="{int(400 * health)}" height="18" '
                         f'fill="{colours.get(d.status, "#999")}"/>')  # fmt: skip
            parts.append(f'<text x="590" y="{y + 14}">{html.escape(_num(d.score))}</text>')
        parts.append("</svg>")
        return "\n".join(parts)


def _health(d: Dimension) -> float:
    """0 at or past the fail threshold, 1 comfortably past warn (for the bar chart)."""
    if not math.isfinite(d.score) or d.warn is None or d.fail is None:
        return 0.0
    lo, hi = (d.fail, d.warn) if not d.higher_is_worse else (d.warn, d.fail)
    if d.higher_is_worse:
        span = max(hi - lo, 1e-12)
        return float(min(1.0, max(0.0, (hi - d.score) / span)))
    span = max(hi - lo, 1e-12)
    return float(min(1.0, max(0.0, (d.score - lo) / span)))


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
