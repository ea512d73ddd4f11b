"""`seqmodels evaluate`: loss, perplexity and accuracy of a trained run."""

from __future__ import annotations

import json

import click

from seqmodels.cli.options import NamedPath, json_option


@click.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.option("--corpus", "corpus", multiple=True,
              help="Evaluate on this text (file, folder or glob; repeatable) instead of the "
                   "run's test split; the run's own corpus, found elsewhere (a run that moved), "
                   "scores its test split.")
@click.option("--context", type=click.IntRange(min=1), default=None,
              help="Windowed evaluation: windows of T predictions from a zero state "
                   "[default: carry the state through the whole text].")
@click.option("--cache-dir", type=NamedPath(file_okay=False), default=None,
              help="Where encoded corpora are cached [default: ~/.cache/seqmodels].")
@json_option()
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(run, corpus, context, cache_dir, as_json, quiet) -> None:
    """Loss (per token and per character), perplexity and accuracy of a trained RUN on
    held-out text."""
    from seqmodels.lm.model import LanguageModel

    model = LanguageModel.load(run)
    metrics = model.evaluate(list(corpus), context=context, cache_dir=cache_dir,
                             progress=not quiet)
    where = ", ".join(corpus) if corpus else "the run's test split"
    report = {"run": str(run), "text": where, **metrics.to_json()}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    unit = model.tokenizer.unit
    rows = [
        ("evaluated on", where),
        ("tokens", f"{metrics.tokens:,}"),
        ("context", "all previous text (state carried)" if context is None
         else f"windows of {context}"),
        ("cross-entropy", f"{metrics.cross_entropy:.4f} nats/token"),
        ("perplexity", f"{metrics.perplexity:.3f}"),
        (f"bits per {unit}", f"{metrics.bits_per_token:.4f}"),
        ("per character", f"{metrics.nats_per_char:.4f} nats, {metrics.bits_per_char:.4f} bits "
                          f"({metrics.characters:,} characters)"),
        ("accuracy", f"{100 * metrics.accuracy:.2f}% (top-5 {100 * metrics.top5_accuracy:.2f}%)"),
        ("OOV", f"{metrics.oov:,} ({100 * metrics.oov_rate:.2f}%)"),
    ]
    width = max(len(k) for k, _ in rows)
    click.echo("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
