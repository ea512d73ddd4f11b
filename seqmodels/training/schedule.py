"""The learning rate at each step of a run."""

from __future__ import annotations

import math

from seqmodels.training.config import TrainConfig


def schedule_lr(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int,
                plateau_lr: float | None = None) -> float:
    """Learning rate at (epoch, step); plateau keeps its own state in plateau_lr."""
    base = config.learning_rate
    if config.schedule == "step":
        return base * config.decay_factor ** max(0, epoch + 1 - config.decay_after)
    if config.schedule == "cosine":
        total = max(1, config.epochs * steps_per_epoch)
        done = min(total, epoch * steps_per_epoch + step)
        return 0.5 * base * (1 + math.cos(math.pi * done / total))
    if config.schedule == "plateau":
        return plateau_lr if plateau_lr is not None else base
    return base
