"""The seeded training loop: epochs, validation, health, early stopping, checkpoints.

Reproducible on CPU: the shuffle order and dropout masks of epoch ``e`` depend only on
``(seed, e)``, so a run resumed from a checkpoint continues exactly as an uninterrupted
one would. On CUDA the forward pass runs under bf16 (or fp16 with loss scaling) autocast.
Under torchrun each rank trains on its own shard through DistributedDataParallel; every
rank validates on the full (small) validation set so they all take the same decisions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from thunderbolt.sdk.checkpoint import Checkpoints
from thunderbolt.sdk.trial import Trial
from thunderbolt.trainer import metrics as metric_fns
from thunderbolt.trainer.data import Dataset
from thunderbolt.trainer.health import HealthMonitor
from thunderbolt.trainer.params import HyperParams
from thunderbolt.validation.probe import TrainingProbe

EVAL_BATCH = 8192
INITIAL_LOSS_ROWS = 2048


@dataclasses.dataclass
class Outcome:
    net: nn.Module  # the best epoch's weights (not DDP-wrapped)
    metrics: dict[str, float]  # the best epoch's validation metrics
    objective: float
    best_epoch: int
    epochs_run: int
    pruned: bool = False
    stopped_early: bool = False


@dataclasses.dataclass
class LoopSettings:
    seed: int
    objective_metric: str
    maximize: bool
    patience: int | None = None
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1


def make_optimizer(net: nn.Module, hp: HyperParams) -> torch.optim.Optimizer:
    params = net.parameters()
    if hp.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=hp.learning_rate, momentum=0.9, weight_decay=hp.weight_decay
        )
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    return torch.optim.Adam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it (no loss scaling needed), else fp16; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Trainer:
    def __init__(
        self,
        net: nn.Module,
        data: Dataset,
        hp: HyperParams,
        settings: LoopSettings,
        *,
        trial: Trial | None = None,
        step_offset: int = 0,
        checkpoints: Checkpoints | None = None,
        say: Callable[[str], None] = print,
        probe: tuple[int, bool] | None = None,
    ) -> None:
        """``trial`` (the SDK's) reports, tracks and checkpoints; None trains silently.

        Epoch ``e`` is reported as step ``step_offset + e``; ``checkpoints`` replaces the
        trial's own store (one per cross-validation fold). ``probe``: (every, rows) watch
        gradients every that many steps, and with ``rows`` every row's loss, for the
        validation checks (``self.probe``); None: no probe.
        """
        self.net = net.to(settings.device)
        self.data, self.hp, self.s = data, hp, settings
        self.trial = trial
        self.step_offset = step_offset
        self.checkpoints = checkpoints or (trial.checkpoints if trial else None)
        self.say = say if settings.rank == 0 else (lambda _msg: None)
        self.health = HealthMonitor(data.task)
        self.optimizer = make_optimizer(net, hp)
        self.amp_dtype = autocast_dtype(settings.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.model: nn.Module = self.net
        if settings.world_size > 1:
            ids = [settings.device.index] if settings.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.loss_fn: nn.Module = (
            nn.CrossEntropyLoss() if data.task == "classification" else nn.MSELoss()
        )
        dev = settings.device
        self.x_train = torch.as_tensor(data.x_train, device=dev)
        self.y_train = self._targets(data.y_train)
        self.x_val = torch.as_tensor(data.x_val, device=dev)
        self.y_val = self._targets(data.y_val)
        self._val_targets: np.ndarray | None = None
        self.probe: TrainingProbe | None = None
        self.row_loss_fn: nn.Module | None = None
        if probe is not None:
            every, rows = probe
            self.probe = TrainingProbe(
                self.net,
                self.optimizer,
                every=every,
                train_rows=len(data.x_train) if rows else None,
            )
            if rows:
                self.row_loss_fn = (
                    nn.CrossEntropyLoss(reduction="none")
                    if data.task == "classification"
                    else nn.MSELoss(reduction="none")
                )

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        if self.data.task == "classification":
            return torch.as_tensor(y, dtype=torch.long, device=self.s.device)
        scaled = (y - self.data.target_mean) / self.data.target_std
        return torch.as_tensor(scaled, dtype=torch.float32, device=self.s.device).unsqueeze(1)

    # --- one epoch -------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        n = self.x_train.shape[0]
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(self.s.seed * 100_003 + epoch)
        )
        if self.s.world_size > 1:  # equal shards, or DDP ranks wait on each other forever
            padded = -(-n // self.s.world_size) * self.s.world_size
            order = torch.cat([order, order[: padded - n]])
        order = order[self.s.rank :: self.s.world_size].to(self.s.device)
        torch.manual_seed(self.s.seed * 7_919 + epoch)  # dropout masks of this epoch
        total = torch.zeros((), device=self.s.device)
        batches = 0
        for start in range(0, order.numel(), self.hp.batch_size):
            idx = order[start : start + self.hp.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.s.device.type, dtype=self.amp_dtype or torch.bfloat16,
                                enabled=self.amp_dtype is not None):  # fmt: skip
                out = self.model(self.x_train[idx]).float()
                if self.row_loss_fn is not None and self.probe is not None:
                    rows = self.row_loss_fn(out, self.y_train[idx])  # the same mean loss
                    loss = rows.mean()
                    self.probe.record_rows(idx, rows)
                else:
                    loss = self.loss_fn(out, self.y_train[idx])
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach()
            batches += 1
        mean = total / max(batches, 1)
        if self.s.world_size > 1:  # every rank must see the same loss to decide the same
            torch.distributed.all_reduce(mean)
            mean /= self.s.world_size
        return float(mean.item())

    @torch.inference_mode()
    def evaluate(self) -> tuple[dict[str, float], np.ndarray]:
        """Validation metrics and the raw outputs (logits / standardized predictions)."""
        self.net.eval()
        rows = self.x_val.shape[0]
        chunks = [
            self.net(self.x_val[i : i + EVAL_BATCH]).float() for i in range(0, rows, EVAL_BATCH)
        ]
        out = torch.cat(chunks)
        result = {"val_loss": float(self.loss_fn(out, self.y_val).item())}
        raw = out.cpu().numpy()
        if self.data.task == "classification":
            result |= metric_fns.classification(
                self.data.y_val, raw.argmax(axis=1), self.data.num_outputs
            )
        else:
            predicted = raw[:, 0] * self.data.target_std + self.data.target_mean
            result |= metric_fns.regression(self.data.y_val, predicted)
        return result, raw

    @torch.inference_mode()
    def untrained_loss(self) -> float:
        """The yardstick for "the loss exploded", on a slice of the validation rows."""
        self.net.eval()
        n = min(self.x_val.shape[0], INITIAL_LOSS_ROWS)
        return float(self.loss_fn(self.net(self.x_val[:n]).float(), self.y_val[:n]).item())

    def _standardized_val_targets(self) -> np.ndarray:
        if self._val_targets is None:
            classes = self.data.task == "classification"
            self._val_targets = self.data.y_val if classes else self.y_val.cpu().numpy()[:, 0]
        return self._val_targets

    # --- the whole run ---------------------------------------------------------------
    def fit(self) -> Outcome:
        state = self.checkpoints.load() if self.checkpoints else None
        start, best_value, best_epoch, bad_epochs = 1, None, 0, 0
        best_state: dict[str, torch.Tensor] | None = None
        best_eval: tuple[dict[str, float], np.ndarray] | None = None  # this process's best
        if state is not None:
            start, best_value, best_epoch, bad_epochs, best_state = self._restore(state)
            self.say(f"resumed from checkpoint after epoch {start - 1}")
        else:  # the untrained model's loss is the yardstick for "the loss exploded"
            self.health.initial_loss = max(self.untrained_loss(), 1e-8)
            if self.probe is not None:
                self.probe.initial_loss = self.health.initial_loss
        epochs = self.hp.epochs
        pruned = bool(state and state.get("pruned"))
        stopped_early = self.s.patience is not None and bad_epochs >= self.s.patience
        epoch = start - 1
        # a checkpoint of a run that had already stopped has nothing left to train
        remaining = range(0) if pruned or stopped_early else range(start, epochs + 1)
        for epoch in remaining:
            began = time.monotonic()
            train_loss = self.train_epoch(epoch)
            if self.probe is not None:
                self.probe.end_epoch(train_loss)
            self.health.check_loss(epoch, "train loss", train_loss)
            values, raw = self.evaluate()
            self.health.check_loss(epoch, "validation loss", values["val_loss"])
            self.health.check_outputs(epoch, raw, self._standardized_val_targets())
            values = {"train_loss": train_loss, **values}
            value = values[self.s.objective_metric]
            if best_value is None or self._better(value, best_value):
                best_value, best_epoch, bad_epochs = value, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                best_eval = (dict(values), raw)
            else:
                bad_epochs += 1
            self.say(_progress(epoch, epochs, values, time.monotonic() - began))
            step = self.step_offset + epoch
            reported = self.trial is not None and self.trial.report(step, values)
            pruned = self._agree(reported if self.s.rank == 0 else False)
            stopped_early = self._agree(
                self.s.patience is not None and bad_epochs >= self.s.patience
            )
            if self.checkpoints is not None and self.s.rank == 0:
                saved = self._state(epoch, best_value, best_epoch, bad_epochs, best_state)
                self.checkpoints.save(saved | {"pruned": pruned})
            if pruned:
                self.say(f"pruned by the operator after epoch {epoch}")
                break
            if stopped_early:
                self.say(
                    f"early stopping: no better {self.s.objective_metric} for {bad_epochs} epochs"
                )
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        # the best epoch's evaluation is the final one, unless it happened before a restart
        final, raw = best_eval if best_eval is not None else self.evaluate()
        final.pop("train_loss", None)
        if not pruned:  # a pruned run ends Pruned, whatever its predictions look like
            self.health.check_outputs(best_epoch, raw, self._standardized_val_targets(), final=True)
        return Outcome(
            net=self.net,
            metrics=final,
            objective=final.get(self.s.objective_metric, best_value or 0.0),
            best_epoch=best_epoch,
            epochs_run=epoch,
            pruned=pruned,
            stopped_early=stopped_early,
        )

    def _better(self, value: float, best: float) -> bool:
        return value > best if self.s.maximize else value < best

    def _agree(self, flag: bool) -> bool:
        """Rank 0 hears from the operator; every rank must stop at the same epoch."""
        if self.s.world_size == 1:
            return flag
        t = torch.tensor([1 if flag else 0], device=self.s.device)
        torch.distributed.broadcast(t, src=0)
        return bool(t.item())

    def _state(self, epoch: int, best_value: float | None, best_epoch: int, bad_epochs: int,
               best_state: dict[str, torch.Tensor] | None) -> dict[str, Any]:  # fmt: skip
        return {
            "epoch": epoch,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "health": self.health.state_dict(),
            "best_value": best_value,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "best_state": best_state,
        }

    def _restore(self, state: dict[str, Any]) -> tuple[int, Any, int, int, Any]:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.health.load_state_dict(state["health"])
        return (int(state["epoch"]) + 1, state["best_value"], int(state["best_epoch"]),
                int(state["bad_epochs"]), state["best_state"])  # fmt: skip


def _progress(epoch: int, epochs: int, values: dict[str, float], seconds: float) -> str:
    shown = "  ".join(f"{k}={v:.4f}" for k, v in values.items())
    return f"epoch {epoch}/{epochs}  {shown}  ({seconds:.2f}s)"
