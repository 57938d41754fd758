"""Instruments any PyTorch training loop for the model checks: sampled per-layer
gradient norms and update/weight ratios (an optimizer step hook, no change to the
loop), optional per-row training losses, and at the end one evaluation pass that
records the penultimate representation and the ReLU units that never fire.

    probe = TrainingProbe(net, optimizer, train_rows=len(x_train))
    for epoch ...:
        ... loss.backward(); optimizer.step()     # the probe samples every N steps
        probe.end_epoch(train_loss)               # optional: loss trend
    report = probe.report(x_val, y_val, task="classification")
    probe.close()

Costs: one norm per weight tensor every ``every`` optimizer steps (and one weight
copy the step before), so a few percent of a small model's step time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from thunderbolt.validation.model import GradientStats, ModelEvidence

EVAL_BATCH = 8192
# a ReLU unit active on fewer than this share of the validation rows counts as dead:
# it passes (almost) no gradient, as a never-active one
DEAD_RATE = 0.01


def _tracked(net: nn.Module) -> dict[str, nn.Parameter]:
    """Weight matrices and kernels (not biases, norms' scales or buffers), by layer."""
    out = {}
    for name, p in net.named_parameters():
        if p.requires_grad and p.ndim >= 2:
            out[name.removesuffix(".weight").replace(".parametrizations", "")
                .removesuffix(".original")] = p  # fmt: skip
    return out


class TrainingProbe:
    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 every: int = 10, train_rows: int | None = None) -> None:  # fmt: skip
        """``every``: sample gradients every N optimizer steps (1: every step).
        ``train_rows``: keep per-row training losses for that many rows (``record_rows``)."""
        self.net = net
        self.every = max(1, every)
        self.params = _tracked(net)
        self.grads = GradientStats()
        self.losses: list[float] = []
        self.initial_loss: float | None = None
        self.steps = 0
        self._saved: dict[str, torch.Tensor] | None = None
        self._handles: list[Any] = []
        if optimizer is not None:
            self._handles.append(optimizer.register_step_post_hook(self._after_step))
        self.row_loss_sum: torch.Tensor | None = None
        self.row_top: torch.Tensor | None = None
        self._epoch_loss: torch.Tensor | None = None
        self.epochs = 0
        if train_rows:
            device = next(net.parameters()).device
            self.row_loss_sum = torch.zeros(train_rows, device=device)
            self.row_top = torch.zeros(train_rows, device=device)
            self._epoch_loss = torch.zeros(train_rows, device=device)

    # --- during training -----------------------------------------------------------------
    def _after_step(self, _optimizer: Any, _args: Any, _kwargs: Any) -> None:
        self.observe_step()

    def observe_step(self) -> None:
        """Call after ``optimizer.step()`` when no optimizer was given to the probe."""
        self.steps += 1
        # most steps are neither sampled nor right after a sample: return before any
        # torch call (this runs on every optimizer step of every Trial)
        if self._saved is not None or not (self.steps - 1) % self.every:
            with torch.no_grad():
                self._observe()

    def _observe(self) -> None:
        if self._saved is not None:  # the step after a sample: its update per weight
            saved = self._saved
            changes = [(p.detach() - saved[n]).norm().float() for n, p in self.params.items()]
            sizes = [saved[n].norm().float().clamp_min(1e-12) for n in self.params]
            ratios = (torch.stack(changes) / torch.stack(sizes)).float().cpu().tolist()
            for name, ratio in zip(self.params, ratios, strict=True):
                self.grads.update_ratios.setdefault(name, []).append(ratio)
            self._saved = None
        if (self.steps - 1) % self.every:
            return
        norms = [p.grad.detach().norm() if p.grad is not None else torch.zeros(())
                 for p in self.params.values()]  # fmt: skip
        values = torch.stack([n.float().cpu() for n in norms]).tolist() if norms else []
        self.grads.samples += 1
        if not all(math.isfinite(v) for v in values):
            self.grads.nonfinite_steps += 1
        for name, value in zip(self.params, values, strict=True):
            self.grads.norms.setdefault(name, []).append(value)
        self._saved = {name: p.detach().clone() for name, p in self.params.items()}

    def record_rows(self, index: torch.Tensor, losses: torch.Tensor) -> None:
        """Per-row training losses of one batch (``reduction="none"``), by row index."""
        if self._epoch_loss is not None:
            self._epoch_loss[index] = losses.detach().float().reshape(len(index), -1).mean(1)

    def end_epoch(self, train_loss: float) -> None:
        self.losses.append(float(train_loss))
        if self._epoch_loss is None or self.row_loss_sum is None or self.row_top is None:
            return
        self.epochs += 1
        loss = self._epoch_loss
        self.row_loss_sum += loss
        k = max(1, int(len(loss) * 0.01))
        threshold = torch.topk(loss, k).values[-1]
        self.row_top += (loss >= threshold).float()

    def loss_rank(self) -> np.ndarray | None:
        """Each row's mean-training-loss percentile (0 lowest, 1 highest)."""
        if self.row_loss_sum is None or not self.epochs:
            return None
        mean = self.row_loss_sum.cpu().numpy()
        order = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
        return order / max(len(mean) - 1, 1)

    def top_share(self) -> np.ndarray | None:
        """Share of epochs each row's loss was in the top 1%."""
        if self.row_top is None or not self.epochs:
            return None
        return (self.row_top / self.epochs).cpu().numpy()

    # --- at the end ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray | None,
                                                                dict[str, float]]:  # fmt: skip
        """Outputs, the penultimate representation and each ReLU layer's dead share."""
        device = next(self.net.parameters()).device
        x = torch.as_tensor(x, device=device)
        linears = [m for m in self.net.modules() if isinstance(m, nn.Linear)]
        relus = {name: m for name, m in self.net.named_modules() if isinstance(m, nn.ReLU)}
        active: dict[str, torch.Tensor] = {}  # per unit: rows on which it fired
        penultimate: list[torch.Tensor] = []
        handles = []
        if linears:
            handles.append(linears[-1].register_forward_pre_hook(
                lambda _m, args: penultimate.append(args[0].detach().float().flatten(1).cpu())))  # fmt: skip

        def watch(name: str) -> Any:
            def hook(_m: nn.Module, _args: Any, out: torch.Tensor) -> None:
                fired = out.detach() > 0
                if fired.ndim == 4:  # [batch, channels, h, w]: a unit is a channel
                    fired = fired.flatten(2).any(2)
                elif fired.ndim == 3:  # [batch, steps, units]
                    fired = fired.any(1)
                counts = fired.reshape(len(fired), -1).sum(0).cpu()
                active[name] = active[name] + counts if name in active else counts

            return hook

        for name, module in relus.items():
            handles.append(module.register_forward_hook(watch(name)))
        was_training = self.net.training
        self.net.eval()
        try:
            outs = [
                self.net(x[i : i + EVAL_BATCH]).float().cpu() for i in range(0, len(x), EVAL_BATCH)
            ]
        finally:
            for h in handles:
                h.remove()
            self.net.train(was_training)
        outputs = torch.cat(outs).numpy() if outs else np.zeros((0, 1))
        rep = torch.cat(penultimate).numpy() if penultimate else None
        rows = max(len(x), 1)
        dead = {name: float((counts < DEAD_RATE * rows).float().mean())
                for name, counts in active.items()}  # fmt: skip
        return outputs, rep, dead

    def evidence(self, x_val: torch.Tensor | np.ndarray, y_val: np.ndarray, *,
                 task: str = "classification", num_classes: int | None = None,
                 majority_class: int | None = None,
                 outputs: np.ndarray | None = None) -> ModelEvidence:  # fmt: skip
        """Everything the model dimensions need (``outputs`` overrides the net's, e.g.
        when the caller already de-standardized regression predictions)."""
        raw, rep, dead = self.evaluate(x_val)
        return ModelEvidence(
            outputs=raw if outputs is None else outputs,
            y_true=np.asarray(y_val),
            task=task,
            num_classes=num_classes,
            majority_class=majority_class,
            penultimate=rep,
            dead_units=dead or None,
            gradients=self.grads,
            losses=self.losses or None,
            initial_loss=self.initial_loss,
        )

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
