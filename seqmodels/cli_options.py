"""Option parsers shared by the command modules (cli, cli_forecast)."""

from __future__ import annotations

import functools

import click

from seqmodels.errors import SeqmodelsError


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """--max-time: seconds from '90s', '10m', '2h'; a budget of 0 is refused."""
    from seqmodels.training import parse_duration

    try:
        seconds = None if value is None else parse_duration(value)
    except SeqmodelsError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds is not None and seconds <= 0:
        raise click.BadParameter(f"{value!r} is no time at all; give a budget above 0")
    return seconds


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (which compare False to any bound)."""

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


def _stack(options: list, f):
    """Apply click decorators so they appear in --help in the order listed."""
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


def regularizer_options(f):
    """Recurrent dropout and L1/L2 penalties on the recurrent layers' kernels."""
    return _stack([
        click.option("--recurrent-dropout", type=Finite(0, 1, max_open=True), default=0.0,
                     show_default=True, help="Dropout on the recurrent state (turns cuDNN off)."),
        click.option("--l1", type=Finite(min=0), default=0.0, show_default=True,
                     help="L1 penalty on kernels and recurrent kernels."),
        click.option("--l2", type=Finite(min=0), default=0.0, show_default=True,
                     help="L2 penalty on kernels and recurrent kernels."),
    ], f)


def optimizer_options(f):
    """How the weights move: optimizer, learning rate and schedule, clipping, early stopping."""
    return _stack([
        click.option("--optimizer", type=click.Choice(["adam", "sgd", "rmsprop", "adagrad"]),
                     default="adam", show_default=True,
                     help="Optimizer (sgd uses momentum 0.9)."),
        click.option("--lr", type=Finite(min=0, min_open=True), default=None,
                     help="Learning rate [default: adam 2e-3, sgd 1.0, rmsprop 1e-3, "
                          "adagrad 0.1]."),
        click.option("--schedule", type=click.Choice(["constant", "step", "cosine", "plateau"]),
                     default="constant", show_default=True, help="Learning-rate schedule."),
        click.option("--decay-factor", type=Finite(0, 1, min_open=True), default=0.5,
                     show_default=True, help="step/plateau: multiply the rate by this."),
        click.option("--decay-after", type=click.IntRange(min=0), default=4, show_default=True,
                     help="step: decay once per epoch after this epoch."),
        click.option("--clipnorm", type=Finite(min=0, min_open=True), default=1.0,
                     show_default=True, help="Clip the global gradient norm to this."),
        click.option("--clipvalue", type=Finite(min=0, min_open=True), default=None,
                     help="Clip each gradient element to [-v, v]."),
        click.option("--no-clip", is_flag=True, help="No gradient clipping at all."),
        click.option("--patience", type=click.IntRange(min=1), default=None,
                     help="Stop after this many epochs without a better validation loss."),
    ], f)


def run_options(f):
    """How a run goes: time budget, seeds, checkpoints, logging, what to do on NaN."""
    return _stack([
        click.option("--max-time", callback=duration, default=None,
                     help="Budget for the training loop such as 90s, 10m, 2h (start-up and the "
                          "last validation come on top); stops cleanly and keeps the best model."),
        click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
                     help="Seed for initialisation, shuffling and dropout."),
        click.option("--deterministic", is_flag=True, help="Enable TensorFlow op determinism."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
                     help="Also checkpoint every N steps (always at each epoch end)."),
        click.option("--steps-per-epoch", type=click.IntRange(min=1), default=None,
                     help="Cap the steps of each epoch (quick runs)."),
        click.option("--tensorboard", is_flag=True, help="Write TensorBoard logs into the run."),
        click.option("--on-nan", type=click.Choice(["stop", "rollback"]), default=None,
                     help="When the loss turns NaN/Inf: stop (keeping the last good checkpoint), "
                          "or reload that checkpoint at half the learning rate, at most 3 times "
                          "[default: stop]."),
        click.option("--log-every", type=click.IntRange(min=1), default=None,
                     help="Print a progress line to stderr every N steps (for logs and pipes)."),
        click.option("--xla/--no-xla", default=None,
                     help="Compile the training and evaluation steps with XLA [default: on for "
                          "LSTM/GRU language models of 64 units or more on a CPU, where it "
                          "pays for its few seconds of compiling]."),
    ], f)


def distribution_options(f):
    """--strategy and the cluster of --strategy multi-worker."""
    return _stack([
        click.option("--strategy", type=click.Choice(["default", "mirrored", "multi-worker"]),
                     default="default", show_default=True,
                     help="tf.distribute strategy: mirrored = every local GPU (or CPU device), "
                          "multi-worker = several machines (TF_CONFIG or --workers-spec). "
                          "--batch-size stays the global batch, split over the replicas."),
        click.option("--workers-spec", default=None, metavar="HOST:PORT,...",
                     help="multi-worker: every worker's address, the chief first (instead of "
                          "TF_CONFIG); start the same command on each with its --worker-index."),
        click.option("--worker-index", type=click.IntRange(min=0), default=None,
                     help="multi-worker: this process's place in --workers-spec (0: the chief, "
                          "which alone writes the run directory)."),
    ], f)
