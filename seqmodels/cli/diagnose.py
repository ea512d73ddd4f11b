"""`seqmodels diagnose`: per-timestep gradient norms, vanishing/exploding verdicts, a plot."""

from __future__ import annotations

import json

import click

from seqmodels.cli.options import Finite, NamedPath, json_option
from seqmodels.data.config import LEVELS
from seqmodels.diagnostics.gradient_norms import DEFAULT_CELLS

FRESH_ONLY = ("cells", "units", "corpus", "level", "recurrent_scale")


@click.command()
@click.argument("run", required=False, type=NamedPath(file_okay=False))
@click.option("--cells", default=",".join(DEFAULT_CELLS), show_default=True,
              help="Fresh 1-layer models to compare (comma-separated: rnn, lstm, gru).")
@click.option("--units", type=click.IntRange(min=1), default=64, show_default=True,
              help="Units of each fresh model.")
@click.option("--seq-len", "-T", type=click.IntRange(min=3), default=50, show_default=True,
              help="Window length T: the loss is at step T, gradients go back to step 1.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Windows the norms are averaged over.")
@click.option("--corpus", "corpus", multiple=True,
              help="Text for the fresh models' windows (file, folder, glob or kjv; "
                   "repeatable) [default: kjv]; a RUN uses its own corpus.")
@click.option("--level", type=click.Choice(LEVELS), default=LEVELS[0], show_default=True,
              help="Kind of token of the fresh models: char, word or byte.")
@click.option("--recurrent-scale", type=Finite(min=0, min_open=True), default=1.0,
              show_default=True, help="Multiply the fresh models' recurrent kernels by this.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Seed for the initialisation and the choice of windows.")
@click.option("--plot", "plot", type=NamedPath(dir_okay=False), default=None,
              help="Write a log-scale PNG of the norms here.")
@click.option("--force", is_flag=True, help="Let --plot replace an existing file.")
@click.option("--cache-dir", type=NamedPath(file_okay=False), default=None,
              help="Where encoded corpora are cached [default: ~/.cache/seqmodels].")
@json_option()
def diagnose(run, cells, units, seq_len, batch_size, corpus, level, recurrent_scale, seed, plot,
             force, cache_dir, as_json) -> None:
    """Measure ||dL_T/dh_t|| back through time: vanishing, exploding or healthy gradients.

    With RUN, the top recurrent layer of that trained run on windows of its own corpus;
    without, freshly initialised SimpleRNN (rnn), LSTM and GRU models. The verdict comes from
    the fitted rate per step: below 0.95 vanishing, above 1.05 exploding.
    """
    from click.core import ParameterSource

    from seqmodels.data.config import DataConfig
    from seqmodels.diagnostics.gradient_norms import diagnose as run_diagnosis
    from seqmodels.diagnostics.gradient_norms import format_table, parse_cells, plot_gradient_norms

    ctx = click.get_current_context()
    if force and not plot:
        raise click.UsageError("--force lets --plot replace a file; without --plot it does "
                               "nothing")
    if run:
        given = [n for n in FRESH_ONLY
                 if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
        if given:
            names = ", ".join("--" + n.replace("_", "-") for n in given)
            verb = "applies" if len(given) == 1 else "apply"
            raise click.UsageError(f"{names} {verb} to fresh models only; a RUN uses its own "
                                   f"settings and corpus")
    if plot:
        from seqmodels.cli.outputs import check_output_file

        check_output_file(plot, force, _inputs(run, corpus))
    chosen = parse_cells(cells)
    result = run_diagnosis(chosen, run=run, data=DataConfig(corpus=list(corpus), level=level),
                           units=units, seq_len=seq_len, batch_size=batch_size, seed=seed,
                           cache_dir=cache_dir, recurrent_scale=recurrent_scale)
    if plot:
        plot_gradient_norms(result, plot)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    click.echo(format_table(result))
    if plot:
        click.echo(f"plot written to {plot}")


def _inputs(run: str | None, corpus: tuple[str, ...]) -> list:
    """What --plot must never replace: the corpus files, and a run's own files."""
    from seqmodels.data.corpus import input_files
    from seqmodels.errors import SeqmodelsError
    from seqmodels.training.rundir import RunDir

    if run is None:
        return input_files(list(corpus))
    try:
        specs = RunDir(run).read_config()["data"].get("corpus")
    except SeqmodelsError:  # diagnose reads the run before any plot, and fails there
        specs = None
    if isinstance(specs, list) and all(isinstance(s, str) for s in specs):
        from seqmodels.data.config import DataConfig

        specs = DataConfig(corpus=specs).in_run(run).corpus  # relative: files the run holds
    return RunDir(run).own_files() + (input_files(specs) if isinstance(specs, list) else [])
