"""Synthetic cases with known ground truth, to prove the checks (tests, the benchmark
and the threshold calibration in bench/validation_quality.py).

A case is a base dataset split into training and validation, with one injected
problem (or none: the healthy control) and the finding kind it must raise. Base
datasets are cleaned first (constant columns and duplicate rows removed) so a
healthy control is really healthy. Model problems come with a training recipe that
``train_case`` runs as any user's PyTorch loop would, instrumented by the probe.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

BASES = ("iris", "wine", "breast_cancer", "digits", "blobs", "trajectories")
# case kind -> the finding kind it must raise (None: nothing may be raised)
EXPECTED: dict[str, str | None] = {
    "healthy": None,
    "label_noise_5": "label_noise",
    "label_noise_10": "label_noise",
    "label_noise_20": "label_noise",
    "conflicting_duplicates": "duplicate_rows",
    "split_leakage": "split_leakage",
    "constant_feature": "constant_feature",
    "shifted_feature": "feature_shift",
    "class_imbalance": "class_imbalance",
    "diverging_lr": "diverging_loss",
    "dead_relu": "dead_units",
    "collapsed_model": "collapse",
}
KINDS = tuple(EXPECTED)
MODEL_KINDS = ("healthy", "diverging_lr", "dead_relu", "collapsed_model")

# Regression: its own bases and failure kinds, so its thresholds are calibrated on
# regression models, not borrowed from classification.
REGRESSION_BASES = ("diabetes", "friedman")
REGRESSION_EXPECTED: dict[str, str | None] = {
    "reg_healthy": None,
    "reg_collapsed": "collapse",  # a pipeline bug feeds one target value: flat predictions
    "reg_target_noise": "label_noise",  # 10% of training targets off by several sd
    "reg_target_leakage": "target_leakage",  # a feature is the target plus a little noise
    "reg_shifted_feature": "feature_shift",
    "reg_exploding": "diverging_loss",  # SGD with a learning rate far too large
}
REGRESSION_KINDS = tuple(REGRESSION_EXPECTED)
REGRESSION_MODEL_KINDS = ("reg_healthy", "reg_collapsed", "reg_target_noise", "reg_exploding")


@dataclasses.dataclass
class Case:
    kind: str
    base: str
    seed: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    feature_names: list[str]
    num_classes: int
    noisy_rows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    shifted: str | None = None
    recipe: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: str = "classification"

    @property
    def name(self) -> str:
        return f"{self.base}/{self.kind}/{self.seed}"

    @property
    def expected(self) -> str | None:
        return EXPECTED[self.kind] if self.kind in EXPECTED else REGRESSION_EXPECTED[self.kind]

    @property
    def needs_training(self) -> bool:
        return self.kind in MODEL_KINDS or self.kind in REGRESSION_MODEL_KINDS


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    centres = rng.normal(0, 4.0, (4, 10))
    y = np.arange(800) % 4
    return centres[y] + rng.normal(0, 1.0, (800, 10)), y


def _sequences(seed: int, samples: int = 600, steps: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """2-D tracks of four motion kinds (straight, accelerating, turning, zigzag), as
    ``builtin://trajectories`` makes them, smaller: [samples, steps, 2]."""
    rng = np.random.default_rng(2000 + seed)
    kind = np.arange(samples) % 4
    t = np.arange(steps, dtype=np.float64)
    heading = rng.uniform(0, 2 * np.pi, samples)[:, None]
    speed = rng.uniform(0.5, 1.5, samples)[:, None]
    along = np.where(kind[:, None] == 1, speed * t**2 / steps, speed * t)
    turn = np.where(kind[:, None] == 2, 0.25 * t, 0.0)
    side = np.where(kind[:, None] == 3, 0.8 * np.sign(np.sin(np.pi * t / 2)), 0.0)
    angle = heading + turn
    x = along * np.cos(angle) - side * np.sin(heading)
    y = along * np.sin(angle) + side * np.cos(heading)
    track = np.stack([x, y], axis=2) + rng.normal(0, 0.1, (samples, steps, 2))
    return track, kind.astype(np.int64)


def base_dataset(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features (rows, or [n, steps, channels] for trajectories) and integer labels,
    cleaned: no constant column, no duplicate row."""
    if name == "blobs":
        x, y = _blobs(seed)
    elif name == "trajectories":
        return _sequences(seed)
    else:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
    x = x[:, x.std(axis=0) > 1e-12]
    _, first = np.unique(x, axis=0, return_index=True)
    keep = np.sort(first)
    return x[keep], y[keep]


def make_case(kind: str, base: str, seed: int = 0) -> Case:
    if kind not in EXPECTED:
        raise ValueError(f"unknown case kind {kind!r}; choose from {', '.join(KINDS)}")
    rng = np.random.default_rng(seed * 7919 + KINDS.index(kind) * 31 + BASES.index(base))
    x, y = base_dataset(base, seed)
    order = rng.permutation(len(x))
    n_val = int(round(0.2 * len(x)))
    xt, yt = x[order[n_val:]].copy(), y[order[n_val:]].copy()
    xv, yv = x[order[:n_val]].copy(), y[order[:n_val]].copy()
    classes = int(y.max()) + 1
    width = int(np.prod(x.shape[1:]))
    names = [f"f{j}" for j in range(width)]
    case = Case(kind, base, seed, xt, yt, xv, yv, names, classes)
    if kind.startswith("label_noise"):
        rate = int(kind.rsplit("_", 1)[1]) / 100
        rows = np.sort(rng.choice(len(yt), int(round(rate * len(yt))), replace=False))
        yt[rows] = (yt[rows] + rng.integers(1, classes, len(rows))) % classes
        case.noisy_rows = rows
    elif kind == "conflicting_duplicates":
        rows = rng.choice(len(yt), max(3, int(0.05 * len(yt))), replace=False)
        flipped = (yt[rows] + rng.integers(1, classes, len(rows))) % classes
        case.noisy_rows = np.arange(len(yt), len(yt) + len(rows))
        case.x_train = np.concatenate([xt, xt[rows]])
        case.y_train = np.concatenate([yt, flipped])
    elif kind == "split_leakage":
        rows = rng.choice(len(yv), max(3, int(rng.uniform(0.1, 0.3) * len(yv))), replace=False)
        case.noisy_rows = np.arange(len(yt), len(yt) + len(rows))
        case.x_train = np.concatenate([xt, xv[rows]])
        case.y_train = np.concatenate([yt, yv[rows]])
    elif kind == "constant_feature":
        # a new column holding one value (overwriting a real one could create duplicates)
        j = int(rng.integers(0, width + 1))
        value = float(rng.normal())
        flat_t = np.insert(xt.reshape(len(xt), -1), j, value, axis=1)
        flat_v = np.insert(xv.reshape(len(xv), -1), j, value, axis=1)
        if x.ndim == 3:  # sequences: one more channel, constant at every step
            flat_t = np.concatenate([xt, np.full((*xt.shape[:2], 1), value)], axis=2)
            flat_v = np.concatenate([xv, np.full((*xv.shape[:2], 1), value)], axis=2)
        case.x_train, case.x_val = flat_t, flat_v
        case.feature_names = [f"f{i}" for i in range(int(np.prod(flat_t.shape[1:])))]
        case.shifted = case.feature_names[j] if x.ndim == 2 else None
    elif kind == "shifted_feature":
        flat_v = xv.reshape(len(xv), -1)
        j = int(rng.integers(0, width))
        flat_v[:, j] += 1.5 * float(xt.reshape(len(xt), -1)[:, j].std())
        case.x_val = flat_v.reshape(xv.shape)
        case.shifted = names[j]
    elif kind == "class_imbalance":
        # the whole dataset is imbalanced (both splits), as real skewed data is
        minority = int(rng.integers(0, classes))
        for split in ("train", "val"):
            xs, ys = (case.x_train, case.y_train) if split == "train" else (case.x_val, case.y_val)
            counts = np.bincount(ys, minlength=classes)
            keep_n = max(2, int(0.04 * counts.max()))
            members = np.flatnonzero(ys == minority)
            drop = rng.choice(members, max(0, len(members) - keep_n), replace=False)
            mask = np.ones(len(ys), dtype=bool)
            mask[drop] = False
            if split == "train":
                case.x_train, case.y_train = xs[mask], ys[mask]
            else:
                case.x_val, case.y_val = xs[mask], ys[mask]
    case.recipe = _recipe(kind, base)
    return case


def _recipe(kind: str, base: str) -> dict[str, Any]:
    recipe: dict[str, Any] = {
        "model": "sequence" if base == "trajectories" else "mlp",
        "optimizer": "adam",
        "lr": 3e-3,
        "weight_decay": 0.0,
        "epochs": 15 if base == "trajectories" else 30,
        "batch_size": 32,
        "hidden": 32,
        "dead_init": False,
        "one_label": False,  # a pipeline bug: every training row gets the same label
    }
    if kind == "diverging_lr":
        recipe.update(optimizer="sgd", lr=50.0)
    elif kind == "dead_relu":
        recipe.update(dead_init=True)
    elif kind == "collapsed_model":
        # a data-pipeline bug feeds one label: the model learns to predict one class
        recipe.update(one_label=True)
    return recipe


def cases(kinds: tuple[str, ...] = KINDS, bases: tuple[str, ...] = BASES,
          seeds: tuple[int, ...] = (0,)) -> list[Case]:  # fmt: skip
    return [make_case(k, b, s) for s in seeds for b in bases for k in kinds]


def regression_cases(kinds: tuple[str, ...] = REGRESSION_KINDS,
                     bases: tuple[str, ...] = REGRESSION_BASES,
                     seeds: tuple[int, ...] = (0,)) -> list[Case]:  # fmt: skip
    return [make_regression_case(k, b, s) for s in seeds for b in bases for k in kinds]


def regression_base(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``diabetes`` (sklearn, 442 rows x 10) or ``friedman`` (Friedman #1: 600 rows x 10,
    y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise; x5..x9 unused)."""
    if name == "friedman":
        rng = np.random.default_rng(3000 + seed)
        x = rng.uniform(0, 1, (600, 10))
        y = (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
             + 10 * x[:, 3] + 5 * x[:, 4] + rng.normal(0, 1.0, 600))  # fmt: skip
        return x, y
    if name != "diabetes":
        raise ValueError(f"unknown regression base {name!r}; choose from {REGRESSION_BASES}")
    from sklearn import datasets

    bunch = datasets.load_diabetes()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)


def make_regression_case(kind: str, base: str, seed: int = 0) -> Case:
    """A regression case: float targets, ``task="regression"``, one injected problem."""
    if kind not in REGRESSION_EXPECTED:
        raise ValueError(f"unknown regression kind {kind!r}; choose from {REGRESSION_KINDS}")
    rng = np.random.default_rng(seed * 7919 + REGRESSION_KINDS.index(kind) * 31
                                + REGRESSION_BASES.index(base) + 17)  # fmt: skip
    x, y = regression_base(base, seed)
    order = rng.permutation(len(x))
    n_val = int(round(0.2 * len(x)))
    xt, yt = x[order[n_val:]].copy(), y[order[n_val:]].copy()
    xv, yv = x[order[:n_val]].copy(), y[order[:n_val]].copy()
    names = [f"f{j}" for j in range(x.shape[1])]
    case = Case(kind, base, seed, xt, yt, xv, yv, names, 1, task="regression")
    sd = float(yt.std())
    if kind == "reg_target_noise":
        rows = np.sort(rng.choice(len(yt), int(round(0.1 * len(yt))), replace=False))
        yt[rows] += rng.choice([-1.0, 1.0], len(rows)) * rng.uniform(3.0, 5.0, len(rows)) * sd
        case.noisy_rows = rows
    elif kind == "reg_target_leakage":
        j = int(rng.integers(0, x.shape[1] + 1))
        leak_t = yt + rng.normal(0, 0.02 * sd, len(yt))
        leak_v = yv + rng.normal(0, 0.02 * sd, len(yv))
        case.x_train = np.insert(xt, j, leak_t, axis=1)
        case.x_val = np.insert(xv, j, leak_v, axis=1)
        case.feature_names = [f"f{i}" for i in range(x.shape[1] + 1)]
        case.shifted = case.feature_names[j]
    elif kind == "reg_shifted_feature":
        j = int(rng.integers(0, x.shape[1]))
        case.x_val[:, j] += 1.5 * float(xt[:, j].std())
        case.shifted = names[j]
    case.recipe = _recipe("healthy", base)
    case.recipe.update(epochs=60)
    if kind == "reg_collapsed":
        case.recipe.update(one_label=True)
    elif kind == "reg_exploding":
        case.recipe.update(optimizer="sgd", lr=5.0)
    return case


# --- training a case: a plain PyTorch loop with the probe -----------------------------
def build_net(case: Case) -> Any:
    import torch
    from torch import nn

    r = case.recipe
    x = case.x_train
    mean = torch.as_tensor(x.reshape(len(x), -1).mean(axis=0), dtype=torch.float32)
    std = torch.as_tensor(x.reshape(len(x), -1).std(axis=0) + 1e-6, dtype=torch.float32)
    if r["model"] == "sequence":
        steps, channels = x.shape[1:]
        mean, std = mean.reshape(steps, channels), std.reshape(steps, channels)

        class Seq(nn.Module):
            mean: torch.Tensor
            std: torch.Tensor

            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)
                self.project = nn.Sequential(nn.Linear(channels, r["hidden"]), nn.ReLU())
                self.gru = nn.GRU(r["hidden"], r["hidden"], batch_first=True)
                self.head = nn.Linear(r["hidden"], case.num_classes)

            def forward(self, inp: torch.Tensor) -> torch.Tensor:
                states, _ = self.gru(self.project((inp - self.mean) / self.std))
                out: torch.Tensor = self.head(states[:, -1])
                return out

        net: nn.Module = Seq()
        first: Any = net.project[0]  # type: ignore[index]
    else:

        class MLP(nn.Module):
            mean: torch.Tensor
            std: torch.Tensor

            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)
                self.body = nn.Sequential(
                    nn.Linear(len(mean), r["hidden"]), nn.ReLU(),
                    nn.Linear(r["hidden"], r["hidden"]), nn.ReLU(),
                    nn.Linear(r["hidden"], case.num_classes),  # regression: one output
                )  # fmt: skip

            def forward(self, inp: torch.Tensor) -> torch.Tensor:
                out: torch.Tensor = self.body((inp.flatten(1) - self.mean) / self.std)
                return out

        net = MLP()
        first = net.body[0]  # type: ignore[index]
    if r["dead_init"]:
        with torch.no_grad():
            first.bias.fill_(-20.0)  # every unit starts (and stays) below zero
            first.weight.mul_(0.1)
    return net


def train_case(case: Case, *, probe: bool = True) -> tuple[Any, dict[str, Any]]:
    """Train the case's recipe; the validation report (model and dataset merged, label
    noise refined with the model) and timings {train_s, validate_s}."""
    import torch
    from torch import nn

    from thunderbolt.validation import check_dataset, check_model, refine_label_noise
    from thunderbolt.validation.probe import TrainingProbe

    torch.manual_seed(case.seed)
    r = case.recipe
    net = build_net(case)
    if r["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(net.parameters(), lr=r["lr"], momentum=0.9)
    elif r["optimizer"] == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    else:
        opt = torch.optim.Adam(net.parameters(), lr=r["lr"])
    xt = torch.as_tensor(case.x_train, dtype=torch.float32)
    regression = case.task == "regression"
    if regression:  # standardized targets, as the built-in trainer trains them
        y_mean, y_sd = float(case.y_train.mean()), float(case.y_train.std()) or 1.0
        yt = torch.as_tensor((case.y_train - y_mean) / y_sd, dtype=torch.float32)[:, None]
        if r["one_label"]:
            yt = torch.zeros_like(yt)
        loss_fn: nn.Module = nn.MSELoss(reduction="none")
    else:
        yt = torch.as_tensor(case.y_train, dtype=torch.long)
        if r["one_label"]:
            yt = torch.full_like(yt, int(np.bincount(case.y_train).argmax()))
        loss_fn = nn.CrossEntropyLoss(reduction="none")
    began = time.perf_counter()
    p = TrainingProbe(net, opt, every=10, train_rows=len(xt)) if probe else None
    with torch.no_grad():
        initial = float(loss_fn(net(xt), yt).mean())
    if p is not None:
        p.initial_loss = initial
    gen = torch.Generator().manual_seed(case.seed)
    for _epoch in range(r["epochs"]):
        order = torch.randperm(len(xt), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(xt), r["batch_size"]):
            idx = order[start : start + r["batch_size"]]
            opt.zero_grad(set_to_none=True)
            rows = loss_fn(net(xt[idx]), yt[idx])
            loss = rows.mean()
            loss.backward()
            opt.step()
            if p is not None:
                p.record_rows(idx, rows.reshape(len(idx), -1).mean(1))
            total += float(loss.detach())
            batches += 1
        mean_loss = total / max(batches, 1)
        if p is not None:
            p.end_epoch(mean_loss)
        if not np.isfinite(mean_loss):
            break  # as the trainer stops a diverged run
    train_s = time.perf_counter() - began
    if p is None:
        return None, {"train_s": train_s, "validate_s": 0.0}
    began = time.perf_counter()
    if regression:
        report = check_dataset(case.x_train, case.y_train, case.x_val, case.y_val,
                               feature_names=case.feature_names, task="regression")  # fmt: skip
        y_val = (case.y_val - y_mean) / y_sd
        evidence = p.evidence(case.x_val.astype(np.float32), y_val, task="regression")
        report = report.merge(check_model(evidence))
        p.close()
        return report, {"train_s": train_s, "validate_s": time.perf_counter() - began}
    report = check_dataset(case.x_train, case.y_train, case.x_val, case.y_val,
                           feature_names=case.feature_names)  # fmt: skip
    evidence = p.evidence(case.x_val.astype(np.float32), case.y_val,
                          num_classes=case.num_classes,
                          majority_class=int(np.bincount(case.y_train).argmax()))  # fmt: skip
    train_out, _rep, _dead = p.evaluate(case.x_train.astype(np.float32))
    prob = _softmax(train_out)[np.arange(len(case.y_train)), case.y_train]
    report = refine_label_noise(report, prob, p.loss_rank())
    report = report.merge(check_model(evidence))
    p.close()
    return report, {"train_s": train_s, "validate_s": time.perf_counter() - began}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(z.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
