"""Training pieces: optimizer, LR schedule, compiled step with gradient norms, checkpoint arrays."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels.errors import SeqmodelsError

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "cosine", "plateau")
ON_NAN = ("stop", "rollback")
DEFAULT_LR = {"adam": 2e-3, "sgd": 1.0, "rmsprop": 1e-3, "adagrad": 0.1}


@dataclass
class TrainConfig:
    """How to train: batches, optimizer, schedule, clipping, stopping, seeds."""

    epochs: int = 10
    batch_size: int = 64
    seq_len: int = 100
    stride: int | None = None  # default: seq_len
    optimizer: str = "adam"
    lr: float | None = None  # default per optimizer (DEFAULT_LR)
    momentum: float = 0.9  # sgd only
    schedule: str = "constant"
    decay_factor: float = 0.5  # step and plateau
    decay_after: int = 4  # step: multiply by decay_factor every epoch after this one
    plateau_patience: int = 1
    clipnorm: float | None = 1.0  # global norm; None: off
    clipvalue: float | None = None
    patience: int | None = None  # early stopping on validation loss
    max_time: float | None = None  # seconds of wall clock
    seed: int = 0
    deterministic: bool = False
    stateful: bool = False
    checkpoint_every: int | None = None  # steps; a checkpoint is also written every epoch
    steps_per_epoch: int | None = None  # cap, for quick runs
    tensorboard: bool = False  # write TensorBoard logs under <run>/tensorboard
    on_nan: str = "stop"  # "stop" | "rollback": reload the last checkpoint at half the rate
    xla: bool | None = None  # compile steps with XLA; None: for fused models of >= 64 units

    def validate(self) -> TrainConfig:
        """Raise SeqmodelsError for settings that cannot work."""
        for name in ("epochs", "batch_size", "seq_len"):
            if getattr(self, name) < 1:
                raise SeqmodelsError(f"--{name.replace('_', '-')} must be at least 1")
        if self.optimizer not in OPTIMIZERS:
            raise SeqmodelsError(f"unknown optimizer {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise SeqmodelsError(f"unknown schedule {self.schedule!r}")
        if self.lr is not None and not self.lr > 0:
            raise SeqmodelsError("--lr must be positive")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise SeqmodelsError("--clipnorm must be positive")
        if self.clipvalue is not None and not self.clipvalue > 0:
            raise SeqmodelsError("--clipvalue must be positive")
        if self.on_nan not in ON_NAN:
            raise SeqmodelsError(f"--on-nan must be one of {', '.join(ON_NAN)}")
        return self

    @property
    def learning_rate(self) -> float:
        """The initial learning rate."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '10m', '2h' or '1h30m'."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                         r"(?:(\d+(?:\.\d+)?)s?)?\s*", text or "")
    if not parts or not any(parts.groups()):
        raise SeqmodelsError(f"cannot read the duration {text!r}; write e.g. 90s, 10m or 2h")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


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


def make_optimizer(config: TrainConfig):
    """The Keras optimizer named by the config (clipping is done by the train step)."""
    from seqmodels._tf import import_keras

    keras = import_keras()
    lr = config.learning_rate
    return {
        "adam": lambda: keras.optimizers.Adam(lr),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=config.momentum),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adagrad": lambda: keras.optimizers.Adagrad(lr),
    }[config.optimizer]()


def cross_entropy(y, logits):
    """Token cross-entropy in nats: (B, T) ids and (B, T, V) logits -> (B, T)."""
    from seqmodels._tf import import_tf

    return import_tf().nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


Objective = Callable[[Any, Any], Any]  # (targets, model outputs) -> per-element loss


def use_fused(model, fast: bool | None = None) -> bool:
    """Whether a step runs the model through seqmodels.fused (None: wherever it applies)."""
    if fast is False:
        return False
    from seqmodels import fused

    ok = fused.supported(model)
    if fast and not ok:
        raise SeqmodelsError("this model cannot take the fused path (see fused.supported)")
    return ok


def use_xla(model, fast: bool, xla: bool | None = None) -> bool:
    """Whether to compile a step with XLA (None: for the fused path when it pays off)."""
    if xla is not None:
        return xla
    from seqmodels import fused

    return fast and fused.xla_pays_off(model)


def outputs_of(model, x, training: bool = False, fast: bool = False):
    """The model's outputs, through the fused CPU recurrence when fast is True."""
    if fast:
        from seqmodels import fused

        return fused.logits(model, x, training)
    return model(x, training=training)


def loss_terms(model, x, y, training: bool = False, objective: Objective = cross_entropy,
               fast: bool = False):
    """Mean objective (default cross-entropy, nats/token) of the model's outputs, and the L1/L2
    penalty."""
    from seqmodels._tf import import_tf

    tf = import_tf()
    outputs = outputs_of(model, x, training, fast)  # (B, T, V) logits for a language model
    penalty = tf.add_n(model.losses) if model.losses else tf.constant(0.0)
    return tf.reduce_mean(objective(y, outputs)), penalty


def dense_gradients(grads: list) -> list:
    """The embedding's sparse gradient made dense.

    It repeats rows for repeated tokens, so densifying makes the global norm (and its
    clipping) that of the gradient actually applied.
    """
    from seqmodels._tf import import_tf

    tf = import_tf()
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


def clip_gradients(grads: list, norm, config: TrainConfig) -> list:
    """Gradients clipped to --clipnorm (by their global norm) and then to --clipvalue."""
    from seqmodels._tf import import_tf

    tf = import_tf()
    if config.clipnorm is not None:
        grads, _ = tf.clip_by_global_norm(grads, config.clipnorm, use_norm=norm)
    if config.clipvalue is not None:
        grads = [tf.clip_by_value(g, -config.clipvalue, config.clipvalue) for g in grads]
    return grads


def make_steps(model, optimizer, config: TrainConfig, objective: Objective = cross_entropy,
               fast: bool | None = None):
    """Compiled train and eval steps; the train step reports the pre-clipping gradient norm.

    eval_step(x, y) returns (sum of the objective, number of elements) so means over a whole
    split are exact. fast: the fused CPU recurrence (None: wherever it applies; same maths);
    both steps are compiled with XLA as config.xla says.
    """
    from seqmodels._tf import import_tf

    tf = import_tf()
    variables = model.trainable_variables
    fast = use_fused(model, fast)
    jit = use_xla(model, fast, config.xla)

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss, penalty = loss_terms(model, x, y, training=True, objective=objective,
                                       fast=fast)
            total = loss + penalty
        grads = dense_gradients(tape.gradient(total, variables))
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(total) & tf.math.is_finite(norm)
        grads = clip_gradients(grads, norm, config)
        if finite:
            optimizer.apply(grads, variables)
        return loss, norm, finite

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def eval_step(x, y):
        losses = objective(y, outputs_of(model, x, False, fast))
        return tf.reduce_sum(losses), tf.size(losses)

    return train_step, eval_step


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0
    step: int = 0  # steps done in this epoch
    global_step: int = 0
    best_val_loss: float | None = None
    epochs_without_improvement: int = 0
    plateau_lr: float | None = None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # training seconds before this process
    partial: dict = field(default_factory=dict)  # sums of the current epoch so far
    rollbacks: int = 0  # --on-nan rollback: times the run went back to a checkpoint
    lr_scale: float = 1.0  # halved at each rollback, on top of the schedule

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


class EpochStats:
    """Running sums of one epoch: loss, gradient norms, clipping, tokens, time."""

    def __init__(self, partial: dict | None = None) -> None:
        p = partial or {}
        self.loss_sum = p.get("loss_sum", 0.0)
        self.norm_sum = p.get("norm_sum", 0.0)
        self.norm_max = p.get("norm_max", 0.0)
        self.clipped = p.get("clipped", 0)
        self.steps = p.get("steps", 0)
        self.tokens = p.get("tokens", 0)
        self.seconds = p.get("seconds", 0.0)

    def add(self, loss: float, norm: float, clipped: bool, tokens: int, seconds: float) -> None:
        """Count one step."""
        self.loss_sum += loss
        self.norm_sum += norm
        self.norm_max = max(self.norm_max, norm)
        self.clipped += int(clipped)
        self.steps += 1
        self.tokens += tokens
        self.seconds += seconds

    def to_json(self) -> dict:
        """The sums, for a mid-epoch checkpoint."""
        return dict(vars(self))

    def row(self, epoch: int, lr: float, val_loss: float, level: str) -> dict:
        """One history.csv row."""
        n = max(1, self.steps)
        series = level == "series"  # mean squared error, not cross-entropy: no perplexity
        return {
            "epoch": epoch + 1,
            "loss": self.loss_sum / n,
            "val_loss": val_loss,
            "val_perplexity": math.nan if series else math.exp(min(val_loss, 700)),
            "val_bits_per_token": math.nan if series else val_loss / math.log(2),
            "lr": lr,
            "grad_norm_mean": self.norm_sum / n,
            "grad_norm_max": self.norm_max,
            "clipped_fraction": self.clipped / n,
            "tokens_per_s": self.tokens / self.seconds if self.seconds else 0.0,
            "seconds": self.seconds,
            **({"val_rmse": math.sqrt(max(val_loss, 0.0))} if series else {}),  # scaled units
        }


StepCallback = Callable[[dict], None]


def run_dir_arrays(model, optimizer) -> dict[str, list[np.ndarray]]:
    """Everything numeric a checkpoint holds: weights, optimizer slots, carried RNN states.

    model.variables, unlike model.weights, includes the dropout layers' RNG seed states, so
    a resumed run draws the same dropout masks as an uninterrupted one.
    """
    from seqmodels.models import recurrent_layers

    states = [np.asarray(s) for layer in recurrent_layers(model) if layer.stateful
              for s in layer.states]
    return {
        "weights": [np.asarray(v) for v in model.variables],
        "optimizer": [np.asarray(v) for v in optimizer.variables],
        "rnn_states": states,
    }


def restore_arrays(model, optimizer, arrays: dict[str, list[np.ndarray]], where: Path) -> None:
    """Load a checkpoint's arrays back into a freshly built model and optimizer."""
    from seqmodels.models import recurrent_layers

    weights, slots = arrays.get("weights", []), arrays.get("optimizer", [])
    expected = [tuple(v.shape) for v in model.variables]
    if [tuple(w.shape) for w in weights] != expected:
        raise SeqmodelsError(f"{where}: the checkpoint's weights do not fit this model")
    if len(slots) != len(optimizer.variables):
        raise SeqmodelsError(f"{where}: the checkpoint's optimizer state does not fit")
    for var, value in zip(model.variables, weights):
        var.assign(value)
    for var, value in zip(optimizer.variables, slots):
        var.assign(value)
    states = [s for layer in recurrent_layers(model) if layer.stateful for s in layer.states]
    for var, value in zip(states, arrays.get("rnn_states", [])):
        var.assign(value)
