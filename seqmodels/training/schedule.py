"""The learning rate at each step of a run, and how often to validate."""

from __future__ import annotations

import math

from seqmodels.training.config import TrainConfig


def schedule_lr(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int,
                plateau_lr: float | None = None, seconds: float = 0.0) -> float:
    """Learning rate at (epoch, step), `seconds` into this process's `max_time` budget (scaled
    by the Trainer so that the budget's foreseen last step is at `max_time`).

    plateau keeps its own state in plateau_lr; cosine decays to 0 at the last step of the last
    epoch or at the end of the budget, whichever comes first; `warmup` ramps the rate up
    linearly over its first steps.
    """
    base = config.learning_rate
    done = epoch * steps_per_epoch + step
    if config.warmup and done < config.warmup:
        base *= (done + 1) / config.warmup
    if config.schedule == "step":
        return base * config.decay_factor ** max(0, epoch + 1 - config.decay_after)
    if config.schedule == "cosine":
        fraction = done / max(1, config.epochs * steps_per_epoch)
        if config.max_time:
            fraction = max(fraction, seconds / config.max_time)
        return 0.5 * base * (1 + math.cos(math.pi * min(1.0, fraction)))
    if config.schedule == "plateau":
        return plateau_lr if plateau_lr is not None else base
    return base


VALIDATION_SHARE = 0.05  # of the training time, at most, by default
EVAL_SPEEDUP = 2.5  # validation runs this many times the training speed in tokens/s (bench)
MIN_EVAL_EVERY = 100  # steps: short epochs validate at their ends only


def eval_every(config: TrainConfig, val_tokens: int, tokens_per_step: int) -> int:
    """Steps between validations: `eval_every`, or enough that validating val_tokens costs at
    most VALIDATION_SHARE of the training time (and never fewer than MIN_EVAL_EVERY steps).

    Validating V tokens takes as long as V / EVAL_SPEEDUP training tokens, so after N steps of
    B x T tokens it costs V / (EVAL_SPEEDUP x N x B x T) of the training time.
    """
    if config.eval_every is not None:
        return config.eval_every
    share = val_tokens / (EVAL_SPEEDUP * VALIDATION_SHARE * max(1, tokens_per_step))
    return max(MIN_EVAL_EVERY, math.ceil(share))
