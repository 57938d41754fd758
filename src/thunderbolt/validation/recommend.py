"""Recommendations, each tied to the finding that motivates it and ranked by expected
impact per unit of cost (a config switch is cheap, relabelling data is not).

Impacts and costs are rough priors, written down once here so the ranking is
predictable; a failing finding weighs its recommendations fully, a warning at 60%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from thunderbolt.validation.findings import Finding, Recommendation

_WARN_WEIGHT = 0.6


def _lr(params: Mapping[str, Any], factor: float) -> dict[str, Any]:
    try:
        return {"learning_rate": float(f"{float(params['learning_rate']) * factor:.3g}")}
    except (KeyError, TypeError, ValueError):
        return {}


def _lr_text(params: Mapping[str, Any], factor: float) -> str:
    new = _lr(params, factor)
    if not new:
        return f"{1 / factor:.2g}x smaller"
    return f"{params['learning_rate']} -> {new['learning_rate']:g}"


def _for(f: Finding, params: Mapping[str, Any]) -> list[Recommendation]:
    rows = f.row_indices[:10]
    listed = (
        f" (rows {', '.join(map(str, rows))}{' ...' if len(f.rows) > 10 else ''})" if rows else ""
    )
    k = f.kind
    spectral_on = str(params.get("spectral_norm", "")).lower() in ("true", "1")
    out: list[Recommendation] = []
    if k in ("diverging_loss", "exploding_gradients"):
        out.append(Recommendation("lower_learning_rate", k,
                                  f"lower the learning rate ({_lr_text(params, 0.1)})", 0.8, 0.1,
                                  _lr(params, 0.1)))  # fmt: skip
        if not spectral_on:
            out.append(Recommendation("spectral_norm", k,
                                      "turn spectral_norm on to bound each layer's gain",
                                      0.5, 0.1, {"spectral_norm": True}))  # fmt: skip
    elif k == "dead_units":
        out.append(Recommendation("change_activation", k,
                                  f"use a smooth activation (gelu/silu) in {', '.join(f.layers[:2])}",
                                  0.7, 0.1, {"activation": "gelu"}))  # fmt: skip
        out.append(Recommendation("lower_learning_rate", k,
                                  f"lower the learning rate ({_lr_text(params, 0.3)}): large steps kill ReLU units",
                                  0.5, 0.1, _lr(params, 0.3)))  # fmt: skip
    elif k == "vanishing_gradients":
        out.append(Recommendation("reduce_depth", k,
                                  f"fewer layers or a smooth activation; gradients die in "
                                  f"{', '.join(f.layers[:2])}", 0.6, 0.2,
                                  {"activation": "gelu"}))  # fmt: skip
    elif k == "collapse":
        wd = params.get("weight_decay")
        if wd not in (None, 0, 0.0, "0"):
            out.append(Recommendation("lower_weight_decay", k,
                                      "lower weight_decay: it pulls every weight to zero",
                                      0.7, 0.1, {"weight_decay": 0.0}))  # fmt: skip
        out.append(Recommendation("lower_learning_rate", k,
                                  f"lower the learning rate ({_lr_text(params, 0.3)}) and check the class balance",
                                  0.5, 0.1, _lr(params, 0.3)))  # fmt: skip
    elif k == "label_noise":
        out.append(Recommendation("fix_rows", k, f"relabel or drop the listed rows{listed}",
                                  0.8, 0.6, {"rows": rows}))  # fmt: skip
        out.append(Recommendation("dropout", k,
                                  "add dropout (0.1-0.3) so the model memorizes fewer wrong "
                                  "labels", 0.3, 0.1, {"dropout": 0.2}))  # fmt: skip
        if not spectral_on:
            out.append(Recommendation("spectral_norm", k,
                                      "turn spectral_norm on: smoother models fit noisy labels "
                                      "less", 0.2, 0.1, {"spectral_norm": True}))  # fmt: skip
    elif k == "duplicate_rows":
        conflicting = f.details.get("conflicting", 0)
        if conflicting:
            out.append(Recommendation("fix_rows", k,
                                      f"resolve the {conflicting} duplicates with different "
                                      f"labels{listed}", 0.7, 0.4, {"rows": rows}))  # fmt: skip
        out.append(Recommendation("drop_duplicate_rows", k, "drop exact duplicate rows",
                                  0.3, 0.1))  # fmt: skip
    elif k == "split_leakage":
        out.append(Recommendation("drop_leaking_rows", k,
                                  f"drop the training rows identical to validation rows{listed}",
                                  0.9, 0.2, {"rows": rows}))  # fmt: skip
    elif k == "target_leakage":
        out.append(Recommendation("drop_leaking_features", k,
                                  f"drop {', '.join(f.columns[:3])}: they carry the target itself",
                                  0.9, 0.1, {"columns": f.columns[:5]}))  # fmt: skip
    elif k == "class_imbalance":
        out.append(Recommendation("rebalance_classes", k,
                                  "rebalance: oversample the rare class or weight the loss; "
                                  "optimize val_f1 rather than val_accuracy", 0.6, 0.3))  # fmt: skip
    elif k == "feature_shift":
        out.append(Recommendation("fix_shifted_features", k,
                                  f"shuffle before splitting, or fix/drop {', '.join(f.columns[:3])} "
                                  "(distributed differently in validation)", 0.6, 0.4,
                                  {"columns": f.columns[:5]}))  # fmt: skip
    elif k == "missing_values":
        out.append(Recommendation("fill_missing", k,
                                  f"fill or drop missing values in {', '.join(f.columns[:3])}",
                                  0.9, 0.3))  # fmt: skip
    elif k == "constant_feature":
        out.append(Recommendation("drop_constant_columns", k,
                                  f"drop {', '.join(f.columns[:3])}", 0.1, 0.1))  # fmt: skip
    elif k == "near_duplicate_columns":
        out.append(Recommendation("drop_duplicate_columns", k,
                                  f"drop one of each pair ({', '.join(f.columns[:3])})",
                                  0.1, 0.1))  # fmt: skip
    elif k == "search_range_edge":
        out.append(Recommendation(str(f.details.get("action", "widen_search_range")), k,
                                  f.message, 0.5, 0.1, dict(f.details.get("suggest", {}))))  # fmt: skip
    weight = 1.0 if f.severity == "fail" else _WARN_WEIGHT
    for r in out:
        r.impact *= weight
    return out


def recommend(findings: Sequence[Finding],
              params: Mapping[str, Any] | None = None) -> list[Recommendation]:  # fmt: skip
    """Recommendations for ``findings`` (warn and fail), best impact/cost first; one per
    action (the strongest motivation wins)."""
    best: dict[str, Recommendation] = {}
    for f in findings:
        if f.severity == "info":
            continue
        for r in _for(f, params or {}):
            if r.action not in best or r.rank_score > best[r.action].rank_score:
                best[r.action] = r
    return sorted(best.values(), key=lambda r: -r.rank_score)


def search_range_findings(parameters: Sequence[Mapping[str, Any]],
                          trials: Sequence[tuple[Mapping[str, Any], float]], *,
                          maximize: bool, top: int = 5,
                          edge: float = 0.1) -> list[Finding]:  # fmt: skip
    """Experiment-level: a numeric parameter whose best trials crowd one end of its range
    should be widened there; one whose best trials all sit in a narrow band, narrowed.

    ``parameters``: the Experiment's search space (``name``, ``type``, ``low``,
    ``high``, ``log``); ``trials``: (parameters, objective) of finished trials.
    """
    finished = [(p, v) for p, v in trials if v is not None and math.isfinite(v)]
    ranked = sorted(finished, key=lambda pv: -pv[1] if maximize else pv[1])[:top]
    return ranked_range_findings(parameters, ranked, len(finished), top=top, edge=edge)


def ranked_range_findings(parameters: Sequence[Mapping[str, Any]],
                          ranked: Sequence[tuple[Mapping[str, Any], float]], finished: int, *,
                          top: int = 5, edge: float = 0.1) -> list[Finding]:  # fmt: skip
    """``search_range_findings`` from the ``top`` best (best first) of ``finished``
    scored trials: what an operator keeping the best few as trials finish has at hand."""
    if finished < max(top, 5):
        return []
    ranked = ranked[:top]
    out: list[Finding] = []
    for spec in parameters:
        if spec.get("type") not in ("float", "int") or spec.get("low") is None:
            continue
        name = str(spec["name"])
        low, high = float(spec["low"]), float(spec["high"])
        log = bool(spec.get("log")) and low > 0
        scale = (lambda v: math.log(v)) if log else (lambda v: v)  # noqa: E731
        span = scale(high) - scale(low)
        if span <= 0:
            continue
        pos = []
        for p, _v in ranked:
            try:
                pos.append((scale(float(p[name])) - scale(low)) / span)
            except (KeyError, TypeError, ValueError):
                continue
        if len(pos) < top:
            continue
        at_low = sum(x <= edge for x in pos) / len(pos)
        at_high = sum(x >= 1 - edge for x in pos) / len(pos)
        factor = 10.0 if log else None
        if at_low >= 0.6 or at_high >= 0.6:
            side = "low" if at_low >= at_high else "high"
            if side == "low":
                new = low / factor if factor else low - span / 2
            else:
                new = high * factor if factor else high + span / 2
            out.append(Finding(
                "search_range_edge", "warn",
                f"{round(max(at_low, at_high) * len(pos))} of the top {len(pos)} trials sit at "
                f"the {side} edge of {name} [{low:g}, {high:g}]: widen it to {new:g}",
                score=max(at_low, at_high), columns=[name],
                details={"action": "widen_search_range", "parameter": name, "side": side,
                         "suggest": {name: {side: float(f'{new:.3g}')}}},
            ))  # fmt: skip
        elif max(pos) - min(pos) <= 0.2 and finished >= 3 * top:
            lo = scale(low) + min(pos) * span
            hi = scale(low) + max(pos) * span
            lo_v, hi_v = (math.exp(lo), math.exp(hi)) if log else (lo, hi)
            out.append(Finding(
                "search_range_edge", "warn",
                f"the top {len(pos)} trials all sit in [{lo_v:.3g}, {hi_v:.3g}] of {name} "
                f"[{low:g}, {high:g}]: narrow the range to search it finer",
                score=max(pos) - min(pos), columns=[name],
                details={"action": "narrow_search_range", "parameter": name,
                         "suggest": {name: {"low": float(f"{lo_v:.3g}"),
                                            "high": float(f"{hi_v:.3g}")}}},
            ))  # fmt: skip
    return out


def experiment_recommendations(parameters: Sequence[Mapping[str, Any]],
                               trials: Sequence[tuple[Mapping[str, Any], float]], *,
                               maximize: bool) -> list[Recommendation]:  # fmt: skip
    """What the search itself says about its ranges (see ``search_range_findings``)."""
    return recommend(search_range_findings(parameters, trials, maximize=maximize))
