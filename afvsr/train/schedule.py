"""The schedules of a training run: the learning rate per step and the EMA's decay per update."""

from __future__ import annotations

import math
from typing import Any


def lr_at(step: int, base_lr: float, train_cfg: dict[str, Any]) -> float:
    """Learning rate of a group with ``base_lr`` for optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_iters`` steps (``base_lr * (step + 1) / warmup_iters``), then
    ``constant``, or ``cosine``: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * p)) / 2`` with
    ``p`` going from 0 (first step after warm-up) to 1 (after the last step), as PyTorch's
    ``CosineAnnealingLR`` with ``T_max`` = the steps after warm-up.
    """
    warmup, total = train_cfg["warmup_iters"], train_cfg["iterations"]
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if train_cfg["scheduler"] == "constant":
        return base_lr
    eta_min = min(train_cfg["eta_min"], base_lr)
    progress = (step - warmup) / max(1, total - warmup)
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay_at(updates: int, decay: float, *, warmup: bool) -> float:
    """The EMA's decay at its ``updates``-th update (1, 2, …): ``decay``, or with ``warmup``
    ``min(decay, (1 + updates) / (10 + updates))`` (TensorFlow's ExponentialMovingAverage given
    ``num_updates``: 0.18 at the first update, 0.9 at the 80th), so the starting weights fade out
    within the first hundreds of steps instead of holding ``decay ** updates`` of the average
    (13 % after 1,000 steps at 0.998)."""
    if not warmup:
        return decay
    return min(decay, (1 + updates) / (10 + updates))
