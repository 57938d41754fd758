"""Cheap per-epoch checks that stop a run before it produces a silently bad model.

Diverged: the loss is NaN/inf or has grown past ``growth_bound`` times the untrained
model's validation loss (set by the loop before the first epoch).
Collapsed: every validation row gets the same class, or regression outputs have
near-zero variance. One collapsed epoch is normal early in training, so collapse must
last ``collapse_epochs`` epochs in a row, or be the state the run ends in.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from thunderbolt.sdk.errors import Collapsed, Diverged

GROWTH_BOUND = 1e3
COLLAPSE_EPOCHS = 5
# regression: output std below this fraction of the target's std counts as constant
MIN_RELATIVE_STD = 1e-3


@dataclasses.dataclass
class HealthMonitor:
    task: str
    growth_bound: float = GROWTH_BOUND
    collapse_epochs: int = COLLAPSE_EPOCHS
    initial_loss: float | None = None
    collapsed_streak: int = 0

    def check_loss(self, epoch: int, name: str, loss: float) -> None:
        if not math.isfinite(loss):
            raise Diverged(f"{name} became {loss} at epoch {epoch}")
        if self.initial_loss is None:
            self.initial_loss = max(loss, 1e-8)
            return
        if loss > self.growth_bound * self.initial_loss:
            raise Diverged(
                f"{name} grew to {loss:.4g} at epoch {epoch}, more than "
                f"{self.growth_bound:g}x the untrained model's loss {self.initial_loss:.4g}"
            )

    def check_outputs(self, epoch: int, outputs: np.ndarray, y_true: np.ndarray,
                      *, final: bool = False) -> None:  # fmt: skip
        """``outputs``: logits (classification) or predictions (regression), one row each."""
        why = self.collapse_reason(outputs, y_true)
        self.collapsed_streak = self.collapsed_streak + 1 if why else 0
        if why and (final or self.collapsed_streak >= self.collapse_epochs):
            streak = f" for {self.collapsed_streak} epochs" if self.collapsed_streak > 1 else ""
            raise Collapsed(f"{why}{streak} (epoch {epoch})")

    def collapse_reason(self, outputs: np.ndarray, y_true: np.ndarray) -> str | None:
        if not np.isfinite(outputs).all():
            return "predictions are not finite"
        if self.task == "classification":
            predicted = outputs.argmax(axis=1)
            if len(np.unique(y_true)) > 1 and len(np.unique(predicted)) == 1:
                return (
                    f"predictions collapsed to class {int(predicted[0])} for every validation row"
                )
            return None
        spread = float(np.std(outputs))
        scale = float(np.std(y_true)) or 1.0
        if spread < MIN_RELATIVE_STD * scale:
            return f"regression outputs collapsed (std {spread:.3g} vs target std {scale:.3g})"
        return None

    def state_dict(self) -> dict[str, float | int | None]:
        return {"initial_loss": self.initial_loss, "collapsed_streak": self.collapsed_streak}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        initial = state.get("initial_loss")
        self.initial_loss = float(initial) if initial is not None else None
        self.collapsed_streak = int(state.get("collapsed_streak") or 0)
