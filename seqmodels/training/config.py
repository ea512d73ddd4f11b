"""How to train: the settings stored in every run, their defaults and choices (no TensorFlow)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

from seqmodels import settings
from seqmodels.errors import SeqmodelsError

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "cosine", "plateau")
ON_NAN = ("stop", "rollback")
DEFAULT_LR = {"adam": 4e-3, "sgd": 1.0, "rmsprop": 1e-3, "adagrad": 0.1}
# the settings a resumed run may change (every other one is the run's own, from config.json)
RESUMABLE = ("epochs", "max_time", "on_nan", "xla")
NO_BUDGET = 0.0  # max_time override (--max-time none) that removes a resumed run's time budget


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
    warmup: int = 0  # steps over which the rate rises linearly to its value
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
    eval_every: int | None = None  # steps between validations (None: schedule.eval_every)
    eval_tokens: int | None = None  # validate on this many tokens of the split (None: all)

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
        for name in ("lr", "clipnorm", "clipvalue"):  # used in float32 by the optimizer
            settings.check_float32(name, getattr(self, name))
        if self.warmup < 0:
            raise SeqmodelsError("--warmup must be at least 0")
        for name in ("eval_every", "eval_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SeqmodelsError(f"--{name.replace('_', '-')} must be at least 1")
        if self.eval_tokens is not None and self.eval_tokens < self.seq_len:
            raise SeqmodelsError(f"--eval-tokens {self.eval_tokens:,} is fewer than one window "
                                 f"of --seq-len {self.seq_len:,}; validate on at least "
                                 f"{self.seq_len:,} tokens")
        if self.max_time is not None and not self.max_time > 0:
            raise SeqmodelsError("--max-time must be a budget above 0 seconds")
        if self.on_nan not in ON_NAN:
            raise SeqmodelsError(f"--on-nan must be one of {', '.join(ON_NAN)}")
        return self

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """Rebuild and validate from to_json()'s dict; unknown keys are refused."""
        return settings.from_json(cls, data, "training").validate()

    def with_overrides(self, **overrides) -> TrainConfig:
        """A copy with the RESUMABLE settings that were given (not None) replaced; max_time
        NO_BUDGET (0) removes the time budget."""
        fixed = sorted(set(overrides) - set(RESUMABLE))
        if fixed:
            raise SeqmodelsError(f"these settings cannot change on resume: "
                                 f"{', '.join(map(settings.option_name, fixed))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("max_time") == NO_BUDGET:
            given["max_time"] = None
        return replace(self, **given)

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
    seconds = h * 3600 + m * 60 + s
    if not math.isfinite(seconds):
        shown = text if len(text) <= 40 else f"{text[:40]}..."
        raise SeqmodelsError(f"the duration {shown!r} is too long to be a number")
    return seconds
