"""Where a run stands (saved in every checkpoint) and the running sums since the last
validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field


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
    rollbacks: int = 0  # --on-nan rollback: times the run went back to a checkpoint
    lr_scale: float = 1.0  # halved at each rollback, on top of the schedule
    tokens: int = 0  # training tokens seen
    last_validated_step: int = 0  # global step of the last validation

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


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
