"""The epoch loop every model kind shares: steps, checkpoints, validation, best model, history,
signals, the time budget and what to do when the loss turns NaN."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqmodels.errors import SeqmodelsError, describe
from seqmodels.interrupts import ctrl_c_pressed
from seqmodels.training import checkpoint
from seqmodels.training.config import TrainConfig
from seqmodels.training.distribute import MAX_TIME, NO_STOP, SIGNAL
from seqmodels.training.history import plot_history, write_history
from seqmodels.training.progress import IntervalStats, Progress, StepCallback
from seqmodels.training.schedule import eval_every, schedule_lr

MAX_ROLLBACKS = 3


class Interrupted(SeqmodelsError):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _NonFinite(Exception):
    """The loss or gradient norm of a step was NaN/Inf (the step's update was skipped)."""


@dataclass
class Task:
    """What the loop needs from one kind of model (language model, forecaster), built by it."""

    net: Any
    optimizer: Any
    train_step: Callable  # (x, y) -> (loss, pre-clip gradient norm, finite)
    dataset: Callable[[int], Any]  # epoch -> (x, y) batches in a fixed order for that epoch
    steps: int  # per epoch
    validate: Callable[[], float]
    save_best: Callable[[Path], None]  # writes model.keras into the folder it is given
    command: str  # the command that trains it, e.g. "seqmodels train"
    val_metrics: Callable[[float], dict[str, float]] = lambda loss: {}  # more history columns
    val_tokens: int = 0  # tokens one validation reads, for the default schedule
    batch_tokens: int = 0  # tokens of one (global) training batch
    unit: str = "tokens"  # what a model reads, in messages (a forecaster: time steps)
    loss_label: str = "loss"  # the loss and its units, for training.png
    start_epoch: Callable[[], None] | None = None  # e.g. reset carried RNN states
    distribution: Any = None  # a distribute.Distribution under --strategy mirrored/multi-worker
    batch_size: int = 0  # the global batch, for the token counts of distributed batches
    resume_command: str = ""  # e.g. "seqmodels train --resume runs/x", set by the session
    callbacks: Any = None  # a keras.callbacks.CallbackList driven by the loop, or None

    def batches(self, epoch: int, start: int):
        """The epoch's batches from step `start` on, split over the replicas if distributed."""
        ds = self.dataset(epoch).skip(start).take(self.steps - start)
        return ds if self.distribution is None else self.distribution.distribute(
            ds, self.batch_size)

    def tokens(self, x) -> int:
        """Tokens in one (global) batch."""
        if self.distribution is None:
            return int(x.shape[0] * x.shape[1])
        local = self.distribution.strategy.experimental_local_results(x)[0]
        return self.batch_size * int(local.shape[-1])

    def stop_code(self, stop: dict, out_of_time: bool, seconds: float) -> int:
        """Why to stop now (distribute.SIGNAL/MAX_TIME/NO_STOP), agreed by every worker."""
        code = SIGNAL if stop["signal"] is not None else MAX_TIME if out_of_time else NO_STOP
        return code if self.distribution is None else self.distribution.agree(code, seconds)

    def schedule_seconds(self, clock: _Clock) -> float:
        """Seconds of training that a time-based schedule counts: the chief's, under several
        workers (each worker's own clock would give each its own learning rate)."""
        if self.distribution is None or self.distribution.workers == 1:
            return clock.process_seconds()
        return self.distribution.chief_seconds


_ACTIVE_STOP_FLAGS: list[dict] = []  # the flags of the fits running now (callbacks read them)


def stop_requested() -> bool:
    """Whether a signal asked the training running now to stop (for long callbacks to yield)."""
    return any(flag["signal"] is not None for flag in _ACTIVE_STOP_FLAGS)


@contextmanager
def _stop_requests() -> Iterator[dict]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""
    # a Ctrl-C swallowed before training began (see interrupts) stops it at the first step
    flag: dict[str, int | None] = {"signal": signal.SIGINT if ctrl_c_pressed() else None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _ACTIVE_STOP_FLAGS.append(flag)
    try:
        yield flag
    finally:
        _ACTIVE_STOP_FLAGS.remove(flag)
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def writing(what: str, run_dir: Path, resume_command: str) -> Iterator[None]:
    """Turn a failed write (disk full, permissions) into one line that says nothing was lost."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if not run_dir.is_dir():
            raise SeqmodelsError(f"could not write the {what}: the run directory {run_dir} no "
                                 f"longer exists (deleted while training?); training stopped "
                                 f"and nothing more could be kept") from None
        where = f"{exc.filename}: " if exc.filename else ""
        error = SeqmodelsError(
            f"could not write the {what} in {run_dir} ({where}{reason}); the files already "
            f"there are intact; make room and continue with: {resume_command}")
        error.reason = f"{where}{reason}"  # what failed, for a caller that words it otherwise
        raise error from None


def fit(task: Task, config: TrainConfig, run_dir: Path, p: Progress, show_progress: bool = False,
        callback: StepCallback | None = None, log_every: int | None = None) -> str:
    """Train until the epochs, the time budget, early stopping or a signal end it."""
    clock = _Clock(p.seconds)
    if show_progress:
        _announce(task, config, run_dir, p)
    keras_callbacks = task.callbacks
    if keras_callbacks is not None:
        task.net.stop_training = False
        keras_callbacks.set_params({**(keras_callbacks.params or {}), "run_dir": str(run_dir)})
        keras_callbacks.on_train_begin()
    try:
        with _stop_requests() as stop:
            while True:
                try:
                    reason = _epochs(task, config, run_dir, p, show_progress, callback,
                                     log_every, clock, stop)
                    break
                except _NonFinite as exc:
                    _roll_back_or_stop(task, config, run_dir, p, str(exc))
    finally:  # also when training fails, so callbacks close their files
        if keras_callbacks is not None:
            keras_callbacks.on_train_end(_logs(p.history[-1]) if p.history else {})
    if reason == "signal":
        code = 143 if stop["signal"] == signal.SIGTERM else 130  # None: another worker's
        raise Interrupted(f"interrupted; checkpoint saved at epoch {p.epoch + 1}, step {p.step}. "
                          f"Resume with: {task.resume_command}", code)
    return reason


class _Clock:
    """Wall seconds of the run: those before this process, and this process's own."""

    def __init__(self, before: float) -> None:
        self.before, self.started = before, time.monotonic()

    def run_seconds(self) -> float:
        """Wall seconds since the run began, all processes together."""
        return self.before + time.monotonic() - self.started

    def process_seconds(self) -> float:
        """Wall seconds since this process began training."""
        return time.monotonic() - self.started


def validation_due(p: Progress, every: int, steps: int, stopping: bool = False) -> bool:
    """Whether to validate now: at an epoch's end, at every `every`-th global step (the same
    steps in a resumed run as in an uninterrupted one), and when a budget or a signal stops
    training with steps not yet validated (so no work is thrown away)."""
    unvalidated = p.global_step > p.last_validated_step
    return unvalidated and (p.step >= steps or stopping or p.global_step % every == 0)


def save(task: Task, run_dir: Path, p: Progress, stats: IntervalStats | None = None) -> None:
    """Checkpoint the task's model and optimizer with the progress (and the sums since the last
    validation)."""
    p.partial = stats.to_json() if stats is not None and stats.steps else {}
    with writing("checkpoint", run_dir, task.resume_command):
        checkpoint.write(run_dir, task.net, task.optimizer, p)


def restore_latest(task: Task, run_dir: Path, p: Progress) -> bool:
    """Load the newest checkpoint of run_dir into the task's model, optimizer and p; False if
    there is none."""
    ckpt = checkpoint.load_latest(run_dir)
    if ckpt is None:
        return False
    vars(p).update(vars(checkpoint.restore(ckpt, task.net, task.optimizer)))
    return True


def _roll_back_or_stop(task: Task, config: TrainConfig, run_dir: Path, p: Progress,
                       what: str) -> None:
    """--on-nan rollback: reload the last checkpoint and halve the rate, at most 3 times."""
    where = f"{run_dir} keeps its last good checkpoint and model"
    if config.on_nan != "rollback":
        raise SeqmodelsError(f"{what}; the weights were not updated and {where}; try a lower "
                             f"--lr or a smaller --clipnorm, or --on-nan rollback")
    if p.rollbacks >= MAX_ROLLBACKS:
        raise SeqmodelsError(f"{what} again after {MAX_ROLLBACKS} rollbacks, each halving the "
                             f"learning rate; {where}; try a lower --lr or a --clipnorm")
    rollbacks, scale = p.rollbacks + 1, p.lr_scale * 0.5
    restore_latest(task, run_dir, p)  # there is always one: fit starts with one
    p.rollbacks, p.lr_scale = rollbacks, scale
    lr = schedule_lr(config, p.epoch, p.step, task.steps, p.plateau_lr) * p.lr_scale
    warnings.warn(f"{what}; rolled back to epoch {p.epoch + 1}, step {p.step} and halved the "
                  f"learning rate to {lr:.3g} (rollback {rollbacks} of {MAX_ROLLBACKS})",
                  stacklevel=2)
    save(task, run_dir, p, IntervalStats(p.partial))


def _announce(task: Task, config: TrainConfig, run_dir: Path, p: Progress) -> None:
    """Say what the run will do: where, how big, how long, when it validates."""
    from tqdm import tqdm

    every = eval_every(config, task.val_tokens, task.batch_tokens)
    budget = (f"{config.epochs} epoch(s)" if not config.max_time else
              f"{config.epochs} epoch(s) or {_duration(config.max_time)}, whichever comes first")
    start = (f"resuming at epoch {p.epoch + 1}, step {p.step}; " if p.global_step else "")
    tqdm.write(f"Training in {run_dir}: {start}{task.net.count_params():,} parameters, "
               f"{task.steps:,} steps per epoch of {task.batch_tokens:,} {task.unit}; budget "
               f"{budget}; validation on {task.val_tokens:,} {task.unit} at each epoch's end"
               f"{f', every {every:,} steps' if every < task.steps else ''} and when training "
               f"stops.", file=sys.stderr)


def _duration(seconds: float) -> str:
    """90 -> '1m30s'."""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _log_line(epoch: int, epochs: int, p: Progress, steps: int, loss: float, norm: float,
              speed: float, unit: str = "tokens") -> str:
    return (f"epoch {epoch + 1}/{epochs} step {p.step}/{steps} (global {p.global_step}): "
            f"loss {loss:.4f}, gradient norm {norm:.3g}, {speed:,.0f} {unit}/s")


def _validate(task: Task, config: TrainConfig, run_dir: Path, p: Progress, stats: IntervalStats,
              lr: float, epoch: int, step: int, clock: _Clock, board, show_progress: bool
              ) -> IntervalStats:
    """Validate the weights reached: one history row, the best model kept when it improves,
    the plateau schedule and early stopping's count; returns fresh sums for the next stretch."""
    from tqdm import tqdm

    carried = checkpoint.carried_states(task.net)  # validation must not disturb them
    if task.callbacks is not None:
        task.callbacks.on_test_begin()
    val_loss = task.validate()
    checkpoint.set_carried_states(task.net, carried)
    if not math.isfinite(val_loss):
        raise _NonFinite(f"the validation loss became NaN/Inf at epoch {epoch + 1}, step {step} "
                         f"(the weights are finite but their predictions overflow)")
    p.seconds = clock.run_seconds()
    p.last_validated_step = p.global_step
    metrics = task.val_metrics(val_loss)
    p.history.append(stats.row(epoch + 1, step, p, lr, val_loss, metrics))
    if p.best_val_loss is None or val_loss < p.best_val_loss:
        with writing("best model", run_dir, task.resume_command):
            task.save_best(run_dir)
        p.best_val_loss, p.epochs_without_improvement = val_loss, 0
    else:
        p.epochs_without_improvement += 1
        if (config.schedule == "plateau"
                and p.epochs_without_improvement % config.plateau_patience == 0):
            p.plateau_lr = lr / p.lr_scale * config.decay_factor
    row = p.history[-1]
    if task.callbacks is not None:
        task.callbacks.on_test_end({"loss": val_loss, **metrics})
    _log(board, p.global_step, {f"validation/{k}": row[k] for k in
                                ("val_loss", *metrics, "tokens_per_s")})
    if show_progress:
        shown = "  ".join(f"{k} {row[k]:.4g}" if row[k] is not None else f"{k} overflows"
                          for k in metrics)
        where = f"epoch {epoch + 1}/{config.epochs}" + (f" step {step}" if step < task.steps
                                                          else "")
        tqdm.write(f"{where}: loss {row['loss']:.4f}  val_loss {val_loss:.4f}  {shown}  "
                   f"{row['tokens_per_s']:,.0f} {task.unit}/s", file=sys.stderr)
    return IntervalStats()


def _epochs(task: Task, config: TrainConfig, run_dir: Path, p: Progress, show_progress: bool,
            callback: StepCallback | None, log_every: int | None, clock: _Clock,
            stop: dict) -> str:
    """The loop proper; returns why it ended, or raises _NonFinite."""
    from tqdm import tqdm

    board = _tensorboard(run_dir) if config.tensorboard else None
    steps = task.steps
    every = eval_every(config, task.val_tokens, task.batch_tokens)
    lr = schedule_lr(config, p.epoch, p.step, steps, p.plateau_lr) * p.lr_scale
    stats = IntervalStats(p.partial)
    shown = {"tokens": 0, "seconds": 0.0, "steps": 0}  # the bar's speed, without the first step

    def checkpoint_now() -> None:
        p.seconds = clock.run_seconds()
        save(task, run_dir, p, stats)
    keras_callbacks = task.callbacks
    for epoch in range(p.epoch, config.epochs):
        if task.start_epoch is not None and p.step == 0:
            task.start_epoch()
        if keras_callbacks is not None:
            keras_callbacks.on_epoch_begin(epoch)
        bar = tqdm(total=steps, initial=p.step, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="step", leave=False, disable=None if show_progress else True)
        with bar:
            last = time.perf_counter()
            for x, y in task.batches(epoch, p.step):
                lr = schedule_lr(config, epoch, p.step, steps, p.plateau_lr,
                                 task.schedule_seconds(clock)) * p.lr_scale
                task.optimizer.learning_rate.assign(lr)
                if keras_callbacks is not None:
                    keras_callbacks.on_train_batch_begin(p.step)
                t0 = time.perf_counter()
                loss, norm, finite = task.train_step(x, y)
                loss, norm = float(loss), float(norm)
                now = time.perf_counter()
                if not bool(finite):
                    raise _NonFinite(f"the loss or gradient became NaN/Inf at epoch {epoch + 1}, "
                                     f"step {p.step + 1} (loss {loss}, gradient norm {norm})")
                clipped = config.clipnorm is not None and norm > config.clipnorm
                tokens = task.tokens(x)
                stats.add(loss, norm, clipped, tokens, now - t0, now - last)
                if shown["steps"]:  # the first step of a process compiles: left out
                    shown["tokens"] += tokens
                    shown["seconds"] += now - last
                shown["steps"] += 1
                last = now
                p.step += 1
                p.global_step += 1
                p.tokens += tokens
                bar.update()
                speed = shown["tokens"] / shown["seconds"] if shown["seconds"] else 0.0
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}")
                if log_every and p.global_step % log_every == 0:
                    tqdm.write(_log_line(epoch, config.epochs, p, steps, loss, norm, speed,
                                         task.unit), file=sys.stderr)
                _log(board, p.global_step, {"train/loss": loss, "train/lr": lr,
                                            "train/grad_norm_before_clipping": norm})
                if callback is not None:
                    callback({"epoch": epoch, "step": p.step, "global_step": p.global_step,
                              "loss": loss, "grad_norm": norm, "lr": lr})
                if keras_callbacks is not None:
                    keras_callbacks.on_train_batch_end(p.step - 1, {
                        "loss": loss, "grad_norm": norm, "lr": lr, "global_step": p.global_step})
                if config.checkpoint_every and p.global_step % config.checkpoint_every == 0:
                    checkpoint_now()
                asked = keras_callbacks is not None and bool(task.net.stop_training)
                seconds = clock.process_seconds()
                out_of_time = bool(config.max_time) and seconds >= config.max_time
                code = task.stop_code(stop, out_of_time or asked, seconds)
                if validation_due(p, every, steps, stopping=bool(code)) and (
                        code or p.step < steps):  # (an epoch's end validates below)
                    stats = _validate(task, config, run_dir, p, stats, lr, epoch, p.step, clock,
                                      board, show_progress)
                    write_records(task, run_dir, p)
                    last = time.perf_counter()  # validation is not training time
                    if not code and config.patience and (
                            p.epochs_without_improvement >= config.patience):
                        checkpoint_now()
                        return "early-stopping"
                if code:
                    checkpoint_now()
                    return "signal" if code == SIGNAL else "callback" if asked else "max-time"
                if keras_callbacks is not None and task.net.stop_training:  # asked at validation
                    checkpoint_now()
                    return "callback"
        if validation_due(p, every, steps):  # the epoch's end
            stats = _validate(task, config, run_dir, p, stats, lr, epoch, steps, clock, board,
                              show_progress)
        p.epoch, p.step = epoch + 1, 0
        checkpoint_now()
        write_records(task, run_dir, p)
        if keras_callbacks is not None:
            keras_callbacks.on_epoch_end(epoch, _logs(p.history[-1]))
            if task.net.stop_training:  # e.g. keras.callbacks.EarlyStopping
                return "callback"
        if config.patience and p.epochs_without_improvement >= config.patience:
            return "early-stopping"
        if task.stop_code(stop, False, clock.process_seconds()) == SIGNAL:
            return "signal"
    return "completed"


def keras_callbacks(callbacks: list | None, net, epochs: int, steps: int):
    """A keras.callbacks.CallbackList over the user's callbacks for the loop to drive, or None."""
    if not callbacks:
        return None
    from seqmodels.backend import import_keras

    keras = import_keras()
    # settings objects that make their callback once Keras is loaded (lm.samples.Samples)
    callbacks = [c.callback() if hasattr(c, "callback") and not isinstance(
        c, keras.callbacks.Callback) else c for c in callbacks]
    odd = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if odd:
        raise SeqmodelsError(f"callbacks must be keras.callbacks.Callback objects, not "
                             f"{type(odd[0]).__name__}")
    return _Guarded(_guarded_call(  # it calls each callback's set_model and set_params
        "set_model or set_params", keras.callbacks.CallbackList, list(callbacks), add_history=False,
        add_progbar=False, model=net, epochs=epochs, steps=steps, verbose=0))


def _guarded_call(event: str, call, *args, **kwargs):
    """call(*args, **kwargs), a failure of the user's callback code turned into one line."""
    try:
        return call(*args, **kwargs)
    except (SeqmodelsError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # sys.exit() or a bare BaseException is a failure too
        raise SeqmodelsError(_callback_failure(event, exc)) from exc


class _Guarded:
    """A CallbackList whose callbacks' failures become one line naming the callback's own code
    (their bugs are not seqmodels' tracebacks); attributes pass through."""

    def __init__(self, callbacks) -> None:
        self._callbacks = callbacks

    def __getattr__(self, name: str):
        attr = getattr(self._callbacks, name)
        if not name.startswith("on_") or not callable(attr):
            return attr

        return lambda *args, **kwargs: _guarded_call(name, attr, *args, **kwargs)


def _callback_failure(event: str, exc: BaseException) -> str:
    """What a failing callback did, where in its own code, and what seqmodels does not offer."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    what = f"a Keras callback failed in {event}: {describe(exc)}{where}"
    if isinstance(exc, AttributeError) and getattr(exc, "name", None) == "optimizer":
        what += (" (seqmodels' loop owns the optimizer and sets the rate itself with --lr, "
                 "--schedule and --on-nan, so callbacks that change model.optimizer, such as "
                 "LearningRateScheduler or ReduceLROnPlateau, do not apply)")
    if event.startswith("set_"):  # before training: nothing of the run is written yet
        return f"{what}; fix the callback, then train again"
    return f"{what}; the run keeps its last checkpoint: fix the callback, then --resume"


def _logs(row: dict) -> dict:
    """Keras callback logs of a history row: loss, val_loss, the task's metrics, lr, ..."""
    return {k: v for k, v in row.items() if k not in ("epoch", "step")}


def write_records(task: Task, run_dir: Path, p: Progress) -> None:
    """history.csv and training.png from the epochs in the progress."""
    if p.history:
        with writing("history", run_dir, task.resume_command):
            write_history(run_dir, p.history)
            plot_history(run_dir, p.history, task.loss_label)


def _tensorboard(run_dir: Path):
    """A summary writer for <run>/tensorboard (needs the tensorboard package)."""
    import importlib.util

    from seqmodels.backend import import_tf

    if importlib.util.find_spec("tensorboard") is None:
        raise SeqmodelsError("--tensorboard needs the tensorboard package: pip install "
                             "'seqmodels[tensorboard]'")
    return import_tf().summary.create_file_writer(str(run_dir / "tensorboard"))


def _log(board, step: int, scalars: dict[str, float]) -> None:
    """Write scalars to TensorBoard when a writer is open."""
    if board is None:
        return
    from seqmodels.backend import import_tf

    tf = import_tf()
    with board.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(name, value)
    board.flush()
