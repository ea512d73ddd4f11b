"""The `seqmodels` command line: thin click commands over the library."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from seqmodels import __version__
from seqmodels.cli_options import (
    Finite,
    distribution_options,
    optimizer_options,
    regularizer_options,
    run_options,
)
from seqmodels.errors import SeqmodelsError


def _one_line(message: object) -> str:
    """A message on one line: the error output is always exactly one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


class _Group(click.Group):
    """A click group that turns SeqmodelsError into a one-line error and its exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeqmodelsError as exc:
            code = getattr(exc, "exit_code", 1)
            if code == 1:
                raise click.ClickException(_one_line(exc)) from None
            click.echo(_one_line(exc), err=True)
            ctx.exit(code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:  # a path the user gave cannot be created, read or written
            where = exc.filename or "a file"
            raise click.ClickException(_one_line(f"{where}: {exc.strerror or exc}")) from None
        except MemoryError:
            raise click.ClickException("out of memory: the corpus or model is too large for "
                                       "this machine") from None
        except Exception as exc:
            if type(exc).__name__ == "ResourceExhaustedError":  # TensorFlow out of memory
                raise click.ClickException("out of memory: the model or batch is too large for "
                                           "this machine; use fewer --units or a smaller "
                                           "--batch-size") from None
            raise


def _parse_splits(ctx, param, value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        raise click.BadParameter("give three numbers like 0.9,0.05,0.05") from None
    from seqmodels.windows import check_fractions

    try:
        return check_fractions(parts)
    except SeqmodelsError as exc:
        raise click.BadParameter(str(exc)) from None


def _encoding(ctx, param, value: str) -> str:
    """The name of a text encoding Python knows."""
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (try utf-8 or latin-1)") from None
    return value


def data_options(f):
    """Options that decide how a corpus becomes token ids (shared by every data command)."""
    options = [
        click.argument("corpus", nargs=-1),
        click.option("--level", type=click.Choice(["char", "word"]), default="char",
                     show_default=True, help="Model characters (code points) or words."),
        click.option("--tokenizer", type=click.Choice(["nltk", "treebank", "wordpunct",
                     "whitespace"]), default=None,
                     help="Word tokenizer (word level only; default nltk = word_tokenize)."),
        click.option("--lowercase", is_flag=True, help="Lowercase the text first."),
        click.option("--normalize", type=click.Choice(["NFC", "NFKC", "NFD", "NFKD", "none"]),
                     default="NFC", show_default=True, help="Unicode normalisation."),
        click.option("--encoding", default="utf-8", show_default=True, callback=_encoding,
                     help="Text encoding of the corpus files."),
        click.option("--errors", type=click.Choice(["strict", "replace", "ignore"]),
                     default="strict", show_default=True,
                     help="What to do with bytes that do not decode."),
        click.option("--stopwords", type=click.Path(dir_okay=False), default=None,
                     help="File of words (one a line) to remove (word level)."),
        click.option("--min-freq", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Tokens seen fewer times in the training split become <unk>."),
        click.option("--max-vocab", type=click.IntRange(min=3), default=None,
                     help="Cap the vocabulary size, <pad> and <unk> included."),
        click.option("--splits", default="0.9,0.05,0.05", show_default=True,
                     callback=_parse_splits, help="Train,validation,test fractions (contiguous)."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Where encoded corpora are cached [default: ~/.cache/seqmodels]."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Processes that tokenize the corpus [default: all cores; 1: this "
                          "process only]."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


def data_config_from(kwargs: dict):
    """Pop the data options out of a command's keyword arguments into a DataConfig."""
    from seqmodels.prepare import DataConfig

    return DataConfig(
        corpus=list(kwargs.pop("corpus")),
        level=kwargs.pop("level"),
        tokenizer=kwargs.pop("tokenizer"),
        lowercase=kwargs.pop("lowercase"),
        normalize=kwargs.pop("normalize"),
        encoding=kwargs.pop("encoding"),
        errors=kwargs.pop("errors"),
        stopwords=kwargs.pop("stopwords"),
        min_freq=kwargs.pop("min_freq"),
        max_vocab=kwargs.pop("max_vocab"),
        splits=kwargs.pop("splits"),
        workers=kwargs.pop("workers"),
    )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="seqmodels")
def cli() -> None:
    """Train, evaluate and sample recurrent sequence models (LSTM, GRU, SimpleRNN).

    With no corpus argument, commands use the built-in King James Bible text (kjv).
    """


@cli.command()
@data_options
@click.option("--seq-len", "-T", type=click.IntRange(min=1), default=100, show_default=True,
              help="Window length used to count training windows.")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Step between window starts [default: the window length].")
@click.option("--stateful", is_flag=True,
              help="Carry the hidden state across consecutive windows (truncated BPTT).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--export", type=click.Path(dir_okay=False), default=None,
              help="Also write the corpus text (decoded, normalised) to this file.")
@click.option("--force", is_flag=True, help="Let --export replace an existing file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def corpus(**kwargs) -> None:
    """Describe a corpus before training: size, vocabulary, coverage, splits, windows.

    CORPUS is any mix of files, directories (every *.txt below) and glob patterns,
    or the name of a built-in corpus (kjv).
    """
    from seqmodels.prepare import prepare_corpus
    from seqmodels.report import corpus_report, format_corpus_report
    from seqmodels.windows import require_windows

    config = data_config_from(kwargs)
    if kwargs["export"]:
        _export_text(config, Path(kwargs["export"]), kwargs["force"])
    prepared = prepare_corpus(
        config, cache_dir=kwargs["cache_dir"], use_cache=not kwargs["no_cache"],
        progress=not kwargs["quiet"],
    )
    require_windows(len(prepared.splits.train), kwargs["seq_len"], kwargs["stride"],
                    "training split")
    report = corpus_report(prepared, kwargs["seq_len"], kwargs["stride"])
    if kwargs["as_json"]:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(format_corpus_report(report))


def _export_text(config, path: Path, force: bool) -> None:
    """Write the decoded, normalised corpus text to path, never over a file unless forced."""
    from seqmodels.files import write_text_atomic
    from seqmodels.prepare import corpus_text

    if path.exists() and not force:
        raise SeqmodelsError(f"{path} exists; pass --force to replace it")
    text = corpus_text(config, config.corpus)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    click.echo(f"wrote {len(text):,} characters to {path}", err=True)


@cli.command()
@data_options
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default="lstm",
              show_default=True, help="Recurrent cell (rnn = SimpleRNN).")
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Recurrent layers stacked.")
@click.option("--units", type=click.IntRange(min=1), default=256, show_default=True,
              help="Units (hidden size) of each recurrent layer.")
@click.option("--embedding-dim", type=click.IntRange(min=1), default=64, show_default=True,
              help="Size of the token embedding.")
@click.option("--dropout", type=Finite(0, 1, max_open=True), default=0.0,
              show_default=True, help="Dropout on inputs and between layers.")
@regularizer_options
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Passes over the training split [default: 10].")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Windows per step (streams per step with --stateful).")
@click.option("--seq-len", "-T", type=click.IntRange(min=1), default=100, show_default=True,
              help="Tokens per window (truncated BPTT length).")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Step between window starts [default: the window length].")
@click.option("--stateful", is_flag=True,
              help="Carry the hidden state across consecutive windows (truncated BPTT).")
@optimizer_options
@run_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/<date-time>-<cell>-<level>].")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this directory from its last checkpoint, with its saved "
                   "settings (only --epochs, --max-time, --on-nan, --xla and --strategy can "
                   "change).")
@distribution_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
def train(**kw) -> None:
    """Train a language model on a corpus (default: the built-in kjv) into a run directory."""
    from seqmodels.models import ModelConfig
    from seqmodels.trainer import train as train_run
    from seqmodels.training import TrainConfig

    _check_train_options(click.get_current_context(), kw)
    data = data_config_from(kw)
    model = ModelConfig(cell=kw["cell"], layers=kw["layers"], units=kw["units"],
                        embedding_dim=kw["embedding_dim"], dropout=kw["dropout"],
                        recurrent_dropout=kw["recurrent_dropout"], l1=kw["l1"], l2=kw["l2"])
    config = TrainConfig(
        epochs=kw["epochs"] or 10, batch_size=kw["batch_size"], seq_len=kw["seq_len"],
        stride=kw["stride"], optimizer=kw["optimizer"], lr=kw["lr"], schedule=kw["schedule"],
        decay_factor=kw["decay_factor"], decay_after=kw["decay_after"],
        clipnorm=None if kw["no_clip"] else kw["clipnorm"],
        clipvalue=None if kw["no_clip"] else kw["clipvalue"], patience=kw["patience"],
        max_time=kw["max_time"], seed=kw["seed"], deterministic=kw["deterministic"],
        stateful=kw["stateful"], checkpoint_every=kw["checkpoint_every"],
        steps_per_epoch=kw["steps_per_epoch"], tensorboard=kw["tensorboard"],
        on_nan=kw["on_nan"] or "stop", xla=kw["xla"],
    )
    run = train_run(data, model, config, out=kw["out"], resume=kw["resume"],
                    cache_dir=kw["cache_dir"], progress=not kw["quiet"],
                    epochs=kw["epochs"] if kw["resume"] else None,
                    max_time=kw["max_time"] if kw["resume"] else None,
                    on_nan=kw["on_nan"] if kw["resume"] else None,
                    xla=kw["xla"] if kw["resume"] else None, log_every=kw["log_every"],
                    workers=data.workers, strategy=kw["strategy"],
                    workers_spec=kw["workers_spec"], worker_index=kw["worker_index"])
    if run.path is None:  # a worker that is not the chief
        if not kw["quiet"]:
            click.echo(f"This worker's part is done after {len(run.history)} epoch(s); the "
                       "chief (worker 0) wrote the run directory.", err=True)
        return
    if not kw["quiet"]:
        click.echo(run_summary(run), err=True)
    click.echo(str(run.path))


RESUMABLE = {"resume", "epochs", "max_time", "on_nan", "log_every", "workers", "quiet",
             "cache_dir", "strategy", "workers_spec", "worker_index", "xla"}


def _check_train_options(ctx: click.Context, kw: dict) -> None:
    """Refuse option combinations that would be silently ignored."""
    from click.core import ParameterSource

    given = {name for name in kw
             if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    flag = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
    if kw["resume"]:
        extra = sorted(given - RESUMABLE - {"corpus"}) + (["CORPUS"] if kw["corpus"] else [])
        if extra:
            names = ", ".join(flag.get(n, n) for n in extra)
            raise click.UsageError(f"--resume continues a run with its saved settings; "
                                   f"these cannot change: {names}")
    if kw["no_clip"] and given & {"clipnorm", "clipvalue"}:
        raise click.UsageError("--no-clip turns clipping off; drop --clipnorm/--clipvalue")
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
    import math

    best = run.best_val_loss
    how = {"completed": "finished", "max-time": "stopped at the --max-time budget",
           "early-stopping": "stopped early (no better validation loss)"}[run.stop_reason]
    unit = "char" if run.config["data"].get("level") == "char" else "token"
    figures = (f"best validation loss {best:.4f} nats/{unit} (perplexity {math.exp(best):.2f}, "
               f"{best / math.log(2):.3f} bits/{unit})" if best is not None else
               "no full epoch finished yet")
    return (f"Training {how} after {len(run.history)} epoch(s): {figures}. "
            f"Saved in {run.path}. Next: seqmodels train --resume {run.path} --epochs N "
            f"to train longer.")


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--corpus", "corpus", multiple=True,
              help="Evaluate on this text (file, folder or glob; repeatable) instead of the "
                   "run's test split.")
@click.option("--context", type=click.IntRange(min=1), default=None,
              help="Windowed evaluation: windows of T predictions from a zero state "
                   "[default: carry the state through the whole text].")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where encoded corpora are cached [default: ~/.cache/seqmodels].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(run, corpus, context, cache_dir, as_json, quiet) -> None:
    """Loss, perplexity, bits per token and accuracy of a trained RUN on held-out text."""
    from seqmodels.evaluation import evaluate_run
    from seqmodels.runs import read_config

    metrics, where = evaluate_run(run, list(corpus), context, cache_dir, progress=not quiet)
    report = {"run": str(run), "text": where, **metrics.to_json()}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    unit = "character" if read_config(run)["data"].get("level") == "char" else "token"
    rows = [
        ("evaluated on", where),
        ("tokens", f"{metrics.tokens:,}"),
        ("context", "all previous text (state carried)" if context is None
         else f"windows of {context}"),
        ("cross-entropy", f"{metrics.cross_entropy:.4f} nats/token"),
        ("perplexity", f"{metrics.perplexity:.3f}"),
        (f"bits per {unit}", f"{metrics.bits_per_token:.4f}"),
        ("accuracy", f"{100 * metrics.accuracy:.2f}% (top-5 {100 * metrics.top5_accuracy:.2f}%)"),
        ("OOV", f"{metrics.oov:,} ({100 * metrics.oov_rate:.2f}%)"),
    ]
    width = max(len(k) for k, _ in rows)
    click.echo("\n".join(f"{k:<{width}}  {v}" for k, v in rows))


def _prompt(ctx, param, value: str | None) -> str | None:
    """A non-empty prompt of at most MAX_PROMPT_CHARS characters."""
    from seqmodels.generation import MAX_PROMPT_CHARS

    if value is not None and not value:
        raise click.BadParameter("the prompt is empty; leave --prompt out for the default")
    if value is not None and len(value) > MAX_PROMPT_CHARS:
        raise click.BadParameter(f"at most {MAX_PROMPT_CHARS:,} characters (got "
                                 f"{len(value):,})")
    return value


@cli.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--prompt", default=None, callback=_prompt,
              help="Text to continue [default: a newline, or the first token of a random line].")
@click.option("--length", "-n", type=click.IntRange(min=1), default=300, show_default=True,
              help="Tokens to generate.")
@click.option("--temperature", "-t", type=Finite(min=0), default=1.0,
              show_default=True, help="Softmax temperature; 0 means greedy.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Sample only from the k most likely tokens.")
@click.option("--top-p", type=Finite(0, 1, min_open=True), default=None,
              help="Nucleus sampling: the smallest set of tokens with this much probability.")
@click.option("--num-samples", "-s", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples generated together as one batch.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Same seed, same text.")
@click.option("--stop-at", default=None, help="End a sample once it produces this text.")
@click.option("--skip-unknown", is_flag=True,
              help="Char level: drop prompt characters outside the vocabulary instead of failing "
                   "(word level always maps unknown words to <unk>).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
              show_default=True)
def generate(run, prompt, length, temperature, top_k, top_p, num_samples, seed, stop_at,
             skip_unknown, fmt) -> None:
    """Generate text from a trained RUN, streaming a single sample as it is produced."""
    from seqmodels.generation import SamplingConfig, generate_text

    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    stream = num_samples == 1 and fmt == "text"
    samples = generate_text(run, prompt, length, sampling, num_samples, stop_at, skip_unknown,
                            on_text=(lambda piece: click.echo(piece, nl=False)) if stream
                            else None, on_warning=lambda w: click.echo(f"warning: {w}", err=True))
    if stream:
        click.echo()
    elif fmt == "jsonl":
        for i, sample in enumerate(samples):
            click.echo(json.dumps({"sample": i, **sample}, ensure_ascii=False))
    else:
        for i, sample in enumerate(samples):
            click.echo(f"--- sample {i + 1} ---")
            click.echo(sample["prompt"] + sample["text"])


from seqmodels.cli_diagnose import diagnose  # noqa: E402  (kept in its own module)

cli.add_command(diagnose)

from seqmodels.cli_forecast import forecast  # noqa: E402  (kept in its own module)

cli.add_command(forecast)


def main() -> None:
    """Console-script entry point."""
    import warnings

    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    cli(prog_name="seqmodels")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
