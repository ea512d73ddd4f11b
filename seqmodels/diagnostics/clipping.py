"""The clipping experiment: the same SimpleRNN trained with and without gradient clipping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from seqmodels.diagnostics.gradient_norms import (
    fit_decay,
    fresh_model,
    gradient_norms,
    sample_windows,
    spectral_radii,
    top_recurrent_layer,
)


def clipping_experiment(
    ids: np.ndarray,
    vocab_size: int,
    clipnorm: float | None,
    steps: int = 100,
    cell: str = "rnn",
    units: int = 32,
    recurrent_scale: float = 3.0,
    seq_len: int = 50,
    batch_size: int = 32,
    optimizer: str = "sgd",
    lr: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a fresh model with a scaled-up recurrent kernel; record each step's loss and norm.

    The losses and pre-clipping gradient norms are what seqmodels.training.step's compiled train
    step returns for each batch (the loss before that batch's update). The run stops at the
    first non-finite loss or norm: the step's NaN guard skips that update, so nothing after it
    would be training. "diverged" means a non-finite value or a loss above 10x the first one.
    """
    from seqmodels.data.windows import window_dataset
    from seqmodels.lm.task import language_steps
    from seqmodels.training.config import TrainConfig
    from seqmodels.training.step import make_optimizer

    config = TrainConfig(batch_size=batch_size, optimizer=optimizer, lr=lr, clipnorm=clipnorm,
                         seed=seed).validate()
    model = fresh_model(cell, vocab_size, units, seed, recurrent_scale)
    radius = max(spectral_radii(top_recurrent_layer(model)).values())
    opt = make_optimizer(config)
    opt.build(model.network.trainable_variables)
    train_step, _ = language_steps(model.network, opt, config)  # what `seqmodels train` runs
    losses: list[float] = []
    norms: list[float] = []
    epoch = 0
    while len(losses) < steps:
        for x, y in window_dataset(ids, seq_len, batch_size, shuffle=True, seed=seed,
                                   epoch=epoch, drop_remainder=True):
            loss, norm, finite = train_step(x, y)
            losses.append(float(loss))
            norms.append(float(norm))
            if not bool(finite) or len(losses) >= steps:
                break
        if losses and not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
            break
        epoch += 1
    finite_losses = [v for v in losses if math.isfinite(v)]
    diverged = (len(finite_losses) < len(losses) or not all(map(math.isfinite, norms))
                or any(v > 10 * losses[0] for v in losses))
    x, y = sample_windows(ids, seq_len, batch_size, seed + 1)
    after = gradient_norms(model, x, y)  # the trained model's recurrence: does it carry gradient?
    h = model.recurrent_layers[0](model.embedding(x))  # (B, T, H)
    saturated = float(np.mean(np.abs(np.asarray(h)) > 0.999))
    return {
        "clipnorm": clipnorm, "cell": cell, "units": units, "recurrent_scale": recurrent_scale,
        "spectral_radius": radius, "optimizer": optimizer, "lr": lr, "seq_len": seq_len,
        "batch_size": batch_size, "seed": seed, "steps": len(losses),
        "losses": [v if math.isfinite(v) else None for v in losses],
        "grad_norms": [v if math.isfinite(v) else None for v in norms],
        "first_loss": losses[0], "max_loss": max(finite_losses, default=math.nan),
        "final_loss": losses[-1] if math.isfinite(losses[-1]) else None,
        "diverged": diverged,
        "final_norms_at": {k: float(after[-1 - k]) for k in (0, 1, 10, seq_len - 1)},
        "final_rate": fit_decay(after)[1],
        "saturated_fraction": saturated,  # of |h_t| > 0.999 after training
    }
