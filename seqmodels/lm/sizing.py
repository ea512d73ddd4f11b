"""A model size fitted to a training budget: layers x units chosen from the minutes given and
the speed of the machine, by the crossovers measured in README's "A size fitted to the
budget" (char level, LSTM, two corpora, `python -m benchmarks.recipe`)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

from seqmodels.errors import SeqmodelsError
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import duration_text

# (layers, units, the reference machine's budget in minutes from which the size wins); the
# reference machine is the 2-core VM every figure in the README was measured on
LADDER = ((2, 128, 0.0), (2, 256, 2.5))  # 2 x 128 won at 1 minute on both corpora by 0.14 and
# 0.26 nats/char, tied 2 x 256 at 3 (within 0.01), lost at 15 by 0.03; the step sits below 3 so
# that a 3-minute budget does not flip between the two with the probe's 10% noise. 2 x 64 and
# 2 x 512 won nowhere they were run (1 and 3 minutes); nothing larger was measured at 15 or 60
LEVELS = ("char", "byte")  # the levels the crossovers were measured at (char; bytes of English
# text are nearly its characters); word and subword keep the fixed default
MEASURED = {"cell": "lstm", "batch_size": 64, "seq_len": 100}  # what the ladder was measured with
# the probe: a chain of LSTM-cell steps shaped like the default model's (batch 64, embedding
# 64, 256 units, two layers), forward only, on the device training will use
PROBE_BATCH, PROBE_INPUT, PROBE_UNITS, PROBE_STEPS = 64, 64, 256, 25
PROBE_REFERENCE_SECONDS = 0.034  # the probe's median on the reference machine, idle (3 runs:
# 0.031, 0.035 and 0.037 s)


@dataclass(frozen=True)
class FittedSize:
    """The model settings a budget chose and the one line that says why."""

    config: ModelConfig
    reason: str


def fits_budget(level: str, cell: str = "lstm", batch_size: int = 64, seq_len: int = 100
                ) -> bool:
    """Whether a size fitted to the budget was measured for these settings (the level, and
    the cell, batch and window the ladder was measured with)."""
    return level in LEVELS and (cell, batch_size, seq_len) == tuple(MEASURED.values())


def size_for(reference_minutes: float) -> tuple[int, int]:
    """(layers, units) for a budget of this many minutes of the reference machine."""
    layers, units = LADDER[0][:2]
    for rung_layers, rung_units, from_minutes in LADDER:
        if reference_minutes >= from_minutes:
            layers, units = rung_layers, rung_units
    return layers, units


def fit_to_budget(model: ModelConfig, max_time: float, speedup: float | None = None
                  ) -> FittedSize:
    """`model` with the layers x units that the crossovers measured on the reference machine
    choose for max_time seconds on this one; speedup is how much faster this machine runs the
    probe than the reference (None: probe now)."""
    if isinstance(max_time, bool) or not isinstance(max_time, (int, float)) or not (
            0 < max_time < float("inf")):
        raise SeqmodelsError(f"`max_time` must be a number of seconds above 0, not {max_time!r}")
    if speedup is None:
        speedup = PROBE_REFERENCE_SECONDS / probe_seconds()
    minutes = max_time / 60 * speedup
    layers, units = size_for(minutes)
    fitted = dataclasses.replace(model, layers=layers, units=units)
    reason = (f"Model size: {layers} x {units} {model.cell.upper()}, fitted to the budget of "
              f"{duration_text(max_time)}: this machine ran the speed probe "
              f"{_times(speedup)}, so the budget is worth "
              f"{minutes:.3g} of its minutes ({_rungs()}); --layers and --units choose the size "
              f"yourself.")
    return FittedSize(fitted, reason)


def _times(speedup: float) -> str:
    """How this machine's probe compares with the reference machine's, in words."""
    if 0.9 <= speedup <= 1.1:
        return f"as fast as the reference machine ({speedup:.2f}x)"
    if speedup > 1:
        return f"{speedup:.2g}x as fast as the reference machine"
    return f"at {speedup:.2g}x the speed of the reference machine"


def _rungs() -> str:
    """The measured ladder in words: '2 x 128 below 1.7, 2 x 256 from 1.7'."""
    parts = []
    for i, (layers, units, from_minutes) in enumerate(LADDER):
        upto = LADDER[i + 1][2] if i + 1 < len(LADDER) else None
        when = (f"below {upto:g}" if not from_minutes else
                f"from {from_minutes:g}" + (f" to {upto:g}" if upto else ""))
        parts.append(f"{layers} x {units} {when}")
    return ", ".join(parts) + " reference minutes"


def probe_seconds(repeats: int = 7) -> float:
    """Median seconds of the probe (LSTM-cell steps shaped like the default model's) here."""
    import numpy as np

    from seqmodels.backend import import_tf

    tf = import_tf()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((PROBE_BATCH, PROBE_INPUT)), tf.float32)
    kernels = [tf.constant(rng.standard_normal((width + PROBE_UNITS, 4 * PROBE_UNITS)) * 0.05,
                           tf.float32) for width in (PROBE_INPUT, PROBE_UNITS)]

    @tf.function(autograph=False)
    def steps(x):
        states = [(tf.zeros((PROBE_BATCH, PROBE_UNITS)),) * 2 for _ in kernels]
        for _ in range(PROBE_STEPS):
            inputs = x
            for layer, kernel in enumerate(kernels):
                h, c = states[layer]
                i, f, g, o = tf.split(tf.matmul(tf.concat([inputs, h], 1), kernel), 4, 1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                h = tf.sigmoid(o) * tf.tanh(c)
                states[layer], inputs = (h, c), h
        return inputs

    steps(x).numpy()  # traced and warmed up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps(x).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
