"""How to train (the settings stored in every run) and how this process runs a training (not
stored): their defaults and choices (no TensorFlow)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from seqmodels import settings
from seqmodels.errors import SeqmodelsError
from seqmodels.training.distribute import STRATEGIES

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "cosine", "plateau")
ON_NAN = ("stop", "rollback")
DEFAULT_LR = {"adam": 4e-3, "sgd": 1.0, "rmsprop": 1e-3, "adagrad": 0.1}
# the settings a resumed run may change (every other one is the run's own, from config.json)
RESUMABLE = ("epochs", "max_time", "on_nan", "xla")
NO_BUDGET = 0.0  # max_time override (`max_time` none) that removes a resumed run's time budget


@dataclass
class TrainConfig:
    """How to train any task: batches, optimizer, schedule, clipping, stopping, seeds."""

    epochs: int = 10
    batch_size: int = 64
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
    max_time: float | None = None  # seconds of wall clock, from the start of the command/call
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int | None = None  # steps; a checkpoint is also written every epoch
    steps_per_epoch: int | None = None  # cap, for quick runs
    tensorboard: bool = False  # write TensorBoard logs under <run>/tensorboard
    on_nan: str = "stop"  # "stop" | "rollback": reload the last checkpoint at half the rate
    xla: bool | None = None  # compile steps with XLA; None: where the task says it pays off
    eval_every: int | None = None  # steps between validations (None: schedule.eval_every)
    # training loss over the true token and this many sampled ids (0: the full softmax; None:
    # chosen from the vocabulary size, seqmodels.lm.sampled.samples_for)
    sampled_softmax: int | None = None

    def validate(self) -> TrainConfig:
        """Raise SeqmodelsError for settings that cannot work."""
        settings.check_fields(self)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SeqmodelsError(f"`{name}` must be at least 1")
        if self.optimizer not in OPTIMIZERS:
            raise SeqmodelsError(f"unknown `optimizer` {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise SeqmodelsError(f"unknown `schedule` {self.schedule!r}")
        for name in ("lr", "clipnorm", "clipvalue"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise SeqmodelsError(f"`{name}` must be positive")
            settings.check_float32(name, getattr(self, name))  # the optimizer's float32
        if self.warmup < 0:
            raise SeqmodelsError("`warmup` must be at least 0")
        if self.sampled_softmax is not None and self.sampled_softmax < 0:
            raise SeqmodelsError("`sampled_softmax` must be at least 0 (0: the full softmax)")
        if self.eval_every is not None and self.eval_every < 1:
            raise SeqmodelsError("`eval_every` must be at least 1")
        if self.max_time is not None and not self.max_time > 0:
            raise SeqmodelsError("`max_time` must be a budget above 0 seconds")
        if self.on_nan not in ON_NAN:
            raise SeqmodelsError(f"`on_nan` must be one of {', '.join(ON_NAN)}")
        return self

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """Rebuild and validate from to_json()'s dict; unknown keys are refused. A run stored
        before the sampled softmax existed trained on the full softmax, and keeps it."""
        if isinstance(data, dict) and "sampled_softmax" not in data:
            data = {**data, "sampled_softmax": 0}
        return settings.from_json(cls, data, "training").validate()

    def with_changes(self, changes: dict[str, Any] | None) -> TrainConfig:
        """A copy with the RESUMABLE settings in changes replaced (None: left as they are);
        max_time NO_BUDGET (0) removes the time budget. Any other setting is refused."""
        changes = dict(changes or {})
        fixed = sorted(set(changes) - set(RESUMABLE))
        if fixed:
            raise SeqmodelsError(f"a resumed run keeps its settings; only "
                                 f"{', '.join(f'`{n}`' for n in RESUMABLE)} can change, not "
                                 f"{', '.join(f'`{n}`' for n in fixed)}")
        given = {k: v for k, v in changes.items() if v is not None}
        if given.get("max_time") == NO_BUDGET:
            given["max_time"] = None
        return replace(self, **given)

    def resume_plan(self, epochs_done: int) -> str:
        """What a run resumed with these settings does, in words (settings marked): which limit
        stops it first. A budget counts each process anew, from its start."""
        if self.epochs <= epochs_done:
            return (f"no training: its {self.epochs} epoch(s) are done (a larger `epochs` trains "
                    f"on)")
        if not self.max_time:
            return f"on to epoch {self.epochs}"
        return (f"on to epoch {self.epochs} or for another {duration_text(self.max_time)}, "
                f"whichever comes first (the run's `max_time`; a new one replaces it)")

    @property
    def learning_rate(self) -> float:
        """The initial learning rate."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


@dataclass
class RunOptions:
    """How this process runs a training: nothing here is stored with the run, so a resumed run
    may be given other options (`started` moves where a `max_time` budget ends, so it may
    change how far training gets)."""

    progress: bool = False  # progress bars, and messages to the `seqmodels` logger
    log_every: int | None = None  # also a progress line every that many steps
    workers: int | None = None  # processes that tokenize a corpus (None: all cores)
    strategy: str = "default"  # default, mirrored (every local device), multi-worker
    cluster: str | None = None  # multi-worker: "host:port,..." of every worker, the chief first
    worker_index: int | None = None  # multi-worker: this process's place in cluster
    callbacks: list = field(default_factory=list)  # keras.callbacks.Callback objects
    cache_dir: str | Path | None = None  # where encoded corpora are kept
    use_cache: bool = True  # False: neither read nor write that cache
    # the time.monotonic() a `max_time` budget counts from (None: the call that trains)
    started: float | None = None

    def starting(self) -> RunOptions:
        """These options with `started` set to now when it is unset (a call that trains)."""
        return self if self.started is not None else replace(self, started=time.monotonic())

    def validate(self) -> RunOptions:
        """Raise SeqmodelsError for options that cannot work together."""
        if self.strategy not in STRATEGIES:
            raise SeqmodelsError(f"`strategy` must be one of {', '.join(STRATEGIES)}")
        if self.strategy != "multi-worker" and (self.cluster is not None
                                                or self.worker_index is not None):
            raise SeqmodelsError("`cluster` and `worker_index` go with `strategy` multi-worker")
        for name in ("log_every", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise SeqmodelsError(f"`{name}` must be a whole number of at least 1")
        if not isinstance(self.callbacks, (list, tuple)):
            raise SeqmodelsError("`callbacks` must be a list of keras.callbacks.Callback objects")
        return self


def duration_text(seconds: float) -> str:
    """90 -> '1m30s'."""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


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
