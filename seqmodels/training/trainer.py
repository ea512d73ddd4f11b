"""The Trainer: it trains a task it does not know in a run directory. It starts the run or resumes
it under its lock, takes steps, validates, keeps the best model, checkpoints, and stops at the
epochs, the time budget, early stopping, a signal or a callback; a NaN loss stops the run or rolls
it back."""

from __future__ import annotations

import errno
import math
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqmodels.backend import first_traces
from seqmodels.distribution import pip_install
from seqmodels.errors import ResumableError, SeqmodelsError, render
from seqmodels.interrupts import ctrl_c_pressed
from seqmodels.progress import bar_drawn, logger, progress_bar
from seqmodels.training import checkpoint
from seqmodels.training.callbacks import keras_callbacks, logs
from seqmodels.training.config import TrainConfig, duration_text
from seqmodels.training.distribute import MAX_TIME, NO_STOP, SIGNAL
from seqmodels.training.progress import IntervalStats, Progress
from seqmodels.training.rundir import RunDir
from seqmodels.training.schedule import eval_every, schedule_lr
from seqmodels.training.timing import TimeSpent

MAX_ROLLBACKS = 3
BUDGET_VALIDATION_SHARE = 0.03  # of a `max_time` budget, at most, for validations before the last
RESERVE_MARGIN, RESERVE_SECONDS = 1.15, 0.5  # on the foreseen end of a budgeted run
COUNTED = "start-up and the final validation included"  # what a `max_time` budget counts

LOG_SECONDS = 30.0  # a progress line this often when no bar can be drawn
LOSS_POINT_STEPS = 10  # training.png plots the mean training loss of every this many steps
MAX_LOSS_POINTS = 2_000  # beyond, neighbouring points are merged (checkpoints stay small)

@dataclass
class Task:
    """What the Trainer needs from one kind of model (a language model, a forecaster): the
    network, its loss, its batches and what to keep; each kind builds its own
    (seqmodels.lm.task, seqmodels.forecast.task)."""

    net: Any  # the Keras model trained
    objective: Callable  # (targets, outputs) -> the loss of each element
    dataset: Callable[[int], Any]  # epoch -> (x, y) batches in a fixed order for that epoch
    steps: int  # per epoch
    validation_batches: Callable[[], Any]  # the (x, y) batches one validation reads
    save_best: Callable[[RunDir], None]  # writes the run's model file
    load_best: Callable[[RunDir], Any] | None = None  # reads it back (a worker's best model)
    write_files: Callable[[RunDir], None] = lambda run: None  # the task's own files a run lacks
    val_metrics: Callable[[float], dict[str, float]] = lambda loss: {}  # more history columns
    val_tokens: int = 0  # tokens one validation reads, for the default schedule
    batch_tokens: int = 0  # tokens of one (global) training batch
    unit: str = "tokens"  # what a model reads, in messages (a forecaster: time steps)
    loss_label: str = "loss"  # the loss and its units, for the plot
    start_epoch: Callable[[], None] | None = None  # e.g. reset carried RNN states
    # states carried from step to step (name, variable): checkpointed, and kept across validation
    state_variables: Callable[[], list[tuple[str, Any]]] = field(default=lambda: [])
    batch_size: int = 0  # the global batch, for the token counts of distributed batches
    forward: Callable | None = None  # (x, training) -> outputs; None: calling net
    jit: bool = False  # compile the steps with XLA when the config leaves it to the task
    # the (objective, forward) training steps use instead of objective and forward (a cheaper
    # loss, such as a sampled softmax); validation keeps objective and forward
    training: tuple[Callable, Callable] | None = None
    training_note: str = ""  # what the training loss is, when it is not `objective`


class Interrupted(ResumableError):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint."""


class _NonFinite(Exception):
    """The loss or gradient norm of a step was NaN/Inf (the step's update was skipped)."""


class _SignalWhileValidating(Exception):
    """SIGINT or SIGTERM came during a validation, which is dropped: a run stops at once (a
    service manager's SIGTERM waited for the whole validation split). The validation that a
    signal during training asks for still runs, unless another signal comes."""


_ACTIVE_STOP_FLAGS: list[dict] = []  # the flags of the trainings running now (callbacks read them)


def stop_requested() -> bool:
    """Whether a signal asked the training running now to stop (for long callbacks to yield)."""
    return any(flag["signal"] is not None for flag in _ACTIVE_STOP_FLAGS)


@contextmanager
def _stop_requests() -> Iterator[dict]:
    """Turn SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""
    # a Ctrl-C swallowed before training began (see interrupts) stops it at the first step
    flag: dict[str, int | None] = {"signal": signal.SIGINT if ctrl_c_pressed() else None,
                                   "signals": 0}  # how many came (validation drops on a new one)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum
        flag["signals"] += 1

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _ACTIVE_STOP_FLAGS.append(flag)
    try:
        yield flag
    finally:
        _ACTIVE_STOP_FLAGS.remove(flag)
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def writing(what: str, run: RunDir) -> Iterator[None]:
    """Turn a failed write (disk full, permissions) into one line that says nothing was lost;
    TensorFlow's own writers (TensorBoard's) report a full disk as their error types."""
    try:
        yield
    except OSError as exc:
        raise _write_failed(what, run, exc.strerror or str(exc), exc.filename,
                            exc.errno) from None
    except Exception as exc:
        text = str(getattr(exc, "message", "") or exc)
        full = ("No space left on device" in text or "Disk quota exceeded" in text
                or "File too large" in text)
        if not (type(exc).__module__.startswith("tensorflow") and full):
            raise  # not a failed write: TensorFlow's "resource exhausted" is also memory
        raise _write_failed(what, run, text.strip().splitlines()[0][:300], None,
                            errno.ENOSPC) from None


def _write_failed(what: str, run: RunDir, reason: str, filename: object,
                  code: int | None) -> SeqmodelsError:
    """The one-line error of a failed write, with the way to go on when the run is whole."""
    if not run.path.is_dir():
        return SeqmodelsError(f"could not write the {what}: the run directory {run} no longer "
                              f"exists (deleted while training?); training stopped and nothing "
                              f"more could be kept")
    where = f"{filename}: " if filename else ""
    lead = ("make it writable and continue with"  # not a full disk: room would not help
            if code in (errno.EACCES, errno.EPERM, errno.EROFS) else
            "make room and continue with")
    error = ResumableError(f"could not write the {what} in {run} ({where}{reason}); the files "
                           f"already there are intact", run.path, lead, separator="; ")
    error.reason = f"{where}{reason}"
    return error


class _Clock:
    """Wall seconds of the run: those before this process, and this process's own."""

    def __init__(self, before: float) -> None:
        self.before, self.started = before, time.monotonic()

    def run_seconds(self) -> float:
        """Wall seconds since the run began, all processes together."""
        return self.before + time.monotonic() - self.started


def validation_due(p: Progress, every: int, steps: int, stopping: bool = False) -> bool:
    """Whether to validate now: at an epoch's end, at every `every`-th global step (the same
    steps in a resumed run as in an uninterrupted one), and when a budget or a signal stops
    training with steps not yet validated (so no work is thrown away)."""
    unvalidated = p.global_step > p.last_validated_step
    return unvalidated and (p.step >= steps or stopping or p.global_step % every == 0)


def validation_affordable(spent: float, one: float, budget: float) -> bool:
    """Whether, `spent` seconds of validation into a budget, one more validation of `one`
    seconds before the final one (as long) keeps them all within BUDGET_VALIDATION_SHARE of it
    (always without a budget)."""
    return not budget or spent + 2 * one <= BUDGET_VALIDATION_SHARE * budget


class Trainer:
    """Trains one task by one TrainConfig: it makes the optimizer and the compiled steps of the
    task's loss, and in a run directory starts or resumes (`train`), or, as a cluster worker that
    is not the chief, trains beside the chief's (`train_as_worker`)."""

    def __init__(self, task: Task, config: TrainConfig, distribution: Any = None,
                 callbacks: list | None = None, progress: bool = False,
                 log_every: int | None = None, started: float | None = None) -> None:
        """started: the time.monotonic() a `max_time` budget counts from (None: when training
        begins)."""
        from seqmodels.training.distribute import make_train_step, scope
        from seqmodels.training.step import make_optimizer, make_steps

        self.task, self.config, self.distribution = task, config, distribution
        self.progress, self.log_every, self.started = progress, log_every, started
        # where no bar can be drawn (stderr a log file or a pipe), a line every LOG_SECONDS
        self._log_seconds = (LOG_SECONDS if progress and log_every is None
                             and not bar_drawn() else None)
        self.time: TimeSpent | None = None  # while training
        self.time_spent: dict[str, float] = {}  # the run's seconds by part, when training ends
        self._writes: dict[str, float] = {}  # seconds of the latest write of each file
        self._validation_estimate = 0.0  # seconds of one validation, before one is measured
        self._validation_measured = 0.0  # seconds of the latest validation
        self._at_validation = 0.0  # seconds of the latest validation's callbacks (samples)
        # Keras callbacks of the user's read every epoch's validation: none is skipped for them
        self._epoch_validations = any(not getattr(c, "seqmodels_own", False)
                                      for c in callbacks or [])
        if distribution is not None:  # the caller checked it at once; a cheap guard here
            distribution.check_batch(config.batch_size)
        with scope(distribution):
            self.optimizer = make_optimizer(config)
            self.optimizer.build(task.net.trainable_variables)
        jit = config.xla if config.xla is not None else task.jit
        self.train_step, self.eval_step = make_steps(task.net, self.optimizer, config,
                                                     task.objective, task.forward, jit,
                                                     task.training)
        if distribution is not None:
            self.train_step = make_train_step(distribution, task.net, self.optimizer, config,
                                              *(task.training or (task.objective,
                                                                  task.forward)))
        self.callbacks = keras_callbacks(callbacks, task.net, config.epochs, task.steps,
                                         self.optimizer)
        self._eval_shapes: set[tuple] = set()  # batch shapes the evaluation step has compiled
        self._compiled = False  # the first training step traces and compiles
        self._scheduled = 0.0  # the budget's seconds the schedule has reached
        self._records: int | None = None  # history rows written by this process

    def _timed(self, part: str):
        """Count a block's wall time to part of the run's time (training.timing)."""
        return self.time.on(part) if self.time is not None else nullcontext()

    @contextmanager
    def _write(self, what: str, run: RunDir) -> Iterator[None]:
        """A write of the run's files: timed, and a failure turned into one line (writing)."""
        start = time.monotonic()
        with self._timed("writes"), writing(what, run):
            yield
        self._writes[what] = time.monotonic() - start

    # ------------------------------------------------------------------ sessions

    def train(self, run_dir: str | Path | None, resuming: bool, settings: dict,
              name: str) -> tuple[RunDir, str]:
        """Train in run_dir (new: runs/<date>-<name> when None) and return it and why training
        stopped. settings is config.json's content."""
        created = run_dir is None or not Path(run_dir).exists()
        run = RunDir(run_dir) if resuming else RunDir.create(run_dir, name)
        with run.locked():
            p = Progress()
            if resuming:
                run.remove_stale_temporaries()
                run.check_replaceable()
                self._restore_latest(run, p)  # none: killed before the first, so step 0
            else:
                RunDir.check_new(run.path)  # again under the lock: a run may have started since
            try:
                if not resuming:
                    run.start()
                run.write_config(settings)  # on resume: with the new epochs, budget...
                self.task.write_files(run)
                # a kill may have come between checkpoint and CSV
                run.write_history(p.history, self.task.loss_label, p.loss_points)
                if run.latest_checkpoint() is None:
                    self._save(run, p)  # step 0, so a kill or a NaN always has a checkpoint
            except (OSError, SeqmodelsError) as exc:
                if isinstance(exc, OSError):
                    reason = (f"{exc.filename}: " if exc.filename else "") + (
                        exc.strerror or str(exc))
                else:
                    reason = getattr(exc, "reason", None) or str(exc)
                if resuming:  # every file is replaced atomically: the old one is still whole
                    raise SeqmodelsError(f"could not write in {run} ({reason}); the files "
                                         f"already there are intact") from None
                run.undo_start(created)
                raise SeqmodelsError(f"could not start the run in {run} ({reason}); nothing "
                                     f"was kept there") from None
            return run, self._fit(run, p)

    def train_as_worker(self, shared: str | Path | None) -> tuple[Progress, str, Any]:
        """A cluster worker that is not the chief: it reads the chief's run `shared` (to resume)
        and never writes it; its checkpoints, for rollback, go to a scratch folder.

        Returns the progress, why it stopped and the best model (the last one if none was kept).
        """
        with tempfile.TemporaryDirectory(prefix="seqmodels-worker-") as scratch:
            run = RunDir(scratch)
            run.start()
            p = Progress()
            if shared is not None:
                self._restore_latest(RunDir(shared), p)
            self._save(run, p)
            stop_reason = self._fit(run, p)
            if not run.model.exists() or self.task.load_best is None:
                return p, stop_reason, self.task.net
            return p, stop_reason, self.task.load_best(run)

    # ------------------------------------------------------------------ checkpoints

    def _save(self, run: RunDir, p: Progress, stats: IntervalStats | None = None) -> None:
        """Checkpoint the task's model, optimizer and carried states with the progress (and the
        sums since the last validation)."""
        p.partial = stats.to_json() if stats is not None and stats.steps else {}
        if self.time is not None:
            p.time_spent = self.time.totals()
        with self._write("checkpoint", run):
            checkpoint.write(run, self.task.net, self.optimizer, p,
                             self.task.state_variables())

    def _restore_latest(self, run: RunDir, p: Progress) -> bool:
        """Load the run's newest checkpoint into the task and p; False if there is none."""
        ckpt = checkpoint.load_latest(run)
        if ckpt is None:
            return False
        vars(p).update(vars(checkpoint.restore(ckpt, self.task.net, self.optimizer,
                                               self.task.state_variables())))
        return True

    def _write_records(self, run: RunDir, p: Progress) -> None:
        """The history and its plot from the validations in the progress (when this process
        has not written them as they are)."""
        if self._records == len(p.history):
            return
        with self._write("history", run):
            run.write_history(p.history, self.task.loss_label, p.loss_points)
        self._records = len(p.history)

    # ------------------------------------------------------------------ the loop

    def _fit(self, run: RunDir, p: Progress) -> str:
        """Train until the epochs, the time budget, early stopping or a signal end it."""
        clock = _Clock(p.seconds)
        self.time = TimeSpent(p.time_spent, self.started)
        if self.progress:
            self._announce(run, p)
        callbacks = self.callbacks
        if callbacks is not None:
            self.task.net.stop_training = False
            callbacks.set_params({**(callbacks.params or {}), "run_dir": str(run)})
            with self._timed("callbacks"):
                callbacks.on_train_begin()
        try:
            with _stop_requests() as stop:
                if self.config.max_time and p.epoch < self.config.epochs:
                    self._foresee_validation()
                while True:
                    try:
                        reason = self._epochs(run, p, clock, stop)
                        break
                    except _SignalWhileValidating:
                        reason = "signal"
                        break
                    except _NonFinite as exc:
                        self._roll_back_or_stop(run, p, str(exc))
        finally:  # also when training fails, so callbacks close their files
            if callbacks is not None:
                with self._timed("callbacks"):
                    callbacks.on_train_end(logs(p.history[-1]) if p.history else {})
            self.time_spent = self.time.totals()
        if self.progress:
            logger.info(self.time.summary())
        if reason == "signal":
            code = 143 if stop["signal"] == signal.SIGTERM else 130  # None: another worker's
            raise Interrupted(f"interrupted; checkpoint saved at epoch {p.epoch + 1}, step "
                              f"{p.step}", run.path, exit_code=code)
        return reason

    def _validation_loss(self, stop: dict | None = None, signals: int = 0) -> float:
        """The mean loss over the task's validation batches (the chief's, under several
        workers, so all agree); a signal in stop after the first `signals` ends it (one process
        only: workers must agree on every batch)."""
        total, count = 0.0, 0
        watch = stop if self.distribution is None else None
        for x, y in self.task.validation_batches():
            if watch is not None and watch["signals"] > signals:
                raise _SignalWhileValidating
            s, n = self._evaluate(x, y)
            total, count = total + s, count + n
        loss = total / count
        return loss if self.distribution is None else self.distribution.chief_value(loss)

    def _evaluate(self, x, y) -> tuple[float, int]:
        """One validation batch: the sum of its losses and their count (a batch of a shape not
        seen before traces and compiles the evaluation step: counted as compilation)."""
        shape = tuple(x.shape)
        first = shape not in self._eval_shapes
        with first_traces() if first else nullcontext(), (
                self._timed("compile") if first else nullcontext()):
            s, n = self.eval_step(x, y)
            s, n = float(s), int(n)
        self._eval_shapes.add(shape)
        return s, n

    def _foresee_validation(self) -> None:
        """Under a budget: compile the evaluation step for the shapes of the validation
        batches (a full one and a shorter last one) and time a second pass over the first, so
        that the validation at the end of the budget is foreseen."""
        task = self.task
        carried = [(v, v.numpy()) for _, v in task.state_variables()]
        shapes, count = {}, 0  # a batch of each shape, without holding the split
        with self._timed("validation"):
            for batch in task.validation_batches():
                shapes.setdefault(tuple(batch[0].shape), batch)
                count += 1
        reading = self.time.last["validation"]
        for batch in shapes.values():
            self._evaluate(*batch)  # compiles it
        if shapes:
            with self._timed("validation"):
                float(self.eval_step(*next(iter(shapes.values())))[0])
            self._validation_estimate = self.time.last["validation"] * count + reading
        for var, value in carried:
            var.assign(value)

    def _validation_seconds(self) -> float:
        """Seconds one validation takes with what comes with it (its callbacks, such as
        samples, and the best model's write): as the latest, or as foreseen."""
        return ((self._validation_measured or self._validation_estimate) + self._at_validation
                + self._writes.get("best model", self._writes.get("checkpoint", 0.0)))

    def _reserve(self) -> float:
        """Seconds a budgeted run needs after its last step: the final validation and what
        comes with it, the last checkpoint and history, with a margin."""
        writes = self._writes
        return RESERVE_SECONDS + RESERVE_MARGIN * (
            self._validation_seconds() + writes.get("checkpoint", 0.0)
            + writes.get("history", 0.0))

    def _out_of_time(self, ahead: float = 0.0) -> bool:
        """Whether the `max_time` budget, counted from the command's start (or the call's) with
        its end foreseen (_reserve) and `ahead` seconds more, is spent."""
        budget = self.config.max_time
        return bool(budget) and self.time.elapsed() + ahead + self._reserve() >= budget

    def _skips_validations(self) -> bool:
        """Whether a budget may skip validations before the final one: not with `eval_every`
        given; nor with Keras callbacks of the user's, `patience` or the plateau schedule,
        which read every validation; nor with several workers, who must validate together."""
        config, dist = self.config, self.distribution
        return bool(config.max_time) and not (
            config.eval_every is not None or self._epoch_validations or config.patience
            or config.schedule == "plateau" or (dist is not None and dist.workers > 1))

    def _affordable(self) -> bool:
        """Whether a validation before the final one keeps this process's validations within
        BUDGET_VALIDATION_SHARE of the budget (always where none is skipped)."""
        return not self._skips_validations() or validation_affordable(
            self.time.here["validation"], self._validation_seconds(), self.config.max_time)

    def _validation_allowed(self, p: Progress, every: int, steps: int, epoch: int) -> bool:
        """Whether a validation is due now (on the schedule, or at the epoch's end) and the
        budget lets it happen (the last epoch's end always)."""
        last = epoch + 1 == self.config.epochs and p.step >= steps
        return validation_due(p, every, steps) and (last or self._affordable())

    def _batches(self, epoch: int, start: int):
        """The epoch's batches from step `start` on, split over the replicas if distributed."""
        task = self.task
        ds = task.dataset(epoch).skip(start).take(task.steps - start)
        return ds if self.distribution is None else self.distribution.distribute(
            ds, task.batch_size)

    def _tokens(self, x) -> int:
        """Tokens in one (global) batch."""
        if self.distribution is None:
            return int(x.shape[0] * x.shape[1])
        local = self.distribution.strategy.experimental_local_results(x)[0]
        return self.task.batch_size * int(local.shape[-1])

    def _stop_code(self, stop: dict, out_of_time: bool, seconds: float) -> int:
        """Why to stop now (distribute.SIGNAL/MAX_TIME/NO_STOP), agreed by every worker."""
        code = SIGNAL if stop["signal"] is not None else MAX_TIME if out_of_time else NO_STOP
        return code if self.distribution is None else self.distribution.agree(code, seconds)

    def _budget_seconds(self) -> float:
        """Seconds of training in this process as a time-based schedule counts them: scaled
        so that the budget's foreseen last step is at `max_time` (start-up and the run's end
        take their part of it)."""
        budget = self.config.max_time
        if not budget:
            return self.time.training()
        training = budget - (self.time.began - self.time.started) - self._reserve()
        scaled = self.time.training() * budget / max(1e-3, training)
        self._scheduled = max(self._scheduled, scaled)  # a shrinking reserve never turns it back
        return self._scheduled

    def _schedule_seconds(self) -> float:
        """_budget_seconds, the chief's under several workers (each worker's own clock would
        give each its own learning rate)."""
        if self.distribution is None or self.distribution.workers == 1:
            return self._budget_seconds()
        return self.distribution.chief_seconds

    def _roll_back_or_stop(self, run: RunDir, p: Progress, what: str) -> None:
        """on_nan rollback: reload the last checkpoint and halve the rate, at most 3 times."""
        config = self.config
        where = f"{run} keeps its last good checkpoint and model"
        if config.on_nan != "rollback":
            raise SeqmodelsError(f"{what}; the weights were not updated and {where}; try a "
                                 f"lower `lr` or a smaller `clipnorm`, or `on_nan` rollback")
        if p.rollbacks >= MAX_ROLLBACKS:
            raise SeqmodelsError(f"{what} again after {MAX_ROLLBACKS} rollbacks, each halving "
                                 f"the learning rate; {where}; try a lower `lr` or a "
                                 f"`clipnorm`")
        rollbacks, scale = p.rollbacks + 1, p.lr_scale * 0.5
        self._restore_latest(run, p)  # there is always one: training starts with one
        p.rollbacks, p.lr_scale = rollbacks, scale
        lr = schedule_lr(config, p.epoch, p.step, self.task.steps, p.plateau_lr) * p.lr_scale
        warnings.warn(f"{what}; rolled back to epoch {p.epoch + 1}, step {p.step} and halved the "
                      f"learning rate to {lr:.3g} (rollback {rollbacks} of {MAX_ROLLBACKS})",
                      stacklevel=2)
        self._save(run, p, IntervalStats(p.partial))

    def _announce(self, run: RunDir, p: Progress) -> None:
        """Say what the run will do: where, how big, how long, when it validates."""
        task, config = self.task, self.config
        every = eval_every(config, task.val_tokens, task.batch_tokens)
        if p.global_step:  # resumed: say which limit stops it, the budget counting anew
            budget = config.resume_plan(p.epoch)
            start = f"resuming at epoch {p.epoch + 1}, step {p.step}; "
        else:
            budget = (f"{config.epochs} epoch(s)" if not config.max_time else
                      f"{config.epochs} epoch(s) or {duration_text(config.max_time)} ({COUNTED}),"
                      f" whichever comes first")
            start = ""
        cadence = f"at each epoch's end{f', every {every:,} steps' if every < task.steps else ''}"
        when = f"{cadence} and when training stops"
        if config.max_time and p.global_step and config.epochs > p.epoch:
            budget += f"; the budget: {COUNTED}"
        if self._skips_validations():
            when = (f"when training stops, and {cadence} while validations take at most "
                    f"{BUDGET_VALIDATION_SHARE:.0%} of the budget")
        logger.info(render(
            f"Training in {run}: {start}{task.net.count_params():,} parameters, "
            f"{task.steps:,} steps per epoch of {task.batch_tokens:,} {task.unit}; "
            f"{task.training_note + '; ' if task.training_note else ''}budget: "
            f"{budget}; validation on {task.val_tokens:,} {task.unit} {when}."))

    def _validate(self, run: RunDir, p: Progress, stats: IntervalStats, lr: float, epoch: int,
                  step: int, clock: _Clock, board, stop: dict | None = None) -> IntervalStats:
        """Validate the weights reached: one history row, the best model kept when it improves,
        the plateau schedule and early stopping's count; returns fresh sums for the next
        stretch. A signal in stop drops it (_SignalWhileValidating)."""
        with self._timed("validation"):
            stats = self._validate_timed(run, p, stats, lr, epoch, step, clock, board, stop)
        self._validation_measured = self.time.last["validation"]  # less its writes, callbacks
        return stats

    def _validate_timed(self, run: RunDir, p: Progress, stats: IntervalStats, lr: float,
                        epoch: int, step: int, clock: _Clock, board,
                        stop: dict | None = None) -> IntervalStats:
        task, config = self.task, self.config
        signals = stop["signals"] if stop else 0  # the one that stopped training validates
        carried = [(v, v.numpy()) for _, v in task.state_variables()]  # validation must not
        if self.callbacks is not None:  # disturb them
            with self._timed("callbacks"):
                self.callbacks.on_test_begin()
        try:
            val_loss = self._validation_loss(stop, signals)
        except _SignalWhileValidating:
            if self.callbacks is not None:
                with self._timed("callbacks"):
                    self.callbacks.on_test_end({})
            for var, value in carried:
                var.assign(value)
            p.seconds = clock.run_seconds()
            self._save(run, p, stats)  # the weights reached; a resumed run validates them
            raise
        for var, value in carried:
            var.assign(value)
        if not math.isfinite(val_loss):
            raise _NonFinite(f"the validation loss became NaN/Inf at epoch {epoch + 1}, step "
                             f"{step} (the weights are finite but their predictions overflow)")
        p.seconds = clock.run_seconds()
        p.last_validated_step = p.global_step
        metrics = task.val_metrics(val_loss)
        p.history.append({**stats.row(epoch + 1, step, p, lr, val_loss, metrics),
                          **self.time.columns()})
        if p.best_val_loss is None or val_loss < p.best_val_loss:
            with self._write("best model", run):
                task.save_best(run)
            p.best_val_loss, p.epochs_without_improvement = val_loss, 0
        else:
            p.epochs_without_improvement += 1
            if (config.schedule == "plateau"
                    and p.epochs_without_improvement % config.plateau_patience == 0):
                p.plateau_lr = lr / p.lr_scale * config.decay_factor
        row = p.history[-1]
        if self.callbacks is not None:
            with self._timed("callbacks"):
                self.callbacks.on_test_end({"loss": val_loss, **metrics})
            self._at_validation = self.time.last["callbacks"]
        _log(board, run, p.global_step, {f"validation/{k}": row[k] for k in
                                    ("val_loss", *metrics, "tokens_per_s")})
        if self.progress:
            shown = "  ".join(f"{k} {row[k]:.4g}" if row[k] is not None else f"{k} overflows"
                              for k in metrics)
            where = f"epoch {epoch + 1}/{config.epochs}" + (f" step {step}" if step < task.steps
                                                              else "")
            logger.info(f"{where}: loss {row['loss']:.4f}  val_loss {val_loss:.4f}  {shown}  "
                        f"{row['tokens_per_s']:,.0f} {task.unit}/s")
        return IntervalStats()

    def _epochs(self, run: RunDir, p: Progress, clock: _Clock, stop: dict) -> str:
        """The loop proper; returns why it ended, or raises _NonFinite."""
        task, config, callbacks = self.task, self.config, self.callbacks
        board = _tensorboard(run) if config.tensorboard else None
        steps = task.steps
        every = eval_every(config, task.val_tokens, task.batch_tokens)
        lr = schedule_lr(config, p.epoch, p.step, steps, p.plateau_lr) * p.lr_scale
        stats = IntervalStats(p.partial)
        shown = {"tokens": 0, "seconds": 0.0, "steps": 0}  # the bar's speed, without step one

        def checkpoint_now() -> None:
            p.seconds = clock.run_seconds()
            self._save(run, p, stats)

        logged = time.perf_counter()  # the latest progress line
        point = [0.0, 0]  # loss sum and steps since the latest loss point
        for epoch in range(p.epoch, config.epochs):
            if task.start_epoch is not None and p.step == 0:
                task.start_epoch()
            if callbacks is not None:
                with self._timed("callbacks"):
                    callbacks.on_epoch_begin(epoch)
            bar = progress_bar(total=steps, initial=p.step, unit="step", leave=False,
                               desc=f"epoch {epoch + 1}/{config.epochs}", show=self.progress)
            with bar:
                last, start = time.perf_counter(), p.step
                for x, y in self._batches(epoch, p.step):
                    lr = schedule_lr(config, epoch, p.step, steps, p.plateau_lr,
                                     self._schedule_seconds()) * p.lr_scale
                    self.optimizer.learning_rate.assign(lr)
                    if callbacks is not None:
                        with self._timed("callbacks"):
                            callbacks.on_train_batch_begin(p.step)
                    t0 = time.perf_counter()
                    first = not self._compiled  # of this process: it compiles
                    with (first_traces() if p.step == start else nullcontext(),
                          self._timed("compile") if first else nullcontext()):
                        loss, norm, finite = self.train_step(x, y)
                    self._compiled = True
                    loss, norm = float(loss), float(norm)
                    now = time.perf_counter()
                    if not bool(finite):
                        raise _NonFinite(f"the loss or gradient became NaN/Inf at epoch "
                                         f"{epoch + 1}, step {p.step + 1} (loss {loss}, gradient "
                                         f"norm {norm})")
                    clipped = config.clipnorm is not None and norm > config.clipnorm
                    tokens = self._tokens(x)
                    stats.add(loss, norm, clipped, tokens, now - t0, now - last)
                    point[0], point[1] = point[0] + loss, point[1] + 1
                    if shown["steps"]:  # the first step of a process compiles: left out
                        shown["tokens"] += tokens
                        shown["seconds"] += now - last
                    shown["steps"] += 1
                    last = now
                    p.step += 1
                    p.global_step += 1
                    p.tokens += tokens
                    if point[1] == LOSS_POINT_STEPS:
                        p.loss_points.append([p.tokens, point[0] / point[1]])
                        point[:] = [0.0, 0]
                        if len(p.loss_points) > MAX_LOSS_POINTS:  # pairs merged: the curve
                            p.loss_points = _halved(p.loss_points)  # keeps its whole span
                    bar.update()
                    speed = shown["tokens"] / shown["seconds"] if shown["seconds"] else 0.0
                    bar.set_postfix(loss=f"{loss:.3f}", **({"tok_s": f"{speed:,.0f}"} if speed
                                                          else {}))  # the first step compiles
                    if (self.log_every and p.global_step % self.log_every == 0) or (
                            self._log_seconds and now - logged >= self._log_seconds):
                        logged = now
                        logger.info(_log_line(epoch, config.epochs, p, steps, loss, norm, speed,
                                              task.unit))
                    _log(board, run, p.global_step, {"train/loss": loss, "train/lr": lr,
                                                "train/grad_norm_before_clipping": norm})
                    if callbacks is not None:
                        with self._timed("callbacks"):
                            callbacks.on_train_batch_end(p.step - 1, {
                                "loss": loss, "grad_norm": norm, "lr": lr, "epoch": epoch,
                                "step": p.step, "global_step": p.global_step})
                    if config.checkpoint_every and p.global_step % config.checkpoint_every == 0:
                        checkpoint_now()
                    asked = callbacks is not None and bool(task.net.stop_training)
                    # a validation due now or at the epoch's end that would leave the budget no
                    # room after it is the final one: training stops here
                    due = self._validation_allowed(p, every, steps, epoch)
                    ahead = self._validation_seconds() if due else 0.0
                    code = self._stop_code(stop, self._out_of_time(ahead) or asked,
                                           self._budget_seconds())
                    if validation_due(p, every, steps, stopping=bool(code)) and (
                            code or p.step < steps and due):  # (an epoch's end validates below)
                        stats = self._validate(run, p, stats, lr, epoch, p.step, clock, board,
                                               stop)
                        self._write_records(run, p)
                        last = time.perf_counter()  # validation is not training time
                        if not code and config.patience and (
                                p.epochs_without_improvement >= config.patience):
                            checkpoint_now()
                            return "early-stopping"
                    if code:
                        checkpoint_now()
                        return "signal" if code == SIGNAL else "callback" if asked else "max-time"
                    if callbacks is not None and task.net.stop_training:  # asked at validation
                        checkpoint_now()
                        return "callback"
            if self._validation_allowed(p, every, steps, epoch):  # the epoch's end
                stats = self._validate(run, p, stats, lr, epoch, steps, clock, board, stop)
            p.epoch, p.step = epoch + 1, 0
            checkpoint_now()
            self._write_records(run, p)
            if callbacks is not None:
                with self._timed("callbacks"):
                    callbacks.on_epoch_end(epoch, logs(p.history[-1]) if p.history else {})
                if task.net.stop_training:  # e.g. keras.callbacks.EarlyStopping
                    return "callback"
            if config.patience and p.epochs_without_improvement >= config.patience:
                return "early-stopping"
            if self._stop_code(stop, False, self._budget_seconds()) == SIGNAL:
                return "signal"
        return "completed"


def _halved(points: list) -> list:
    """Loss points with each pair merged: the later one's tokens, the pair's mean loss."""
    merged = [[b[0], (a[1] + b[1]) / 2] for a, b in zip(points[::2], points[1::2])]
    return merged + ([points[-1]] if len(points) % 2 else [])


def _log_line(epoch: int, epochs: int, p: Progress, steps: int, loss: float, norm: float,
              speed: float, unit: str = "tokens") -> str:
    return (f"epoch {epoch + 1}/{epochs} step {p.step}/{steps} (global {p.global_step}): "
            f"loss {loss:.4f}, gradient norm {norm:.3g}, {speed:,.0f} {unit}/s")


def _tensorboard(run: RunDir):
    """A summary writer for the run's TensorBoard folder (needs the tensorboard package)."""
    import importlib.util

    from seqmodels.backend import import_tf

    if importlib.util.find_spec("tensorboard") is None:
        raise SeqmodelsError(f"`tensorboard` needs the tensorboard package: "
                             f"{pip_install('tensorboard')}")
    return import_tf().summary.create_file_writer(str(run.tensorboard))


def _log(board, run: RunDir, step: int, scalars: dict[str, float]) -> None:
    """Write scalars to TensorBoard when a writer is open."""
    if board is None:
        return
    from seqmodels.backend import import_tf

    tf = import_tf()
    with writing("TensorBoard log", run), board.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(name, value)
        board.flush()
