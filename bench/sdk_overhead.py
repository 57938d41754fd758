"""What the SDK costs a training script: report() calls, epochs, samples/s.

The model is the digits CNN of examples/byo/sdk-cnn-digits/train.py (imported from the
example, not copied), on scikit-learn's digits. Three loops over the same data, batches
and epochs, interleaved so load changes on a shared machine hit all alike:

* bare     forward/backward/step and a validation pass per epoch: any script's loop
* sdk      the same, plus ``trial.report()`` to a live endpoint every epoch
* sdk+ckpt the same, plus ``trial.save_checkpoint()`` (model + optimizer) every epoch

The report endpoint is a loopback HTTP server answering ``{"prune": false}`` (the
operator's endpoint does the same work for the trainer, over the same client). Also
timed: the built-in trainer's ``cnn`` family (``Trainer.fit`` through the SDK's Trial:
validation, health checks, reports, checkpoints) against a bare loop on the same
network. Targets: SDK overhead < 1% of epoch time; samples/s >= 0.9x bare. Ratios use
CPU seconds of this process (robust to other load on a shared machine; the endpoint's
thread is counted too, so the SDK is charged for the operator's side as well), wall
seconds are printed beside them.

    .venv/bin/python bench/sdk_overhead.py [--epochs 6] [--repeats 3] [--calls 500]
"""

from __future__ import annotations

import argparse
import http.server
import importlib.util
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from thunderbolt import sdk
from thunderbolt.api.trainer_config import DatasetConfig, TrainerConfig
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer import data as datasets
from thunderbolt.trainer import model, threads
from thunderbolt.trainer.loop import LoopSettings, Trainer, make_optimizer
from thunderbolt.trainer.params import HyperParams

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/byo/sdk-cnn-digits/train.py"


class Timing(NamedTuple):
    wall: float
    cpu: float


def _clock() -> Timing:
    return Timing(time.perf_counter(), time.process_time())


def _since(start: Timing) -> Timing:
    now = _clock()
    return Timing(now.wall - start.wall, now.cpu - start.cpu)


def example_module() -> Any:
    spec = importlib.util.spec_from_file_location("sdk_cnn_digits", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Endpoint:
    """A loopback report endpoint that never prunes."""

    def __init__(self, token_file: Path) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                reply = b'{"prune": false}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        token_file.write_text("bench-token")
        self.report = {"url": f"http://127.0.0.1:{self.server.server_address[1]}",
                       "tokenFile": str(token_file)}  # fmt: skip


def make_trial(workdir: Path, report: dict[str, str] | None, name: str) -> Trial:
    config: dict[str, Any] = {
        "identity": {"namespace": "bench", "experiment": "bench", "trial": name},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
    }
    if report:
        config["report"] = report
    return sdk.init(config, output=Path(tempfile.mkdtemp(dir=workdir)), emit=lambda _m: None)


def example_loop(ex: Any, data: tuple[torch.Tensor, ...], epochs: int, batch: int,
                 trial: Trial | None, checkpoint: bool) -> Timing:  # fmt: skip
    """Seconds of ``epochs`` epochs of the example's loop; ``trial`` adds the SDK calls."""
    x_train, y_train, x_val, y_val = data
    torch.manual_seed(0)
    net = ex.DigitsCNN(16, 0.1, float(x_train.mean()), float(x_train.std()))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    started = _clock()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            optimizer.zero_grad()
            loss_fn(net(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            logits = net(x_val)
        accuracy = float((logits.argmax(1) == y_val).float().mean())
        val_loss = float(loss_fn(logits, y_val))  # what a script prints or reports
        if trial is not None:
            if checkpoint:
                trial.save_checkpoint({"epoch": epoch, "model": net.state_dict(),
                                       "optimizer": optimizer.state_dict()})  # fmt: skip
            trial.report(epoch, val_accuracy=accuracy, val_loss=val_loss)
    return _since(started)


def report_call_seconds(trial: Trial, calls: int) -> Timing:
    """One report() call (the objective metric included: it is sent): median wall
    seconds, and mean CPU seconds of this process (client and endpoint thread)."""
    times = []
    trial.start()
    cpu_began = time.process_time()
    for step in range(1, calls + 1):
        began = time.perf_counter()
        trial.report(step, val_accuracy=0.5, val_loss=0.7, train_loss=0.8)
        times.append(time.perf_counter() - began)
    return Timing(statistics.median(times), (time.process_time() - cpu_began) / calls)


def builtin_cnn(epochs: int, workdir: Path, report: dict[str, str],
                via_trainer: bool) -> Timing:  # fmt: skip
    """Seconds of the built-in cnn family: Trainer.fit through a Trial, or a bare loop."""
    data = datasets.as_images(
        datasets.load(DatasetConfig(uri="builtin://digits"), "classification", 0)
    )
    hp = HyperParams(hidden_dim=16, learning_rate=3e-3, epochs=epochs, batch_size=32)
    torch.manual_seed(0)
    net = model.build("cnn", data.sample_shape, data.num_outputs, hp, data.mean, data.std)
    if via_trainer:
        config = TrainerConfig.model_validate(
            {
                "objective": {"metric": "val_accuracy", "direction": "maximize"},
                "report": report,
                "identity": {"trial": "builtin"},
            }  # fmt: skip
        )
        trial = Trial(config, Path(tempfile.mkdtemp(dir=workdir)), emit=lambda _m: None)
        trainer = Trainer(net, data, hp, LoopSettings(seed=0, objective_metric="val_accuracy",
                          maximize=True), trial=trial, say=lambda _m: None)  # fmt: skip
        started = _clock()
        trainer.fit()
        return _since(started)
    optimizer = make_optimizer(net, hp)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train, dtype=torch.long)
    x_val = torch.as_tensor(data.x_val)
    started = _clock()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(order), hp.batch_size):
            idx = order[i : i + hp.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            optimizer.step()
        net.eval()
        with torch.inference_mode():
            net(x_val).argmax(1)
    return _since(started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cpu_threads = threads.configure()
    ex = example_module()
    data = ex.load(0)
    rows = len(data[0])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        endpoint = Endpoint(workdir / "token")
        per_call = report_call_seconds(make_trial(workdir, endpoint.report, "calls"), args.calls)
        per_call_local = report_call_seconds(make_trial(workdir, None, "local"), args.calls)
        runs: dict[str, list[Timing]] = {"bare": [], "sdk": [], "sdk+ckpt": [],
                                        "builtin bare": [], "builtin trainer": []}  # fmt: skip
        example_loop(ex, data, 1, args.batch_size, None, False)  # warm-up
        for r in range(args.repeats):
            runs["bare"].append(example_loop(ex, data, args.epochs, args.batch_size, None, False))
            trial = make_trial(workdir, endpoint.report, f"sdk-{r}")
            runs["sdk"].append(example_loop(ex, data, args.epochs, args.batch_size, trial, False))
            trial = make_trial(workdir, endpoint.report, f"ckpt-{r}")
            runs["sdk+ckpt"].append(
                example_loop(ex, data, args.epochs, args.batch_size, trial, True)
            )
            runs["builtin bare"].append(builtin_cnn(args.epochs, workdir, endpoint.report, False))
            runs["builtin trainer"].append(builtin_cnn(args.epochs, workdir, endpoint.report, True))
        endpoint.server.shutdown()

    # the least disturbed repeat of each loop, per epoch
    wall = {k: min(t.wall for t in v) / args.epochs for k, v in runs.items()}
    epoch = {k: min(t.cpu for t in v) / args.epochs for k, v in runs.items()}
    print(f"digits CNN (examples/byo/sdk-cnn-digits), {rows} training rows, batch "
          f"{args.batch_size}, {args.epochs} epochs, best of {args.repeats}, "
          f"{cpu_threads} torch threads")  # fmt: skip
    print(f"report() call, loopback HTTP endpoint: {per_call.wall * 1e3:.3f} ms wall (median "
          f"of {args.calls}), {per_call.cpu * 1e3:.3f} ms CPU; without an endpoint: "
          f"{per_call_local.wall * 1e6:.1f} us")  # fmt: skip
    print(f"{'loop':<16}{'wall s/ep':>10}{'cpu s/ep':>10}{'samples/s':>11}{'vs bare':>9}"
          f"{'overhead/epoch':>16}")  # fmt: skip
    for name, base in (("bare", "bare"), ("sdk", "bare"), ("sdk+ckpt", "bare"),
                       ("builtin bare", "builtin bare"),
                       ("builtin trainer", "builtin bare")):  # fmt: skip
        rate = rows / epoch[name]
        ratio = epoch[base] / epoch[name]
        overhead = (epoch[name] - epoch[base]) / epoch[base] * 100
        print(f"{name:<16}{wall[name]:>10.4f}{epoch[name]:>10.4f}{rate:>11.0f}{ratio:>8.3f}x"
              f"{overhead:>+15.2f}%")  # fmt: skip
    share = per_call.wall / wall["bare"] * 100
    cpu_share = per_call.cpu / epoch["bare"] * 100
    print(f"one report() per epoch = {share:.3f}% of a bare epoch's wall time, "
          f"{cpu_share:.3f}% of its CPU time (target < 1%)")  # fmt: skip
    print("samples/s and ratios from CPU seconds; targets: sdk >= 0.9x bare, overhead < 1%")


if __name__ == "__main__":
    main()
