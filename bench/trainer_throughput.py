"""Training throughput of the Thunderbolt trainer vs a bare PyTorch loop.

Same model (built by the trainer's builder), same data, same batches, same epochs. The
bare loop does nothing but forward/backward/step; the trainer adds per-epoch validation,
health checks, a checkpoint, progress lines and MLflow metric logging (a local sqlite
store unless --tracking-uri names a server). The ratio is the trainer's overhead; the
target is <= 10%.

    .venv/bin/python bench/trainer_throughput.py [--rows 200000] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.datasets import make_classification

from thunderbolt.api.trainer_config import DatasetConfig
from thunderbolt.trainer import data as datasets
from thunderbolt.trainer import model, threads
from thunderbolt.trainer.checkpoint import Checkpoints
from thunderbolt.trainer.loop import LoopSettings, Trainer, make_optimizer
from thunderbolt.trainer.params import HyperParams
from thunderbolt.trainer.tracking import MlflowTracker, NullTracker, Tracker


def synthetic(rows: int, features: int, seed: int) -> datasets.Dataset:
    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=features // 2, n_classes=4,
        random_state=seed,
    )  # fmt: skip
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)]).assign(target=y)
    return datasets.prepare(frame, DatasetConfig(uri="bench://synthetic"), "classification", seed)


def bare_loop(data: datasets.Dataset, hp: HyperParams, seed: int, validate: bool) -> float:
    """Seconds for ``hp.epochs`` epochs of plain minibatch training (and, with
    ``validate``, the validation accuracy every epoch, as any training script computes)."""
    torch.manual_seed(seed)
    net = model.build(data.num_features, data.num_outputs, hp, data.mean, data.std)
    optimizer = make_optimizer(net, hp)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train, dtype=torch.long)
    accuracies: list[float] = []  # what a training script would print or log
    x_val = torch.as_tensor(data.x_val)
    y_val = torch.as_tensor(data.y_val, dtype=torch.long)
    started = time.perf_counter()
    for epoch in range(1, hp.epochs + 1):
        net.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(0, len(order), hp.batch_size):
            idx = order[i : i + hp.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            optimizer.step()
        if validate:
            net.eval()
            with torch.inference_mode():
                accuracy = (net(x_val).argmax(dim=1) == y_val).float().mean().item()
            accuracies.append(accuracy)
    return time.perf_counter() - started


def trainer_loop(data: datasets.Dataset, hp: HyperParams, seed: int, tracking_uri: str | None,
                 workdir: Path) -> float:  # fmt: skip
    """Seconds for ``Trainer.fit`` (validation, health, checkpoints, tracking included)."""
    torch.manual_seed(seed)
    net = model.build(data.num_features, data.num_outputs, hp, data.mean, data.std)
    tracker: Tracker = NullTracker()
    if tracking_uri is not None:
        tracker = MlflowTracker(tracking_uri)
        tracker.start("bench", "throughput", hp.as_dict(), {"thunderbolt.trial": "bench"})
        if tracker.error:
            raise SystemExit(f"tracking unavailable: {tracker.error}")
    ckpt_dir = Path(tempfile.mkdtemp(dir=workdir))
    trainer = Trainer(
        net,
        data,
        hp,
        LoopSettings(seed=seed, objective_metric="val_accuracy", maximize=True),
        tracker=tracker,
        checkpoints=Checkpoints(ckpt_dir.as_uri(), "bench"),
        say=lambda _line: None,
    )
    started = time.perf_counter()
    trainer.fit()
    elapsed = time.perf_counter() - started
    tracker.finish("FINISHED")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spectral-norm", action="store_true")
    parser.add_argument("--tracking-uri", default=None, help="MLflow server (default: sqlite)")
    parser.add_argument("--no-tracking", action="store_true")
    args = parser.parse_args()

    cpu_threads = threads.configure()
    data = synthetic(args.rows, args.features, seed=0)
    hp = HyperParams(hidden_dim=args.hidden_dim, num_layers=2, batch_size=args.batch_size,
                     epochs=args.epochs, spectral_norm=args.spectral_norm,
                     learning_rate=1e-3)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        uri = None if args.no_tracking else args.tracking_uri or f"sqlite:///{workdir}/mlflow.db"
        samples = len(data.x_train) * args.epochs
        plain: list[float] = []
        bare: list[float] = []
        ours: list[float] = []
        for _ in range(args.repeats):  # interleaved so load changes hit all alike
            plain.append(bare_loop(data, hp, seed=0, validate=False))
            bare.append(bare_loop(data, hp, seed=0, validate=True))
            ours.append(trainer_loop(data, hp, 0, uri, workdir))
    p, b, t = statistics.median(plain), statistics.median(bare), statistics.median(ours)
    print(f"data: {len(data.x_train)} train rows x {args.features} features, {args.epochs} "
          f"epochs, batch {args.batch_size}, hidden {args.hidden_dim}x2, "
          f"spectral_norm={args.spectral_norm}, torch threads {cpu_threads}, "
          f"tracking={'off' if uri is None else uri.split(':')[0]}")  # fmt: skip
    n = args.repeats
    rows = [
        ("bare loop, no validation", p),
        ("bare loop + val accuracy", b),
        ("thunderbolt trainer", t),
    ]
    for name, seconds in rows:
        print(f"{name:26}: {samples / seconds:10,.0f} samples/s  (median of {n}: {seconds:.2f}s)")
    print(
        f"ratio trainer / bare+val  : {b / t:.3f}  overhead {100 * (t / b - 1):+.1f}% (target <= 10%)"
    )
    print(f"ratio trainer / bare      : {p / t:.3f}  overhead {100 * (t / p - 1):+.1f}%")
    print("runs (s): bare " + " ".join(f"{v:.2f}" for v in plain)
          + " | bare+val " + " ".join(f"{v:.2f}" for v in bare)
          + " | trainer " + " ".join(f"{v:.2f}" for v in ours))  # fmt: skip


if __name__ == "__main__":
    main()
