"""`seqmodels corpus`: describe a corpus before training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from seqmodels.cli.options import (
    NamedPath,
    data_config_from,
    data_options,
    json_option,
    window_options,
)
from seqmodels.lm.config import WindowConfig


@click.command()
@data_options
@window_options(WindowConfig())
@json_option()
@click.option("--export", type=NamedPath(dir_okay=False), default=None,
              help="Also write the corpus text (decoded, normalised) to this file.")
@click.option("--force", is_flag=True, help="Let --export replace an existing file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def corpus(**kwargs) -> None:
    """Describe a corpus before training: size, vocabulary, coverage, splits, windows.

    CORPUS is any mix of files, directories (every *.txt below) and glob patterns,
    or the name of a built-in corpus (kjv).
    """
    from seqmodels.data.prepare import prepare_corpus
    from seqmodels.data.report import corpus_report, format_corpus_report
    from seqmodels.data.windows import require_windows

    if kwargs["force"] and not kwargs["export"]:
        raise click.UsageError("--force lets --export replace a file; without --export it does "
                               "nothing")
    config = data_config_from(kwargs)
    if kwargs["export"]:
        _export_text(config, Path(kwargs["export"]), kwargs["force"])
    prepared = prepare_corpus(
        config, cache_dir=kwargs["cache_dir"], use_cache=not kwargs["no_cache"],
        progress=not kwargs["quiet"], workers=kwargs["workers"],
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
    from seqmodels.cli.outputs import check_output_file
    from seqmodels.data.corpus import input_files, read_corpus, resolve_sources
    from seqmodels.files import write_text_atomic

    stopwords = [(config.stopwords, "the --stopwords file")] if config.stopwords else []
    check_output_file(path, force, input_files(config.corpus) + stopwords)
    sources = resolve_sources(config.corpus)
    text = read_corpus(sources, config.encoding, config.errors, config.normalize,
                       config.lowercase).text
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    # as bytes: a file name that is not UTF-8 is shown as it is, not as \udcff escapes
    click.echo(f"wrote {len(text):,} characters to ".encode() + os.fsencode(path), err=True)
