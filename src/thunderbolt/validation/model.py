"""Health of a trained model, measured on the validation set at the end of training.

Every dimension is one number with a pass/warn/fail threshold (``ModelThresholds``,
calibrated on the synthetic cases: see docs/validation.md). Dimensions that fail are
turned into findings: collapse, dead_units, vanishing_gradients,
exploding_gradients, diverging_loss, each naming the layers involved.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from thunderbolt.validation import stats
from thunderbolt.validation.findings import Dimension, Finding, judge

COLLAPSE_DIMENSIONS = (
    "prediction_entropy",
    "class_coverage",
    "output_variance",
    "effective_rank",
    "mutual_information",
    "baseline_agreement",
    "prediction_ks",
)


@dataclasses.dataclass(frozen=True)
class ModelThresholds:
    """(warn, fail) per dimension; see docs/validation.md for the calibration."""

    prediction_entropy: tuple[float, float] = (0.5, 0.05)  # H(pred) / H(labels)
    class_coverage: tuple[float, float] = (0.5, 0.0)  # (classes predicted - 1)/(C - 1)
    output_variance: tuple[float, float] = (0.1, 0.01)  # output spread / label spread
    effective_rank: tuple[float, float] = (0.3, 0.1)  # eff. rank / min(classes, width)
    mutual_information: tuple[float, float] = (0.1, 0.02)  # I(pred; y) / H(y)
    baseline_agreement: tuple[float, float] = (0.7, 0.95)  # excess agreement w/ majority
    prediction_ks: tuple[float, float] = (0.3, 0.6)  # KS(pred labels, true labels)
    dead_units: tuple[float, float] = (0.6, 0.95)  # worst layer's never-active share
    gradient_vanishing: tuple[float, float] = (1e-4, 1e-7)  # smallest/largest layer grad
    gradient_exploding: tuple[float, float] = (20.0, 1e3)  # late / early grad norm
    update_ratio: tuple[float, float] = (0.1, 1.0)  # |delta w| / |w| per step (worst)
    loss_trend: tuple[float, float] = (1.0, 5.0)  # final / untrained training loss
    # regression, calibrated on the synthetic regression cases (reg_*): healthy models
    # against flat predictions and overfitted target noise (docs/validation.md)
    regression_output_variance: tuple[float, float] = (0.3, 0.05)  # sd(pred) / sd(y)
    regression_mutual_information: tuple[float, float] = (0.1, 0.03)  # binned I(pred; y)/H(y)
    # MSE / MSE of predicting the mean: worse than the mean is a warning (overfitted
    # noise reaches 1.8), not a collapse by itself
    regression_mse_ratio: tuple[float, float] = (1.0, 2.0)
    regression_prediction_ks: tuple[float, float] = (0.3, 0.45)  # KS(pred, y)


@dataclasses.dataclass
class GradientStats:
    """Sampled per-layer gradient norms and update/weight ratios (``probe`` fills it)."""

    norms: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    update_ratios: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    nonfinite_steps: int = 0
    samples: int = 0


@dataclasses.dataclass
class ModelEvidence:
    """What the model dimensions are computed from; everything but outputs is optional."""

    outputs: np.ndarray  # validation logits [n, C] (classification) or predictions [n]
    y_true: np.ndarray
    task: str = "classification"
    num_classes: int | None = None
    majority_class: int | None = None  # the training split's; default: validation's
    penultimate: np.ndarray | None = None  # [n, width] input of the last linear layer
    dead_units: dict[str, float] | None = None  # layer -> share never active
    gradients: GradientStats | None = None
    losses: list[float] | None = None  # training loss per epoch
    initial_loss: float | None = None  # the untrained model's loss


def _classes(e: ModelEvidence) -> int:
    if e.num_classes:
        return e.num_classes
    return int(max(e.outputs.shape[1] if e.outputs.ndim == 2 else 1, int(e.y_true.max()) + 1))


def _bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def dimensions(e: ModelEvidence, t: ModelThresholds | None = None) -> list[Dimension]:
    t = t or ModelThresholds()
    out: list[Dimension] = []
    outputs = np.asarray(e.outputs, dtype=np.float64)
    y = np.asarray(e.y_true)
    if e.task == "classification":
        c = _classes(e)
        finite = bool(np.isfinite(outputs).all())
        pred = outputs.argmax(axis=1) if finite else np.zeros(len(y), dtype=np.int64)
        y = y.astype(np.int64)
        pred_counts = np.bincount(pred, minlength=c)
        true_counts = np.bincount(y, minlength=c)
        h_true = stats.entropy(true_counts)
        ratio = stats.entropy(pred_counts) / h_true if h_true > 0 else 1.0
        out.append(judge("prediction_entropy", ratio if finite else math.nan,
                         *t.prediction_entropy, higher_is_worse=False,
                         detail=f"predicted classes {int((pred_counts > 0).sum())} of "
                                f"{int((true_counts > 0).sum())}"))  # fmt: skip
        present = int((true_counts > 0).sum())
        covered = int(((pred_counts > 0) & (true_counts > 0)).sum())
        coverage = (covered - 1) / (present - 1) if present > 1 else 1.0
        out.append(judge("class_coverage", coverage if finite else math.nan,
                         *t.class_coverage, higher_is_worse=False))  # fmt: skip
        if finite:
            z = outputs - outputs.max(axis=1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(axis=1, keepdims=True)
            onehot = np.eye(c)[y]
            label_spread = float(onehot.std(axis=0).mean()) or 1.0
            variance = float(prob.std(axis=0).mean()) / label_spread
        else:
            variance = math.nan
        out.append(judge("output_variance", variance, *t.output_variance,
                         higher_is_worse=False))  # fmt: skip
        mi = stats.mutual_information(pred, y, c) / h_true if h_true > 0 else 1.0
        out.append(judge("mutual_information", mi if finite else math.nan,
                         *t.mutual_information, higher_is_worse=False))  # fmt: skip
        major = e.majority_class if e.majority_class is not None else int(true_counts.argmax())
        share = float((y == major).mean())
        agree = float((pred == major).mean())
        excess = (agree - share) / (1.0 - share) if share < 1.0 else 0.0
        out.append(judge("baseline_agreement", max(0.0, excess) if finite else math.nan,
                         *t.baseline_agreement, higher_is_worse=True,
                         detail=f"{agree:.1%} of predictions are the majority class "
                                f"({share:.1%} of labels)"))  # fmt: skip
        cdf_p = np.cumsum(pred_counts) / max(len(pred), 1)
        cdf_t = np.cumsum(true_counts) / max(len(y), 1)
        ks = float(np.max(np.abs(cdf_p - cdf_t)))
        out.append(judge("prediction_ks", ks if finite else math.nan, *t.prediction_ks,
                         higher_is_worse=True))  # fmt: skip
        width_cap = c
    else:
        pred = outputs.reshape(len(outputs), -1)[:, 0]
        y = y.astype(np.float64)
        finite = bool(np.isfinite(pred).all())
        spread = float(np.std(y)) or 1.0
        out.append(judge("output_variance", float(np.std(pred)) / spread if finite else math.nan,
                         *t.regression_output_variance, higher_is_worse=False))  # fmt: skip
        edges = np.quantile(y, np.linspace(0, 1, 11))
        edges[0], edges[-1] = -np.inf, np.inf
        yb, pb = _bins(y, edges), _bins(np.nan_to_num(pred), edges)
        h = stats.entropy(np.bincount(yb, minlength=10))
        mi = stats.mutual_information(pb, yb, 10) / h if h > 0 else 1.0
        out.append(judge("mutual_information", mi if finite else math.nan,
                         *t.regression_mutual_information, higher_is_worse=False))  # fmt: skip
        mse = float(np.mean((pred - y) ** 2)) if finite else math.inf
        base = float(np.mean((y - y.mean()) ** 2)) or 1.0
        ratio = mse / base
        # as for classes: 0 is "no better than the trivial baseline" scaled to the same sense
        out.append(judge("baseline_agreement", min(ratio, 10.0) if finite else math.nan,
                         *t.regression_mse_ratio, higher_is_worse=True,
                         detail=f"MSE {mse:.4g} vs {base:.4g} for predicting the mean"))  # fmt: skip
        ks, _p = stats.ks_2samp(pred, y) if finite else (math.nan, 0.0)
        out.append(judge("prediction_ks", ks, *t.regression_prediction_ks, higher_is_worse=True))
        width_cap = 2
    if e.penultimate is not None and len(e.penultimate) >= 2:
        rep = np.asarray(e.penultimate, dtype=np.float64).reshape(len(e.penultimate), -1)
        if np.isfinite(rep).all():
            rank = stats.effective_rank(rep[:4096])
            score = rank / max(1, min(width_cap, rep.shape[1]))
        else:
            rank, score = math.nan, math.nan
        out.append(judge("effective_rank", score, *t.effective_rank, higher_is_worse=False,
                         detail=f"effective rank {rank:.2f} of width {rep.shape[1]}"))  # fmt: skip
    if e.dead_units:
        worst = max(e.dead_units.values())
        dim = judge("dead_units", worst, *t.dead_units, higher_is_worse=True)
        dim.per_layer = dict(e.dead_units)
        out.append(dim)
    if e.gradients is not None and e.gradients.samples:
        out.extend(_gradient_dimensions(e.gradients, t))
    if e.losses:
        first = e.initial_loss if e.initial_loss else e.losses[0]
        final = e.losses[-1]
        trend = final / max(first, 1e-12) if math.isfinite(final) else math.inf
        out.append(judge("loss_trend", trend, *t.loss_trend, higher_is_worse=True,
                         detail=f"training loss {first:.4g} -> {final:.4g}"))  # fmt: skip
    return out


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.inf


def _gradient_dimensions(g: GradientStats, t: ModelThresholds) -> list[Dimension]:
    out = []
    medians = {layer: _median(v) for layer, v in g.norms.items() if v}
    finite = {k: v for k, v in medians.items() if math.isfinite(v)}
    if finite:
        top = max(finite.values())
        rel = {k: (v / top if top > 0 else 0.0) for k, v in finite.items()}
        dim = judge("gradient_vanishing", min(rel.values()), *t.gradient_vanishing,
                    higher_is_worse=False,
                    detail="smallest layer's median gradient norm / largest's")  # fmt: skip
        dim.per_layer = rel
        out.append(dim)
    growth: dict[str, float] = {}
    for layer, values in g.norms.items():
        if len(values) < 2:
            continue
        quarter = max(1, len(values) // 4)
        early = _median(values[:quarter])
        late = values[-quarter:]
        late_max = math.inf if not all(math.isfinite(v) for v in late) else max(late)
        growth[layer] = late_max / early if early > 0 and math.isfinite(early) else (
            math.inf if late_max > 0 else 1.0)  # fmt: skip
    if growth or g.nonfinite_steps:
        worst = max(growth.values()) if growth else 1.0
        if g.nonfinite_steps:
            worst = math.inf
        dim = judge("gradient_exploding", worst, *t.gradient_exploding, higher_is_worse=True,
                    detail=f"late / early gradient norm; {g.nonfinite_steps} sampled steps "
                           "with non-finite gradients")  # fmt: skip
        dim.per_layer = growth
        out.append(dim)
    ratios = {layer: _median(v) for layer, v in g.update_ratios.items() if v}
    if ratios:
        dim = judge("update_ratio", max(ratios.values()), *t.update_ratio, higher_is_worse=True,
                    detail="median |update| / |weight| per step, worst layer")  # fmt: skip
        dim.per_layer = ratios
        out.append(dim)
    return out


def findings(dims: list[Dimension]) -> list[Finding]:
    """Failed (or, for collapse, several warned) dimensions as findings."""
    by = {d.name: d for d in dims}
    out: list[Finding] = []
    loss = by.get("loss_trend")
    exploding = by.get("gradient_exploding")
    ratio = by.get("update_ratio")
    diverged = loss is not None and loss.status == "fail"
    if diverged and loss is not None:
        out.append(Finding("diverging_loss", "fail", f"the training loss diverged ({loss.detail})",
                           score=loss.score))  # fmt: skip
    bad_grad = [d for d in (exploding, ratio) if d is not None and d.status == "fail"]
    if bad_grad:
        layers = _worst_layers(bad_grad[0], high=True)
        out.append(Finding(
            "exploding_gradients", "fail",
            f"gradients or updates blow up ({'; '.join(d.name + ': ' + _fmt(d.score) for d in bad_grad)}),"
            f" worst in {', '.join(layers[:3])}",
            score=bad_grad[0].score, layers=layers,
            importance=_importance(bad_grad[0], high=True),
        ))  # fmt: skip
    dead = by.get("dead_units")
    if dead is not None and dead.status != "pass":
        layers = [k for k, v in sorted(dead.per_layer.items(), key=lambda kv: -kv[1])
                  if v >= dead.warn]  # type: ignore[operator]  # fmt: skip
        out.append(Finding(
            "dead_units", dead.status,  # type: ignore[arg-type]
            f"{dead.score:.0%} of the units of {layers[0]} are dead (active on < 1% of the "
            "validation rows)",
            score=dead.score, layers=layers, importance=dict(dead.per_layer),
        ))  # fmt: skip
    vanishing = by.get("gradient_vanishing")
    if vanishing is not None and vanishing.status == "fail" and not diverged:
        layers = _worst_layers(vanishing, high=False)
        out.append(Finding(
            "vanishing_gradients", "fail",
            f"gradients vanish in {', '.join(layers[:3])} "
            f"({_fmt(vanishing.score)} of the largest layer's)",
            score=vanishing.score, layers=layers, importance=_importance(vanishing, high=False),
        ))  # fmt: skip
    collapse = [by[n] for n in COLLAPSE_DIMENSIONS if n in by]
    failed = [d.name for d in collapse if d.status == "fail"]
    warned = [d.name for d in collapse if d.status == "warn"]
    if failed or len(warned) >= 3:
        detail = "; ".join(f"{d.name}={_fmt(d.score)}" for d in collapse
                           if d.status != "pass")  # fmt: skip
        out.append(Finding(
            "collapse", "fail" if failed else "warn",
            f"the model's predictions collapsed ({detail})",
            score=float(len(failed) + 0.5 * len(warned)),
            details={"failed": failed, "warned": warned},
        ))  # fmt: skip
    return out


def _worst_layers(d: Dimension, *, high: bool) -> list[str]:
    items = sorted(d.per_layer.items(), key=lambda kv: -kv[1] if high else kv[1])
    return [k for k, _ in items]


def _importance(d: Dimension, *, high: bool) -> dict[str, float]:
    if not d.per_layer:
        return {}
    if high:
        vals = {k: (v if math.isfinite(v) else 1e30) for k, v in d.per_layer.items()}
    else:
        vals = {k: 1.0 / max(v, 1e-30) for k, v in d.per_layer.items()}
    total = sum(vals.values()) or 1.0
    return {k: v / total for k, v in sorted(vals.items(), key=lambda kv: -kv[1])}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)
