"""`seqmodels generate-text` (alias `generate`): text from a trained run."""

from __future__ import annotations

import sys

import click

from seqmodels.cli.options import Finite, NamedPath, given_options, json_option, option_name
from seqmodels.cli.outputs import TerminalText, json_for_stdout
from seqmodels.lm.beam import MAX_BEAM
from seqmodels.lm.generate import MAX_SEED, SamplingConfig

SAMPLING = SamplingConfig()  # the defaults of the sampling options


def _prompt(ctx, param, value: str | None) -> str | None:
    """A non-empty prompt of at most MAX_PROMPT_CHARS characters."""
    from seqmodels.data.tokenizers.base import MAX_PROMPT_CHARS

    if value is not None and not value:
        raise click.BadParameter("the prompt is empty; leave --prompt out for the default")
    if value is not None and len(value) > MAX_PROMPT_CHARS:
        raise click.BadParameter(f"at most {MAX_PROMPT_CHARS:,} characters (got "
                                 f"{len(value):,})")
    return value


@click.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.option("--prompt", default=None, callback=_prompt,
              help="Text to continue [default: a newline, or the first token of a random line].")
@click.option("--length", "-n", type=click.IntRange(min=1), default=300, show_default=True,
              help="Tokens to generate.")
@click.option("--temperature", "-t", type=Finite(min=0), default=SAMPLING.temperature,
              show_default=True, help="Softmax temperature; 0 means greedy.")
@click.option("--top-k", type=click.IntRange(min=1), default=SAMPLING.top_k,
              help="Sample only from the k most likely tokens.")
@click.option("--top-p", type=Finite(0, 1, min_open=True), default=SAMPLING.top_p,
              help="Nucleus sampling: the smallest set of tokens with this much probability.")
@click.option("--num-samples", "-s", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples generated together as one batch.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None,
              help="Same seed, same text.")
@click.option("--stop-at", default=None, help="End a sample once it produces this text.")
@click.option("--skip-unknown", is_flag=True,
              help="Char level: drop prompt characters outside the vocabulary instead of failing "
                   "(word level always maps unknown words to <unk>).")
@click.option("--beam", type=click.IntRange(1, MAX_BEAM), default=None,
              help="Beam search: keep the N likeliest continuations at each step and print the "
                   "best (--num-samples: the best few) instead of sampling.")
@click.option("--length-penalty", type=Finite(min=0), default=1.0, show_default=True,
              help="Beam search: rank continuations by log-probability / tokens ** this "
                   "(0: the raw sum, which favours those that --stop-at ends early).")
@click.option("--interactive", "-i", is_flag=True,
              help="A prompt loop that keeps the model loaded: each line you type is continued "
                   "at once; :keep carries the state from one to the next, :choose N lets you "
                   "pick each token among the N likeliest (:help lists the commands).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
              show_default=True,
              help="text, or jsonl: one JSON line per sample (a stream of them; --json prints "
                   "one object).")
@json_option("the samples")
@click.pass_context
def generate(ctx, run, prompt, length, temperature, top_k, top_p, num_samples, seed, stop_at,
             skip_unknown, beam, length_penalty, interactive, fmt, as_json) -> None:
    """Generate text from a trained RUN, streaming a single sample as it is produced (or the
    likeliest continuations, with --beam)."""
    if stop_at == "":
        raise click.BadParameter("an empty text would end every sample at once; give the text "
                                 "to stop at", param_hint="--stop-at")
    given = given_options(ctx)
    if as_json and "fmt" in given:
        raise click.UsageError("--json prints one object; --format jsonl streams a line per "
                               "sample: give one of them")
    if as_json:
        fmt = "json"
    if interactive:
        given = [option_name(name) for name in ("prompt", "num_samples", "stop_at", "beam",
                                                "length_penalty", "fmt", "as_json")
                 if name in given]
        if given:
            raise click.UsageError(f"--interactive reads its prompts as you type them, one "
                                   f"sample at a time: {', '.join(given)} do not apply")
        _interactive(run, length, SamplingConfig(temperature=temperature, top_k=top_k,
                                                 top_p=top_p, seed=seed))
        return
    if beam is None and "length_penalty" in given:
        raise click.UsageError("--length-penalty ranks the continuations of a beam search; "
                               "give --beam N")
    if beam is not None:
        given = [option_name(name) for name in ("temperature", "top_k", "top_p", "seed")
                 if name in given]
        if given:
            raise click.UsageError(f"--beam searches for the likeliest text and samples "
                                   f"nothing: {', '.join(given)} do nothing there")
        if num_samples > beam:
            raise click.UsageError(f"--num-samples {num_samples} is more than the --beam "
                                   f"{beam} continuations a beam keeps")
        _beam(run, prompt, length, beam, num_samples, stop_at, length_penalty, skip_unknown,
              fmt)
        return
    if temperature == 0 and (top_k is not None or top_p is not None):
        raise click.UsageError("-t 0 samples greedily (the most likely token); --top-k and "
                               "--top-p do nothing there")
    from seqmodels.lm.generate import check_request
    from seqmodels.lm.model import LanguageModel

    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    check_request(length, num_samples, stop_at, sampling)  # before the model loads
    stream = num_samples == 1 and fmt == "text"
    model = LanguageModel.load(run)
    shown = TerminalText()
    samples = model.generate(prompt, length, sampling, num_samples, stop_at,
                             on_text=(lambda piece: click.echo(shown(piece), nl=False)) if stream
                             else None, skip_unknown=skip_unknown)
    if stream:
        click.echo()
    elif fmt == "jsonl":
        for i, sample in enumerate(samples):
            click.echo(json_for_stdout({"sample": i, **sample}))
    elif fmt == "json":
        click.echo(json_for_stdout(_one_object(samples)))
    else:
        for i, sample in enumerate(samples):
            click.echo(f"--- sample {i + 1} ---")
            click.echo(shown(sample["prompt"] + sample["text"]))


def _beam(run, prompt, length, beam, num_samples, stop_at, length_penalty, skip_unknown,
          fmt) -> None:
    """Print the best continuations a beam search finds."""
    from seqmodels.lm.model import LanguageModel

    model = LanguageModel.load(run)
    samples = model.beam_search(prompt, length, beam, num_samples, stop_at, length_penalty,
                                skip_unknown)
    shown = TerminalText()
    if fmt == "json":
        click.echo(json_for_stdout(_one_object(samples)))
        return
    for i, sample in enumerate(samples):
        if fmt == "jsonl":
            click.echo(json_for_stdout({"sample": i, **sample}))
            continue
        if num_samples > 1:
            click.echo(f"--- continuation {i + 1} (log-probability {sample['log_prob']:.3f}, "
                       f"{sample['tokens']} tokens) ---")
        click.echo(shown(sample["prompt"] + sample["text"]))


def _one_object(samples: list[dict]) -> dict:
    """--json: every sample in one JSON object."""
    return {"samples": [{"sample": i, **sample} for i, sample in enumerate(samples)]}


def _interactive(run, length: int, sampling: SamplingConfig) -> None:
    """The prompt loop of --interactive, on this terminal."""
    from seqmodels.lm.generate import check_request
    from seqmodels.lm.interactive import run_session
    from seqmodels.lm.model import LanguageModel

    check_request(length, 1, None, sampling)
    model = LanguageModel.load(run)

    shown = TerminalText()

    def write(text: str) -> None:
        click.echo(shown(text), nl=False)
        sys.stdout.flush()

    run_session(model, sampling, length, input, write)
