"""`seqmodels train`: train a language model into a run directory."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

import click

from seqmodels.cli.options import (
    Finite,
    NamedPath,
    SectionedCommand,
    check_optimizer_options,
    check_resume_options,
    config_file_option,
    config_from,
    data_config_from,
    data_options,
    distribution_options,
    eval_tokens_option,
    given_options,
    json_option,
    model_options,
    optimizer_options,
    option_name,
    resume_changes,
    resume_options,
    run_options,
    run_options_from,
    train_config_from,
    window_options,
)
from seqmodels.errors import ResumableError
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.sampled import AUTO_FROM, AUTO_SAMPLES
from seqmodels.lm.samples import MAX_SAMPLE_LENGTH
from seqmodels.lm.train import train as train_run
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import TrainConfig
from seqmodels.training.history import epochs_done, perplexity
from seqmodels.training.rundir import RunDir


@contextmanager
def resume_hint(command: str) -> Iterator[None]:
    """A training that stopped with its run whole names the command that resumes it."""
    try:
        yield
    except ResumableError as exc:
        raise exc.resume_with(f"{command} --resume {shell_quoted(exc.run_dir)}") from None


def shell_quoted(path: object) -> str:
    """A path as a shell reads it back: 'my runs/x' quoted, runs/x as it is."""
    import shlex

    return shlex.quote(str(path))


@click.command(cls=SectionedCommand)
@config_file_option
@data_options
@model_options(ModelConfig(), fitted="With --max-time at char or byte level (the default "
               "LSTM, batch and window) and neither --layers nor --units given, the size is "
               "fitted to the budget (the run's first line says which and why).")
@optimizer_options(TrainConfig(), "Windows per step (streams per step with --stateful).")
@window_options(WindowConfig())
@eval_tokens_option
@run_options(TrainConfig())
@resume_options("<cell>-<level>")
@distribution_options
@click.option("--sample-every", type=click.IntRange(min=0), default=None,
              help=f"Print a short sample every N steps and append it to {RunDir.SAMPLES} in the "
                   f"run (0: never). Default: at every validation, none with --quiet.")
@click.option("--sample-prompt", default=None,
              help="Prompt of those samples (default: a newline, if the vocabulary has one).")
@click.option("--sample-temperature", type=Finite(min=0), multiple=True, default=(0.8,),
              show_default=True, help="Temperature of those samples; repeat for several.")
@click.option("--sample-length", type=click.IntRange(1, MAX_SAMPLE_LENGTH), default=200,
              show_default=True, help="Tokens in each of those samples.")
@click.option("--init-from", type=NamedPath(file_okay=False), default=None, metavar="RUN",
              help="Start a new run from this run's model (or a built-in one by name): its "
                   "shape and weights, and for the tokens both vocabularies share, their rows; "
                   "the corpus, rate, schedule and budget are this run's own.")
@click.option("--sampled-softmax", type=click.IntRange(min=0), default=None, metavar="K",
              help="Train on a softmax over the true token and K ids drawn log-uniformly (0: "
                   "the full softmax); validation and evaluation use the full one [default: "
                   f"{AUTO_SAMPLES} for vocabularies of {AUTO_FROM:,} ids or more ranked by "
                   "frequency (char, word, byte), else 0].")
@json_option("the run's path and results")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, samples or summary.")
def train(**kw) -> None:
    """Train a language model on a corpus (default: the built-in kjv) into a run directory."""
    ctx = click.get_current_context()
    _check_train_options(ctx, kw)
    resuming = bool(kw["resume"])
    options = run_options_from(kw, [*kw["callback"], *_sampling(kw)])
    model = _start(ctx, kw) if kw["init_from"] else _model(ctx, kw)
    with resume_hint("seqmodels train"):
        run = train_run(None if resuming else data_config_from(kw),
                        model,
                        None if resuming else train_config_from(kw),
                        None if resuming else config_from(WindowConfig, kw),
                        out=kw["out"], resume=kw["resume"], changes=_resumed(ctx, kw),
                        options=options)
    if run.path is None:  # a worker that is not the chief
        if not kw["quiet"]:
            click.echo(f"This worker's part is done after {epochs_done(run.history)} epoch(s); the "
                       "chief (worker 0) wrote the run directory.", err=True)
        return
    if not kw["quiet"]:
        click.echo(run_summary(run), err=True)
    click.echo(json.dumps(run_results(run)) if kw["as_json"] else str(run.path))


def _resumed(ctx: click.Context, kw: dict) -> dict | None:
    """The changes of a resumed run: its resumable options, and CORPUS where the run's corpus
    has moved (accepted only when its content is the same)."""
    changes = resume_changes(ctx, kw)
    if changes is not None and kw["corpus"]:
        changes["corpus"] = list(kw["corpus"])
    return changes


def _model(ctx: click.Context, kw: dict) -> ModelConfig | None:
    """A new run's model settings: the size fitted to --max-time when the options leave it open
    (the choice said in one line); None when resuming."""
    if kw["resume"]:
        return None
    from seqmodels.lm.sizing import fit_to_budget, fits_budget

    model = config_from(ModelConfig, kw)
    if (kw["max_time"] and kw["strategy"] == "default"
            and fits_budget(kw["level"], kw["cell"], kw["batch_size"], kw["seq_len"])
            and not given_options(ctx) & {"layers", "units"}):
        from seqmodels.lm.train import _check_run_dir

        _check_run_dir(kw["out"], None)  # a refusal before the probe loads TensorFlow
        fitted = fit_to_budget(model, kw["max_time"])
        if not kw["quiet"]:
            click.echo(fitted.reason, err=True)
        model = fitted.config
    return model


ARCHITECTURE = ("cell", "layers", "units", "embedding_dim")  # what --init-from's model fixes
TOKENS = ("level", "tokenizer", "normalize", "lowercase")  # what it reads, unless given


def _start(ctx: click.Context, kw: dict):
    """The model --init-from names, with the regularisation options given here; the options
    that say how text becomes tokens take its values unless given (kw is updated)."""
    import dataclasses

    from seqmodels.lm.model import load

    start = load(kw["init_from"])
    given = given_options(ctx)
    for name in ARCHITECTURE:
        if name in given and kw[name] != getattr(start.config, name):
            raise click.UsageError(f"{option_name(name)} {kw[name]} contradicts the model of "
                                   f"--init-from ({getattr(start.config, name)}); the shape comes "
                                   f"from it: leave {option_name(name)} out")
    start.config = dataclasses.replace(start.config, **{
        name: kw[name] for name in dataclasses.asdict(start.config)
        if name in given and name not in ARCHITECTURE})
    for name in TOKENS:
        if name not in given:
            kw[name] = getattr(start.data, name)
    return start


def _sampling(kw: dict) -> list:
    """The samples-while-training the options ask for ([] for none)."""
    every = kw["sample_every"]
    if every == 0 or (every is None and kw["quiet"]):
        return []
    from seqmodels.lm.samples import Samples

    return [Samples(every, kw["sample_prompt"], tuple(kw["sample_temperature"]),
                    kw["sample_length"], seed=kw.get("seed") or 0, show=not kw["quiet"])]


def _check_train_options(ctx: click.Context, kw: dict) -> None:
    """Refuse option combinations that would be silently ignored."""
    given = given_options(ctx)
    if kw["init_from"] and kw["resume"]:
        raise click.UsageError("--init-from starts a new run; --resume continues one: give one")
    check_resume_options(ctx, kw, "CORPUS", False)  # with --resume: the same corpus, moved
    check_optimizer_options(ctx, kw)
    shaping = sorted(given & {"sample_prompt", "sample_temperature", "sample_length"})
    if shaping and (kw["sample_every"] == 0 or (kw["quiet"] and "sample_every" not in given)):
        why = "--sample-every 0 takes none" if kw["sample_every"] == 0 else (
            "--quiet takes none unless --sample-every N is given")
        raise click.UsageError(f"{', '.join(option_name(n) for n in shaping)}: settings of "
                               f"the samples while training, but {why}")
    temperatures = kw["sample_temperature"]
    if len(set(temperatures)) != len(temperatures):
        raise click.UsageError("--sample-temperature names a temperature twice")
    if kw["stateful"] and "stride" in given:
        raise click.UsageError("--stateful reads consecutive windows; --stride does not apply")
    if kw["strategy"] != "multi-worker" and given & {"workers_spec", "worker_index"}:
        raise click.UsageError("--workers-spec and --worker-index go with --strategy "
                               "multi-worker")
    if kw["workers_spec"] is not None and kw["worker_index"] is None:
        raise click.UsageError("--workers-spec needs --worker-index, this process's place in "
                               "it (0 is the chief)")
    if kw["stateful"] and kw["strategy"] != "default":
        raise click.UsageError(f"--stateful cannot be combined with --strategy "
                               f"{kw['strategy']}")


def run_summary(run) -> str:
    """One paragraph: how training ended, the best validation figures, where, what next."""
    best = run.best_val_loss
    how = {"completed": "finished", "max-time": "stopped at the --max-time budget",
           "early-stopping": "stopped early (no better validation loss)",
           "callback": "stopped by a callback"}[run.stop_reason]
    unit = run.model.tokenizer.unit_short
    last = run.history[-1] if run.history else {}
    done = (f"after {int(last['global_step']):,} steps ({int(last['tokens']):,} tokens, epoch "
            f"{int(last['epoch'])})" if "global_step" in last else
            f"after {epochs_done(run.history)} epoch(s)")
    shown = perplexity(best) if best is not None else None
    figures = (f"best validation loss {best:.4f} nats/{unit} (perplexity "
               f"{'beyond any float' if shown is None else f'{shown:.2f}'}, "
               f"{best / math.log(2):.3f} bits/{unit}), kept in {RunDir.MODEL}"
               if best is not None else "nothing validated yet")
    return (f"Training {how} {done}: {figures}. Saved in {run.path}. Next: "
            f"{next_step(run.path, run.stop_reason, run.settings['train'])}")


def run_results(run) -> dict:
    """What --json prints: where the run is, how it ended, its best figures, its time."""
    last = run.history[-1] if run.history else {}
    best = run.best_val_loss
    return {"run": str(run.path), "stop_reason": run.stop_reason,
            "epochs": epochs_done(run.history), "global_step": int(last.get("global_step", 0)),
            "tokens": int(last.get("tokens", 0)), "best_val_loss": best,
            "best_val_perplexity": perplexity(best) if best is not None else None,
            "full_val_loss": run.full_val_loss, "unit": run.model.tokenizer.unit_short,
            "time_seconds": run.time_spent}


def next_step(path, stop_reason: str, train: dict) -> str:
    """The command that trains the run longer, and what it would do."""
    from seqmodels.training.config import duration_text

    if stop_reason in ("max-time", "callback", "signal") and train.get("max_time"):
        return (f"seqmodels train --resume {shell_quoted(path)} trains for another "
                f"{duration_text(train['max_time'])} (its --max-time; give another, or --max-time "
                f"none to stop at --epochs {train['epochs']} only).")
    return (f"seqmodels train --resume {shell_quoted(path)} --epochs N (above "
            f"{train['epochs']}) trains longer.")
