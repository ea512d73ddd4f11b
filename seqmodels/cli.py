"""The `seqmodels` command line: thin click commands over the library."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from seqmodels import __version__
from seqmodels.errors import SeqmodelsError


class _Group(click.Group):
    """A click group that turns SeqmodelsError into a one-line error and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeqmodelsError as exc:
            raise click.ClickException(str(exc)) from None


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
        click.option("--encoding", default="utf-8", show_default=True,
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
    from seqmodels.corpus import read_corpus, resolve_sources
    from seqmodels.files import write_text_atomic

    if path.exists() and not force:
        raise SeqmodelsError(f"{path} exists; pass --force to replace it")
    text = read_corpus(resolve_sources(config.corpus), config.encoding, config.errors,
                       config.normalize, config.lowercase).text
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    click.echo(f"wrote {len(text):,} characters to {path}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="seqmodels")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
