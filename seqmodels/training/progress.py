"""Where a run stands (saved in every checkpoint) and the running sums since the last
validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from seqmodels.errors import SeqmodelsError
from seqmodels.settings import is_finite, is_number
from seqmodels.training.timing import check_time_spent

_COUNTS = ("epoch", "step", "global_step", "epochs_without_improvement", "rollbacks", "tokens",
           "last_validated_step")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_history(history: object, global_step: int, where: str) -> None:
    """History rows of a checkpoint: objects of numbers, at rising global steps up to now."""
    if not isinstance(history, list):
        raise SeqmodelsError(f"{where}: progress field 'history' must be a list of rows")
    last = 0
    for i, row in enumerate(history, 1):
        if not isinstance(row, dict) or not all(
                isinstance(k, str) and (v is None or is_number(v)) for k, v in row.items()):
            raise SeqmodelsError(f"{where}: history row {i} is not an object of numbers")
        if "global_step" not in row:  # written before validation on a schedule
            continue
        step = row["global_step"]
        if not _is_int(step) or not last < step <= global_step:
            raise SeqmodelsError(f"{where}: history row {i} is at global step {step!r}, after "
                                 f"step {last} and at most {global_step} were expected")
        if not _is_int(row.get("epoch")) or row["epoch"] < 1:
            raise SeqmodelsError(f"{where}: history row {i} has epoch {row.get('epoch')!r}")
        last = step


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0
    step: int = 0  # steps done in this epoch
    global_step: int = 0
    best_val_loss: float | None = None
    epochs_without_improvement: int = 0  # validations in a row without a better loss
    plateau_lr: float | None = None
    history: list[dict] = field(default_factory=list)  # one row per validation
    seconds: float = 0.0  # wall seconds of the run before this process
    partial: dict = field(default_factory=dict)  # sums since the last validation
    rollbacks: int = 0  # `on_nan` rollback: times the run went back to a checkpoint
    lr_scale: float = 1.0  # halved at each rollback, on top of the schedule
    tokens: int = 0  # training tokens seen
    last_validated_step: int = 0  # global step of the last validation
    time_spent: dict = field(default_factory=dict)  # wall seconds by part (training.timing)
    # [tokens seen, mean training loss of the LOSS_POINT_STEPS steps before]: training.png's
    # curve between validations
    loss_points: list = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object, where: str) -> Progress:
        """Rebuild from to_json()'s dict, refusing wrong types and impossible values (keys
        this version does not know are left out); one line naming where and the field."""
        if not isinstance(data, dict):
            raise SeqmodelsError(f"{where}: its progress is not an object")
        known = {f.name for f in fields(cls)}
        p = cls(**{k: v for k, v in data.items() if k in known})

        def bad(name: str, what: str) -> SeqmodelsError:
            return SeqmodelsError(f"{where}: progress field {name!r} must be {what}, not "
                                  f"{getattr(p, name)!r}"[:300])

        for name in _COUNTS:
            if not _is_int(getattr(p, name)) or not 0 <= getattr(p, name) < 2**53:
                raise bad(name, "a whole number >= 0 (and below 2**53)")
        for name in ("seconds",):
            if not is_finite(p.seconds) or p.seconds < 0:
                raise bad(name, "a finite number >= 0")
        if not is_finite(p.lr_scale) or not 0 < p.lr_scale <= 1:
            raise bad("lr_scale", "a number in (0, 1]")
        if p.best_val_loss is not None and not (is_finite(p.best_val_loss)
                                                and p.best_val_loss >= 0):
            raise bad("best_val_loss", "a finite number >= 0 (a loss) or null")
        if p.plateau_lr is not None and not (is_finite(p.plateau_lr) and p.plateau_lr > 0):
            raise bad("plateau_lr", "a positive number or null")
        if p.last_validated_step > p.global_step or p.step > p.global_step:
            raise SeqmodelsError(f"{where}: progress says step {p.step}, global step "
                                 f"{p.global_step} and last validated step "
                                 f"{p.last_validated_step}, which cannot all be true")
        if not isinstance(p.partial, dict) or not all(
                isinstance(k, str) and is_finite(v) for k, v in p.partial.items()):
            raise bad("partial", "an object of finite numbers")
        if p.epoch > p.global_step:  # every epoch done took at least one step
            raise SeqmodelsError(f"{where}: progress says {p.epoch} epoch(s) done in "
                                 f"{p.global_step} step(s), which cannot be true")
        p.time_spent = check_time_spent(p.time_spent, where)
        if not isinstance(p.loss_points, list) or not all(
                isinstance(point, list) and len(point) == 2 and _is_int(point[0])
                and 0 <= point[0] <= p.tokens and is_finite(point[1])
                for point in p.loss_points):
            raise bad("loss_points", "a list of [tokens seen, loss] pairs")
        _check_history(p.history, p.global_step, where)
        last = p.history[-1] if p.history else {}
        if p.last_validated_step and (not last or last.get(
                "global_step", p.last_validated_step) != p.last_validated_step):
            ends = f"ends at step {last['global_step']}" if last else "is empty"
            raise SeqmodelsError(f"{where}: progress says the last validation was at step "
                                 f"{p.last_validated_step}, but its history {ends}")
        if any(_is_int(row.get("epoch")) and row["epoch"] > p.epoch + 1 for row in p.history):
            raise SeqmodelsError(f"{where}: its history has epochs beyond the {p.epoch + 1} the "
                                 f"progress has reached")
        return p


class IntervalStats:
    """Running sums since the last validation: loss, gradient norms, clipping, tokens, time."""

    def __init__(self, partial: dict | None = None) -> None:
        p = partial or {}
        self.loss_sum = p.get("loss_sum", 0.0)
        self.norm_sum = p.get("norm_sum", 0.0)
        self.norm_max = p.get("norm_max", 0.0)
        self.clipped = p.get("clipped", 0)
        self.steps = p.get("steps", 0)
        self.tokens = p.get("tokens", 0)
        self.seconds = p.get("seconds", 0.0)  # in the compiled steps alone
        self.wall = p.get("wall", 0.0)  # steps, input pipeline, checkpoints: all but validation

    def add(self, loss: float, norm: float, clipped: bool, tokens: int, seconds: float,
            wall: float) -> None:
        """Count one step."""
        self.loss_sum += loss
        self.norm_sum += norm
        self.norm_max = max(self.norm_max, norm)
        self.clipped += int(clipped)
        self.steps += 1
        self.tokens += tokens
        self.seconds += seconds
        self.wall += wall

    def to_json(self) -> dict:
        """The sums, for a checkpoint between two validations."""
        return dict(vars(self))

    def row(self, epoch: int, step: int, p: Progress, lr: float, val_loss: float,
            val_metrics: dict[str, float]) -> dict:
        """One history.csv row for a validation at (1-based) epoch and step into it; val_metrics
        are the task's own figures of the validation loss."""
        n = max(1, self.steps)
        return {
            "epoch": epoch,
            "step": step,
            "global_step": p.global_step,
            "tokens": p.tokens,
            "loss": self.loss_sum / n,
            "val_loss": val_loss,
            **val_metrics,
            "lr": lr,
            "grad_norm_mean": self.norm_sum / n,
            "grad_norm_max": self.norm_max,
            "clipped_fraction": self.clipped / n,
            # what measures time last, so the columns before it repeat exactly on a rerun
            "wall_seconds": p.seconds,
            "tokens_per_s": self.tokens / self.wall if self.wall else 0.0,
            "step_tokens_per_s": self.tokens / self.seconds if self.seconds else 0.0,
            "seconds": self.wall,
        }


StepCallback = Callable[[dict], None]
