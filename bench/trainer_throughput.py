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
from typing import NamedTuple

import pandas as pd
import torch
from sklearn.datasets import make_classification

from thunderbolt.api.trainer_config import DatasetConfig, TrainerConfig
from thunderbolt.sdk.tracking import MlflowTracker, NullTracker, Tracker
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer import data as datasets
from thunderbolt.trainer import model, threads
from thunderbolt.trainer.loop import LoopSettings, Trainer, make_optimizer
from thunderbolt.trainer.params import HyperParams


class Timing(NamedTuple):
    wall: float  # seconds on the clock: what a user waits
    cpu: float  # CPU seconds of this process: robust to other load on a shared machine


def _clock() -> Timing:
    return Timing(time.perf_counter(), time.process_time())


def _since(start: Timing) -> Timing:
    now = _clock()
    return Timing(now.wall - start.wall, now.cpu - start.cpu)


def synthetic(rows: int, features: int, seed: int) -> datasets.Dataset:
    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=features // 2, n_classes=4,
        random_state=seed,
    )  # fmt: skip
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)]).assign(target=y)
    return datasets.prepare(frame, DatasetConfig(uri="bench://synthetic"), "classification", seed)


def bare_loop(data: datasets.Dataset, hp: HyperParams, seed: int, validate: bool) -> Timing:
    """Seconds for ``hp.epochs`` epochs of plain minibatch training (and, with
    ``validate``, the validation accuracy every epoch, as any training script computes)."""
    torch.manual_seed(seed)
    net = model.build("mlp", data.sample_shape, data.num_outputs, hp, data.mean, data.std)
    optimizer = make_optimizer(net, hp)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train, dtype=torch.long)
    accuracies: list[float] = []  # what a training script would print or log
    x_val = torch.as_tensor(data.x_val)
    y_val = torch.as_tensor(data.y_val, dtype=torch.long)
    started = _clock()
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
    return _since(started)


def trainer_loop(data: datasets.Dataset, hp: HyperParams, seed: int, tracking_uri: str | None,
                 workdir: Path) -> Timing:  # fmt: skip
    """Seconds for ``Trainer.fit`` (validation, health, checkpoints, tracking included)."""
    torch.manual_seed(seed)
    net = model.build("mlp", data.sample_shape, data.num_outputs, hp, data.mean, data.std)
    tracker: Tracker = NullTracker()
    if tracking_uri is not None:
        tracker = MlflowTracker(tracking_uri)
    config = TrainerConfig.model_validate(
        {"objective": {"metric": "val_accuracy", "direction": "maximize"}, "seed": seed}
    )
    trial = Trial(config, Path(tempfile.mkdtemp(dir=workdir)), tracker=tracker,
                  emit=lambda _line: None)  # fmt: skip
    trial.start(params=hp.as_dict())
    if tracker.error:
        raise SystemExit(f"tracking unavailable: {tracker.error}")
    trainer = Trainer(
        net,
        data,
        hp,
        LoopSettings(seed=seed, objective_metric="val_accuracy", maximize=True),
        trial=trial,
        say=lambda _line: None,
    )
    started = _clock()
    trainer.fit()
    elapsed = _since(started)
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
        runs: dict[str, list[Timing]] = {"bare": [], "bare+val": [], "trainer": []}
        for _ in range(args.repeats):  # interleaved so load changes hit all alike
            runs["bare"].append(bare_loop(data, hp, seed=0, validate=False))
            runs["bare+val"].append(bare_loop(data, hp, seed=0, validate=True))
            runs["trainer"].append(trainer_loop(data, hp, 0, uri, workdir))
    print(f"data: {len(data.x_train)} train rows x {args.features} features, {args.epochs} "
          f"epochs, batch {args.batch_size}, hidden {args.hidden_dim}x2, "
          f"spectral_norm={args.spectral_norm}, torch threads {cpu_threads}, "
          f"tracking={'off' if uri is None else uri.split(':')[0]}, median of {args.repeats}")  # fmt: skip
    names = {"bare": "bare loop, no validation", "bare+val": "bare loop + val accuracy",
             "trainer": "thunderbolt trainer"}  # fmt: skip
    for clock in ("wall", "cpu"):
        med = {k: statistics.median(getattr(t, clock) for t in v) for k, v in runs.items()}
        print(f"[{clock} clock]")
        for key, seconds in med.items():
            print(f"  {names[key]:26}: {samples / seconds:10,.0f} samples/s  ({seconds:.2f}s)")
        over_val = 100 * (med["trainer"] / med["bare+val"] - 1)
        over_bare = 100 * (med["trainer"] / med["bare"] - 1)
        print(f"  ratio trainer/bare+val throughput: {med['bare+val'] / med['trainer']:.3f} "
              f"(overhead {over_val:+.1f}%, target <= 10%)")  # fmt: skip
        print(f"  ratio trainer/bare throughput    : {med['bare'] / med['trainer']:.3f} "
              f"(overhead {over_bare:+.1f}%)")  # fmt: skip
    for key, timings in runs.items():
        print(
            f"  runs {key:9} wall/cpu s: " + " ".join(f"{t.wall:.2f}/{t.cpu:.2f}" for t in timings)
        )


if __name__ == "__main__":
    main()
