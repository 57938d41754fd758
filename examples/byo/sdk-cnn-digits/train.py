"""A plain PyTorch CNN on scikit-learn's 8x8 digits, run as a Thunderbolt Trial.

Nothing here is Thunderbolt's training code: the data loading, the model and the loop
are the script's own. The SDK adds the Trial's parameters, live reports (the operator
can prune the run), a checkpoint per epoch (a restarted pod resumes), the verified ONNX
export and the result. The same file runs on a laptop:

    python train.py                      # local run with the defaults below
    THUNDERBOLT_CONFIG=config.json python train.py
"""

from __future__ import annotations

import json

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from thunderbolt import sdk
from thunderbolt.sdk.torch import export, spectral_norm

DEFAULTS = {"learning_rate": 3e-3, "channels": 16, "dropout": 0.1, "spectral_norm": False}


class DigitsCNN(nn.Module):
    def __init__(self, channels: int, dropout: float, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std  # raw pixels (0..16) in, like the served model
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2x2
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(2 * channels * 4, 10))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features((x - self.mean) / self.std))
        return logits


class Probabilities(nn.Module):
    """What gets served: class probabilities for [batch, 1, 8, 8] images."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=-1)


def load(seed: int) -> tuple[torch.Tensor, ...]:
    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]  # [n, 1, 8, 8]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * 0.8)
    train, val = order[:cut], order[cut:]
    return tuple(torch.as_tensor(a) for a in (x[train], y[train], x[val], y[val]))


def main() -> None:
    with sdk.init(parameters=DEFAULTS, objective="val_accuracy", epochs=8) as trial:
        p = trial.params
        torch.manual_seed(trial.seed)
        x_train, y_train, x_val, y_val = load(trial.seed)
        net = DigitsCNN(p.int("channels"), p.float("dropout"),
                        float(x_train.mean()), float(x_train.std()))  # fmt: skip
        if p.bool("spectral_norm"):
            spectral_norm(net)  # every Conv2d and Linear
        optimizer = torch.optim.Adam(net.parameters(), lr=p.float("learning_rate"))
        start = 1
        state = trial.load_checkpoint()
        if state is not None:  # this pod restarted: carry on where the last one stopped
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start = state["epoch"] + 1
            print(f"resumed after epoch {state['epoch']}", flush=True)
        loss_fn = nn.CrossEntropyLoss()

        def evaluate() -> tuple[float, float]:
            net.eval()
            with torch.no_grad():
                logits = net(x_val)
            accuracy = float((logits.argmax(1) == y_val).float().mean())
            return accuracy, float(loss_fn(logits, y_val))

        for epoch in range(start, trial.epochs + 1):
            net.train()
            order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
            for i in range(0, len(order), trial.batch_size):
                idx = order[i : i + trial.batch_size]
                optimizer.zero_grad()
                loss_fn(net(x_train[idx]), y_train[idx]).backward()
                optimizer.step()
            accuracy, val_loss = evaluate()
            print(f"epoch={epoch} val_accuracy={accuracy:.4f} val_loss={val_loss:.4f}", flush=True)
            trial.save_checkpoint(
                {"epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict()}
            )
            trial.report(epoch, val_accuracy=accuracy, val_loss=val_loss)  # may raise TrialPruned
        accuracy, val_loss = evaluate()
        # ONNX with onnxruntime parity, sha256, upload to the artifact store, MLflow registry
        labels = json.dumps([str(d) for d in range(10)])
        export(Probabilities(net), x_val[:2], trial, validation=x_val,
               metadata={"thunderbolt.task": "classification", "thunderbolt.class_labels": labels})  # fmt: skip
        trial.finish(objective=accuracy, metrics={"val_accuracy": accuracy, "val_loss": val_loss})


if __name__ == "__main__":
    main()
