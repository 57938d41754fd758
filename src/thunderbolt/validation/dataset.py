"""Dataset checks on the training and validation split, streamed in chunks.

Memory is bounded whatever the table's size: per-column sums and a Gram matrix,
one 64-bit hash (plus label and row number) per row for duplicates and leakage, and
fixed-size uniform samples of each split for the tests that need raw values (shift
between splits, nearest-neighbour label noise). 1M rows x 20 columns stay under
100 MB besides the chunk being read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from thunderbolt.validation import noise as noise_mod
from thunderbolt.validation import stats
from thunderbolt.validation.findings import Finding, RowFlag, Severity

GRAM_MAX_COLUMNS = 512  # near-duplicate columns: a Gram matrix up to this width
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


@dataclasses.dataclass(frozen=True)
class DatasetThresholds:
    """Where a measurement becomes a warning or a failure (see docs/validation.md for
    how each was calibrated on the synthetic cases)."""

    missing_fail: float = 0.0  # any missing cell: the built-in trainer cannot train it
    constant_warn: int = 1  # constant columns
    near_duplicate_corr: float = 0.999  # |correlation| of two columns
    duplicate_warn: float = 0.05  # share of training rows repeating another row
    conflict_warn: float = 0.0  # any duplicated features with different labels
    conflict_fail: float = 0.10
    leakage_warn: float = 0.01  # share of validation rows also in training
    leakage_fail: float = 0.20
    imbalance_warn: float = 0.10  # smallest class / largest class (training split)
    noise_warn: float = 0.025  # estimated share of rows with a confidently wrong label
    noise_fail: float = 0.35
    noise_confident: float = 0.8  # neighbours' weighted vote against the label
    shift_alpha: float = 0.01  # Benjamini-Hochberg false-discovery rate
    shift_warn: float = 0.2  # Wasserstein distance in training standard deviations
    shift_fail: float = math.inf
    # regression (calibrated on the synthetic regression cases, docs/validation.md)
    target_noise_z: float = 4.0  # a target this many typical gaps from its neighbours'
    target_leak_warn: float = 0.97  # |correlation| of one feature with the target
    target_leak_fail: float = 0.999


@dataclasses.dataclass
class DatasetOptions:
    sample_rows: int = 20_000  # per split, for shift tests and nearest neighbours
    label_noise: bool = True
    # near-duplicate columns mean little where columns are time steps or pixels
    # (neighbouring ones correlate by nature): the trainer turns this off for them
    near_duplicates: bool = True
    k_neighbours: int = noise_mod.K_NEIGHBOURS
    max_rows_listed: int = 50
    seed: int = 0
    thresholds: DatasetThresholds = dataclasses.field(default_factory=DatasetThresholds)


class _Reservoir:
    """A uniform sample of fixed size over a stream (smallest random keys win)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.keys = np.zeros(0)
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.rows = np.zeros(0, dtype=np.int64)

    def add(self, x: np.ndarray, y: np.ndarray | None, rows: np.ndarray) -> None:
        keys = self.rng.random(len(x))
        if self.x is None:
            self.x, self.keys, self.rows = x.copy(), keys, rows.copy()
            self.y = None if y is None else y.copy()
        else:
            self.x = np.concatenate([self.x, x])
            self.keys = np.concatenate([self.keys, keys])
            self.rows = np.concatenate([self.rows, rows])
            if y is not None and self.y is not None:
                self.y = np.concatenate([self.y, y])
        if len(self.keys) > self.size:
            keep = np.sort(np.argpartition(self.keys, self.size - 1)[: self.size])
            self.x, self.keys, self.rows = self.x[keep], self.keys[keep], self.rows[keep]
            if self.y is not None:
                self.y = self.y[keep]


def row_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of a float table (-0.0 = 0.0; every NaN the same)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = np.where(np.isnan(x), np.nan, x) + 0.0  # canonical NaN, -0.0 -> 0.0
    bits = np.ascontiguousarray(x).view(np.uint64)
    h = np.full(len(x), np.uint64(0x84222325CBF29CE4), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) * _MIX
            h ^= h >> np.uint64(31)
        h = (h ^ (h >> np.uint64(29))) * _MIX2
    return h


class DatasetProfiler:
    """Feed chunks with ``add``; ``findings`` reads the verdict at the end."""

    def __init__(self, feature_names: list[str], task: str = "classification",
                 options: DatasetOptions | None = None,
                 class_labels: list[str] | None = None) -> None:  # fmt: skip
        self.names = [str(n) for n in feature_names]
        self.task = task
        self.opt = options or DatasetOptions()
        self.class_labels = class_labels
        d = len(self.names)
        self.d = d
        self.rows = {"train": 0, "val": 0}
        self.missing = np.zeros(d, dtype=np.int64)
        self.missing_target = 0
        self.minimum = np.full(d, np.inf)
        self.maximum = np.full(d, -np.inf)
        self.gram_n = 0
        self.gram_sum = np.zeros(d)
        self.gram = np.zeros((d, d)) if d <= GRAM_MAX_COLUMNS else None
        self.hashes: dict[str, list[np.ndarray]] = {"train": [], "val": []}
        self.labels: dict[str, list[np.ndarray]] = {"train": [], "val": []}
        self.row_ids: dict[str, list[np.ndarray]] = {"train": [], "val": []}
        self._votes: tuple[noise_mod.NeighbourVotes, np.ndarray, np.ndarray,
                           np.ndarray] | None = None  # fmt: skip
        self.samples = {
            "train": _Reservoir(self.opt.sample_rows, self.opt.seed),
            "val": _Reservoir(self.opt.sample_rows, self.opt.seed + 1),
        }

    def add(self, x: np.ndarray, y: np.ndarray, split: str,
            rows: np.ndarray | None = None) -> None:  # fmt: skip
        """One chunk of one split (``"train"`` or ``"val"``); ``rows`` are the row numbers
        reports name (default: running positions within the split)."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.d:
            raise ValueError(f"chunk has {x.shape[1]} columns, expected {self.d}")
        y = np.asarray(y)
        if rows is None:
            rows = np.arange(self.rows[split], self.rows[split] + len(x), dtype=np.int64)
        self.rows[split] += len(x)
        nan = np.isnan(x)
        self.missing += nan.sum(axis=0)
        if y.dtype.kind == "f":
            self.missing_target += int(np.isnan(y).sum())
        with np.errstate(invalid="ignore"):
            self.minimum = np.fmin(self.minimum, np.nanmin(np.where(nan, np.inf, x), axis=0))
            self.maximum = np.fmax(self.maximum, np.nanmax(np.where(nan, -np.inf, x), axis=0))
        complete = x[~nan.any(axis=1)]
        if self.gram is not None and len(complete):
            self.gram_n += len(complete)
            self.gram_sum += complete.sum(axis=0)
            self.gram += complete.T @ complete
        self.hashes[split].append(row_hashes(x))
        self.labels[split].append(y.copy())
        self.row_ids[split].append(np.asarray(rows, dtype=np.int64))
        self.samples[split].add(x, y, np.asarray(rows, dtype=np.int64))

    # --- the verdict -------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        for check in (self._missing, self._constant, self._near_duplicates, self._duplicates,
                      self._leakage, self._imbalance, self._shift):  # fmt: skip
            found = check()
            if found is not None:
                out.append(found)
        if self.task != "classification":
            out += [f for f in (self._target_leakage(),) if f is not None]
        if self.opt.label_noise:
            found = self.label_noise() if self.task == "classification" else self.target_noise()
            if found is not None:
                out.append(found)
        return out

    def context(self) -> dict[str, Any]:
        return {
            "trainRows": self.rows["train"],
            "validationRows": self.rows["val"],
            "features": self.d,
            "sampledRows": min(self.rows["train"], self.opt.sample_rows),
        }

    def _label(self, value: Any) -> str:
        if self.class_labels is not None:
            try:
                return self.class_labels[int(value)]
            except (IndexError, ValueError, TypeError):
                pass
        return str(value)

    def _missing(self) -> Finding | None:
        total = self.rows["train"] + self.rows["val"]
        if not self.missing.any() and not self.missing_target:
            return None
        order = np.argsort(-self.missing)
        cols = [self.names[j] for j in order if self.missing[j] > 0]
        share = {self.names[j]: float(self.missing[j] / max(total, 1)) for j in order[:10]
                 if self.missing[j] > 0}  # fmt: skip
        parts = [f"{c} ({int(self.missing[self.names.index(c)])})" for c in cols[:5]]
        if self.missing_target:
            parts.append(f"the target ({self.missing_target})")
        return Finding(
            "missing_values", "fail",
            f"missing values (NaN) in {', '.join(parts)}; fill or drop them",
            score=float(self.missing.sum() + self.missing_target) / max(total * max(self.d, 1), 1),
            columns=cols, importance=share,
        )  # fmt: skip

    def _constant(self) -> Finding | None:
        constant = [n for n, lo, hi in zip(self.names, self.minimum, self.maximum, strict=True)
                    if lo == hi or not math.isfinite(hi - lo)]  # fmt: skip
        if len(constant) < self.opt.thresholds.constant_warn:
            return None
        shown = ", ".join(constant[:8]) + (" ..." if len(constant) > 8 else "")
        if len(constant) == self.d:  # nothing varies: nothing can be learned
            return Finding("constant_feature", "fail",
                           f"every column is constant ({shown}): nothing to learn from",
                           score=1.0, columns=constant)  # fmt: skip
        return Finding(
            "constant_feature", "warn",
            f"{len(constant)} constant column(s) carry no information: {shown}",
            score=len(constant) / max(self.d, 1), columns=constant,
        )  # fmt: skip

    def _near_duplicates(self) -> Finding | None:
        if not self.opt.near_duplicates or self.gram is None or self.gram_n < 3:
            return None
        n = self.gram_n
        mean = self.gram_sum / n
        cov = self.gram / n - np.outer(mean, mean)
        var = np.diag(cov).copy()
        live = var > 1e-12 * np.maximum(1.0, mean**2)
        sd = np.sqrt(np.where(live, var, 1.0))
        corr = cov / np.outer(sd, sd)
        pairs = []
        limit = self.opt.thresholds.near_duplicate_corr
        for i in range(self.d):
            if not live[i]:
                continue
            for j in range(i + 1, self.d):
                if live[j] and abs(corr[i, j]) >= limit:
                    pairs.append((self.names[i], self.names[j], float(corr[i, j])))
        if not pairs:
            return None
        shown = ", ".join(f"{a}~{b} ({c:+.4f})" for a, b, c in pairs[:5])
        return Finding(
            "near_duplicate_columns", "warn",
            f"{len(pairs)} pair(s) of columns carry the same information: {shown}",
            score=float(len(pairs)), columns=sorted({p[1] for p in pairs}),
            details={"pairs": [[a, b, c] for a, b, c in pairs[:20]]},
        )  # fmt: skip

    def _arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.hashes[split]:
            return np.zeros(0, np.uint64), np.zeros(0), np.zeros(0, np.int64)
        return (np.concatenate(self.hashes[split]), np.concatenate(self.labels[split]),
                np.concatenate(self.row_ids[split]))  # fmt: skip

    def _duplicates(self) -> Finding | None:
        h, y, rows = self._arrays("train")
        n = len(h)
        if n < 2:
            return None
        order = np.lexsort((rows, h))
        hs, ys, rs = h[order], y[order], rows[order]
        starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
        sizes = np.diff(np.r_[starts, n])
        group = np.repeat(np.arange(len(starts)), sizes)
        first_row = rs[starts][group]
        first_label = ys[starts][group]
        repeated = np.repeat(sizes > 1, sizes)
        extra = repeated & (rs != first_row)
        conflict = extra & (ys != first_label)
        dup_share = float(extra.sum() / n)
        conflict_share = float(conflict.sum() / n)
        t = self.opt.thresholds
        if conflict.sum() == 0 and dup_share < t.duplicate_warn:
            return None
        severity: Severity = "fail" if conflict_share >= t.conflict_fail else "warn"
        flags = [
            RowFlag(int(r), 0.5 if c else 0.9,
                    f"duplicate of row {int(f)} with a different label "
                    f"({self._label(lab)} vs {self._label(fl)})" if c
                    else f"exact duplicate of row {int(f)}")
            for r, f, c, lab, fl in zip(rs[extra], first_row[extra], conflict[extra],
                                        ys[extra], first_label[extra], strict=True)
        ]  # fmt: skip
        flags.sort(key=lambda f: (f.confidence != 0.5, f.row))  # conflicts first
        return Finding(
            "duplicate_rows", severity,
            f"{int(extra.sum())} training rows repeat another row"
            + (f", {int(conflict.sum())} of them with a different label" if conflict.any() else ""),
            score=conflict_share if conflict.any() else dup_share,
            rows=flags[: self.opt.max_rows_listed],
            details={"duplicates": int(extra.sum()), "conflicting": int(conflict.sum())},
        )  # fmt: skip

    def _leakage(self) -> Finding | None:
        ht, _yt, rt = self._arrays("train")
        hv, _yv, rv = self._arrays("val")
        if not len(hv) or not len(ht):
            return None
        leaked_val = np.isin(hv, ht)
        share = float(leaked_val.mean())
        t = self.opt.thresholds
        if share < t.leakage_warn:
            return None
        leaking_train = np.isin(ht, hv[leaked_val])
        severity: Severity = "fail" if share >= t.leakage_fail else "warn"
        flags = [RowFlag(int(r), 1.0, "identical to a validation row (leaks into the score)")
                 for r in np.sort(rt[leaking_train])[: self.opt.max_rows_listed]]  # fmt: skip
        return Finding(
            "split_leakage", severity,
            f"{int(leaked_val.sum())} of {len(hv)} validation rows ({share:.1%}) also appear "
            "in the training split: the validation score overstates the model",
            score=share, rows=flags,
            details={"leakedValidationRows": int(leaked_val.sum()),
                     "leakingTrainingRows": int(leaking_train.sum()),
                     "validationRows": [int(r) for r in np.sort(rv[leaked_val])[:20]]},
        )  # fmt: skip

    def _imbalance(self) -> Finding | None:
        if self.task != "classification":
            return None
        _h, y, _r = self._arrays("train")
        _hv, yv, _rv = self._arrays("val")
        if not len(y):
            return None
        values, counts = np.unique(y, return_counts=True)
        missing = sorted(set(np.unique(yv).tolist()) - set(values.tolist())) if len(yv) else []
        ratio = float(counts.min() / counts.max())
        if ratio >= self.opt.thresholds.imbalance_warn and not missing:
            return None
        small = values[counts.argmin()]
        big = values[counts.argmax()]
        text = (
            f"class {self._label(small)} has {int(counts.min())} training rows against "
            f"{int(counts.max())} of class {self._label(big)} (ratio {ratio:.3f})"
        )
        if missing:
            text += "; validation has classes training never sees: " + ", ".join(
                self._label(m) for m in missing
            )
        return Finding(
            "class_imbalance", "warn", text, score=ratio,
            details={"counts": {self._label(v): int(c) for v, c in zip(values, counts,
                                                                        strict=True)}},
        )  # fmt: skip

    def _shift(self) -> Finding | None:
        a, b = self.samples["train"], self.samples["val"]
        if a.x is None or b.x is None or len(a.x) < 20 or len(b.x) < 20:
            return None
        p_values = np.ones(self.d)
        ks = np.zeros(self.d)
        wd = np.zeros(self.d)
        sd = a.x.std(axis=0)
        clean = np.isfinite(a.x).all(axis=0) & np.isfinite(b.x).all(axis=0) & (sd >= 1e-12)
        if clean.any():  # the common case, every column at once
            ks[clean], raw = stats.shift_columns(a.x[:, clean], b.x[:, clean])
            wd[clean] = raw / sd[clean]
            for j in np.flatnonzero(clean):
                p_values[j] = stats.ks_p_value(float(ks[j]), len(a.x), len(b.x))
        for j in np.flatnonzero(~clean):
            xa, xb = a.x[:, j], b.x[:, j]
            xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
            sd = float(xa.std()) if len(xa) else 0.0
            if sd < 1e-12 or not len(xb):
                continue
            ks[j], p_values[j] = stats.ks_2samp(xa, xb)
            wd[j] = stats.wasserstein_1d(xa, xb) / sd
        t = self.opt.thresholds
        rejected = stats.benjamini_hochberg(p_values, t.shift_alpha)
        shifted = np.flatnonzero(rejected & (wd >= t.shift_warn))
        if not len(shifted):
            return None
        shifted = shifted[np.argsort(-wd[shifted])]
        cols = [self.names[j] for j in shifted]
        shown = ", ".join(
            f"{self.names[j]} (KS {ks[j]:.2f}, p={p_values[j]:.1e}, W={wd[j]:.2f} sd)"
            for j in shifted[:5]
        )
        total = float(wd[shifted].sum())
        return Finding(
            "feature_shift", "fail" if wd[shifted].max() >= t.shift_fail else "warn",
            f"{len(shifted)} feature(s) are distributed differently in training and "
            f"validation: {shown}",
            score=float(wd[shifted].max()), columns=cols,
            importance={self.names[j]: float(wd[j] / total) for j in shifted[:20]},
            details={"tested": self.d, "alpha": t.shift_alpha},
        )  # fmt: skip

    def _target_leakage(self) -> Finding | None:
        """Regression: a feature that all but equals the target (a copy, a derived
        column) makes the validation score meaningless and the model useless later."""
        s = self.samples["train"]
        if s.x is None or s.y is None or len(s.x) < 20:
            return None
        x = np.nan_to_num(s.x, nan=0.0)
        y = np.asarray(s.y, dtype=np.float64)
        xc, yc = x - x.mean(axis=0), y - y.mean()
        norms = np.sqrt((xc**2).sum(axis=0) * float((yc**2).sum()))
        corr = np.abs(np.divide(xc.T @ yc, norms, out=np.zeros(self.d), where=norms > 0))
        t = self.opt.thresholds
        leaking = np.flatnonzero(corr >= t.target_leak_warn)
        if not len(leaking):
            return None
        leaking = leaking[np.argsort(-corr[leaking])]
        cols = [self.names[j] for j in leaking]
        shown = ", ".join(f"{self.names[j]} (|r|={corr[j]:.4f})" for j in leaking[:5])
        return Finding(
            "target_leakage", "fail" if corr[leaking[0]] >= t.target_leak_fail else "warn",
            f"{len(leaking)} feature(s) all but equal the target: {shown}; a model that "
            "reads them will not have them (or not this good) in production",
            score=float(corr[leaking[0]]), columns=cols,
            importance={self.names[j]: float(corr[j]) for j in leaking[:20]},
        )  # fmt: skip

    def target_noise(self) -> Finding | None:
        """Regression: training targets far from their nearest neighbours' (label noise)."""
        s = self.samples["train"]
        if s.x is None or s.y is None or len(s.x) < 2 * self.opt.k_neighbours:
            return None
        res = noise_mod.neighbour_residuals(np.nan_to_num(s.x, nan=0.0), s.y,
                                            self.opt.k_neighbours)  # fmt: skip
        t = self.opt.thresholds
        confident = res.z >= t.target_noise_z
        rate = float(confident.mean())
        if rate < t.noise_warn:
            return None
        top = np.argsort(-res.z, kind="stable")[
            : max(self.opt.max_rows_listed, int(confident.sum()))
        ]
        flags = [RowFlag(int(s.rows[i]), float(min(1.0, res.z[i] / (2 * t.target_noise_z))),
                         f"target is {res.z[i]:.1f} typical gaps from the median of its "
                         f"{res.k} nearest neighbours' targets")
                 for i in top if res.z[i] > 0]  # fmt: skip
        return Finding(
            "label_noise", "fail" if rate >= t.noise_fail else "warn",
            f"about {rate:.1%} of training targets look wrong ({int(confident.sum())} rows "
            f">= {t.target_noise_z:g} typical gaps from their neighbours')",
            score=rate, rows=flags,
            details={"estimatedRate": rate, "candidates": int(confident.sum()),
                     "judgedRows": len(res.z)},
        )  # fmt: skip

    def label_votes(self) -> tuple[noise_mod.NeighbourVotes, np.ndarray, np.ndarray,
                                   np.ndarray] | None:  # fmt: skip
        """Neighbour votes over the training sample, with its labels, row numbers and the
        class values the votes' indices refer to."""
        if self._votes is not None:
            return self._votes
        s = self.samples["train"]
        if s.x is None or s.y is None or len(s.x) < 2 * self.opt.k_neighbours:
            return None
        labels, y = np.unique(s.y, return_inverse=True)
        if len(labels) < 2:
            return None
        x = np.nan_to_num(s.x, nan=0.0)
        votes = noise_mod.neighbour_votes(x, y, len(labels), self.opt.k_neighbours)
        self._votes = (votes, s.y, s.rows, labels)
        return self._votes

    def covers_training(self) -> bool:
        """Whether the training sample is every training row, in order."""
        return self.rows["train"] == len(self.samples["train"].rows)

    def label_noise(self, model_probability: np.ndarray | None = None,
                     loss_rank: np.ndarray | None = None) -> Finding | None:  # fmt: skip
        got = self.label_votes()
        if got is None:
            return None
        votes, y, rows, classes = got
        return label_noise_finding(votes, y, rows, self.opt, self._label, classes=classes,
                                   model_probability=model_probability,
                                   loss_rank=loss_rank)  # fmt: skip


def label_noise_finding(votes: noise_mod.NeighbourVotes, y: np.ndarray, rows: np.ndarray,
                        opt: DatasetOptions, label_name: Any = str, *,
                        classes: np.ndarray | None = None,
                        model_probability: np.ndarray | None = None,
                        loss_rank: np.ndarray | None = None) -> Finding | None:  # fmt: skip
    """The label_noise finding from neighbour votes (and model evidence when given)."""
    t = opt.thresholds
    confident = votes.judged & (votes.disagreement >= t.noise_confident)
    rate = float(confident.mean()) if len(confident) else 0.0
    if rate < t.noise_warn:
        return None
    score = noise_mod.noise_scores(votes, model_probability=model_probability,
                                   loss_rank=loss_rank)  # fmt: skip
    said = classes if classes is not None else np.arange(int(votes.majority.max()) + 1)
    top = np.argsort(-score, kind="stable")[: max(opt.max_rows_listed, int(confident.sum()))]
    flags = []
    for i in top:
        if score[i] <= 0:
            break
        why = (
            f"label {label_name(y[i])} disagrees with {int(votes.against[i])} of "
            f"{votes.k} nearest neighbours (they say {label_name(said[votes.majority[i]])})"
        )
        if model_probability is not None and model_probability[i] < 0.5:
            why += f" and the model gives it p={model_probability[i]:.2f}"
        if loss_rank is not None and loss_rank[i] >= 0.99:
            why += "; training loss in the top 1% throughout"
        flags.append(RowFlag(int(rows[i]), float(score[i]), why))
    return Finding(
        "label_noise", "fail" if rate >= t.noise_fail else "warn",
        f"about {rate:.1%} of training labels look wrong ({int(confident.sum())} rows "
        f"contradicted by >= {t.noise_confident:.0%} of their neighbours)",
        score=rate, rows=flags,
        details={"estimatedRate": rate, "candidates": int(confident.sum()),
                 "judgedRows": int(votes.judged.sum())},
    )  # fmt: skip


def check_arrays(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                 y_val: np.ndarray, *, feature_names: list[str] | None = None,
                 task: str = "classification", options: DatasetOptions | None = None,
                 class_labels: list[str] | None = None,
                 train_rows: np.ndarray | None = None, val_rows: np.ndarray | None = None,
                 chunk_rows: int = 65_536) -> DatasetProfiler:  # fmt: skip
    """Profile in-memory splits (fed in chunks, as a stream would be)."""
    x_train = np.asarray(x_train).reshape(len(x_train), -1)
    x_val = np.asarray(x_val).reshape(len(x_val), -1)
    names = feature_names if feature_names and len(feature_names) == x_train.shape[1] else [
        f"f{j}" for j in range(x_train.shape[1])]  # fmt: skip
    profiler = DatasetProfiler(names, task, options, class_labels)
    for split, x, y, rows in (("train", x_train, y_train, train_rows),
                              ("val", x_val, y_val, val_rows)):  # fmt: skip
        for start in range(0, len(x), chunk_rows):
            part = slice(start, start + chunk_rows)
            profiler.add(x[part], np.asarray(y)[part], split,
                         None if rows is None else np.asarray(rows)[part])  # fmt: skip
    return profiler


def feed(profiler: DatasetProfiler, chunks: Iterable[tuple[np.ndarray, np.ndarray, str,
                                                          np.ndarray | None]]) -> None:  # fmt: skip
    for x, y, split, rows in chunks:
        profiler.add(x, y, split, rows)
