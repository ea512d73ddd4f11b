"""`seqmodels forecast train|evaluate|predict|data`: time-series regression from CSV files."""

from __future__ import annotations

import json
import math

import click

from seqmodels.cli.options import (
    CommandGroup,
    NamedPath,
    check_optimizer_options,
    check_resume_options,
    config_file_option,
    config_from,
    given_options,
    json_option,
    model_options,
    optimizer_options,
    option_name,
    resume_changes,
    resume_options,
    run_options,
    run_options_from,
    splits_option,
    stack,
    train_config_from,
)
from seqmodels.cli.train import resume_hint
from seqmodels.forecast.defaults import default_model, default_train_config
from seqmodels.forecast.series import BASES, BUILTIN_SERIES, MISSING_POLICIES, SeriesConfig
from seqmodels.models.config import ModelConfig
from seqmodels.training.history import epochs_done
from seqmodels.training.rundir import RunDir

SERIES = SeriesConfig()  # the defaults of the series options


def _needs_pandas() -> None:
    """One-line error, before TensorFlow loads, when the forecast extra is not installed."""
    from seqmodels.forecast.series import require_pandas

    require_pandas()


def _columns(ctx, param, value: str | None) -> list[str]:
    """--features a,b: column names, each once."""
    if value is None:
        return []
    names = [c.strip() for c in value.split(",") if c.strip()]
    if not names:
        raise click.BadParameter(f"{value!r} names no column")
    if len(set(names)) != len(names):
        raise click.BadParameter(f"{value!r} names a column twice")
    return names


def series_options(f):
    """The options that say which columns to forecast and how to window and split them."""
    return stack(_SERIES_OPTIONS, f)


_SERIES_OPTIONS = [
    click.option("--time-column", default=None,
                 help="Column of timestamps (or numbers) [default: the built-in's; none: row "
                      "order]."),
    click.option("--target", default=None,
                 help="Column to forecast [default: the built-in's, or the only numeric "
                      "column]."),
    click.option("--features", default=None, callback=_columns,
                 help="Extra input columns, comma-separated (the target's past is always an "
                      "input)."),
    click.option("--window", type=click.IntRange(min=1), default=None,
                 help="Input steps per window [default: two seasons or two horizons (at least 10), "
                      "shorter for a short series]."),
    click.option("--horizon", type=click.IntRange(min=1), default=None,
                 help="Steps forecast at once [default: 12 monthly, 8 quarterly, 13 weekly, 14 "
                      "daily, 24 hourly, else 10; at most a tenth of the rows]."),
    click.option("--season", type=click.IntRange(min=1), default=None,
                 help="Rows per season [default: from the time step (12 monthly, 4 quarterly, 52 "
                      "weekly, 7 daily, 24 hourly); 1: none]."),
    click.option("--base", type=click.Choice(BASES), default=SERIES.base, show_default=True,
                 help="What the model forecasts relative to: none (the scaled values), last (the "
                      "window's last value: changes, for a trend), seasonal (the value one season "
                      "back); auto takes the one whose own forecast errs least on the training "
                      "part."),
    splits_option(SERIES.splits, "Train,validation,test fractions (chronological)."),
    click.option("--missing", type=click.Choice(MISSING_POLICIES), default=SERIES.missing,
                 show_default=True,
                 help="Rows with gaps: stop and list them, drop them, or fill them (mean/median "
                      "from the training part only)."),
    click.option("--allow-irregular", is_flag=True,
                 help="Treat irregularly timed rows as equally spaced instead of stopping."),
    click.option("--relative", is_flag=True, help="The same as --base last."),
]


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
def forecast() -> None:
    """Forecast numeric time series from CSV files with LSTM/GRU/SimpleRNN regression.

    CSV is a file path or a built-in series (co2, sunspots, nile: real public-domain data
    installed with seqmodels). Needs the extra: pip install 'seqmodels-rnn[forecast]'.
    """


@forecast.command()
@config_file_option
@click.argument("csv", required=False)
@series_options
@model_options(default_model(), embedding=False)
@optimizer_options(default_train_config())
@run_options(default_train_config())
@resume_options("<cell>-series")
@click.option("--final-from", type=NamedPath(file_okay=False), default=None,
              help="A final fit: train a fresh model with RUN's settings on every row of CSV "
                   "(default: RUN's own), for the epochs RUN took to its best validation, and "
                   "keep RUN's choice and intervals; for predict.")
@json_option("the run's path and results")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
def train(csv, **kw) -> None:
    """Train a forecaster on CSV (a file or a built-in series) into a run directory."""
    ctx = click.get_current_context()
    _check_options(ctx, csv, kw)
    _needs_pandas()
    from seqmodels.forecast.train import train_forecaster

    taken = [] if kw["resume"] or kw["final_from"] else _series_defaults(ctx, csv, kw)
    if not kw["quiet"] and taken:
        click.echo(f"note: {csv} trains with {', '.join(taken)}, this built-in series' own "
                   f"default{'s' if len(taken) > 1 else ''} (give the option to choose)", err=True)

    resuming = bool(kw["resume"])
    with resume_hint("seqmodels forecast train"):
        if kw["final_from"]:
            run = train_forecaster(SeriesConfig(csv=csv) if csv else None, out=kw["out"],
                                   options=run_options_from(kw), final_from=kw["final_from"])
        else:
            run = train_forecaster(
                None if resuming else config_from(SeriesConfig, kw, csv=csv or ""),
                None if resuming else config_from(ModelConfig, kw),
                None if resuming else train_config_from(kw), out=kw["out"],
                resume=kw["resume"], changes=resume_changes(ctx, kw),
                options=run_options_from(kw))
    if not kw["quiet"]:
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(_summary(run), err=True)
    if kw["as_json"]:
        best = run.best_val_loss
        click.echo(json.dumps({"run": str(run.path), "stop_reason": run.stop_reason,
                               "epochs": epochs_done(run.history), "best_val_loss": best,
                               "best_val_rmse": run.best_val_rmse if best is not None else None,
                               "target": run.series.target}))
    else:
        click.echo(str(run.path))


def _series_defaults(ctx: click.Context, csv: str | None, kw: dict) -> list[str]:
    """A built-in series' own defaults, for the options not given (kw is updated); the options
    taken, as 'option value'."""
    from pathlib import Path

    builtin = BUILTIN_SERIES.get(csv or "")
    if builtin is None or Path(csv).exists():
        return []
    given = given_options(ctx)
    taken = {name: value for name, value in builtin.defaults.items() if name not in given}
    kw.update(taken)
    return [f"{option_name(name)} {value}" for name, value in taken.items()]


def _check_options(ctx: click.Context, csv: str | None, kw: dict) -> None:
    """Refuse option combinations that would be silently ignored."""
    if kw["final_from"]:
        allowed = {"final_from", "out", "quiet", "as_json", "config_file", "log_every"}
        given = [name for name in given_options(ctx) if name not in allowed]
        if given or kw["resume"]:
            raise click.UsageError(f"--final-from takes RUN's settings; drop "
                                   f"{option_name((given or ['resume'])[0])}")
        return
    check_resume_options(ctx, kw, "CSV", bool(csv))
    if not kw["resume"] and not csv:
        raise click.UsageError(f"give a CSV file (or a built-in series: "
                               f"{', '.join(BUILTIN_SERIES)}), or --resume RUN")
    check_optimizer_options(ctx, kw)


def _summary(run) -> str:
    """How training ended, the best validation error in original units, and what next."""
    how = {"completed": "finished", "max-time": "stopped at the --max-time budget",
           "early-stopping": "stopped early (no better validation loss)",
           "callback": "stopped by a callback"}[run.stop_reason]
    best = run.best_val_loss
    figures = (f"best validation RMSE {run.best_val_rmse:.4g} in the values' own units "
               f"({math.sqrt(best):.4f} on the standardised values the network sees)"
               if best is not None else "nothing validated yet")
    if best is not None and len(run.series.targets) > 1:
        figures = (f"best validation RMSE {math.sqrt(best):.4f} on the standardised values "
                   f"(each series scaled on its own)")
    if run.choice:
        from seqmodels.forecast.choice import describe_choice

        figures += f"; the run gives {describe_choice(run.choice)}"
    return (f"Training {how} after {epochs_done(run.history)} epoch(s): {figures}. Saved in "
            f"{run.path}. Next: seqmodels forecast evaluate {run.path}")


@forecast.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.argument("csv", required=False)
@click.option("--season", type=click.IntRange(min=1), default=None,
              help="Season length m for the seasonal naive baseline [default: from the time "
                   "step: 7 daily, 52 weekly, 24 hourly, 12 monthly, 4 quarterly; else none].")
@click.option("--plot", type=NamedPath(dir_okay=False), default=None,
              help=f"Where to write the test-split plot [default: RUN/{RunDir.FORECAST_PLOT}].")
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option("--force", is_flag=True, help="Let --plot replace an existing file.")
@json_option()
def evaluate(run, csv, season, plot, no_plot, force, as_json) -> None:
    """MAE, RMSE, sMAPE on the test split (original units) next to naive baselines.

    CSV defaults to the file the run was trained on; another file is split the same way and
    scaled with the run's training statistics.
    """
    if plot and no_plot:
        raise click.UsageError("--no-plot writes no plot; drop --plot or --no-plot")
    if force and not plot:
        raise click.UsageError("--force lets --plot replace a file (the default plot in the run "
                               "is always rewritten); without --plot it does nothing")
    _needs_pandas()

    from seqmodels.cli.outputs import check_output_file
    from seqmodels.forecast.evaluate import evaluate_forecast, format_evaluation
    from seqmodels.forecast.run import load_forecast_run

    if plot and not no_plot:
        check_output_file(plot, force, _inputs(run, csv))
    loaded = load_forecast_run(run)
    where = None if no_plot else (plot or RunDir(run).forecast_plot)
    report = evaluate_forecast(loaded, csv, season=season, plot=where)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for note in report["notes"]:
            click.echo(f"note: {note}", err=True)
        click.echo(format_evaluation(report))


def _inputs(run: str, csv: str | None) -> list:
    """What --plot must never replace: the CSV evaluated, and the run's own files."""
    from seqmodels.errors import SeqmodelsError
    from seqmodels.forecast.series import resolve_csv
    from seqmodels.training.rundir import RunDir

    if csv is None:
        try:
            csv = RunDir(run).read_config()["data"].get("csv")
        except SeqmodelsError:  # the run is read before any plot, and fails there
            csv = None
    try:  # a built-in series by name: its installed file
        read = [(resolve_csv(csv), "the CSV evaluated")] if isinstance(csv, str) else []
    except SeqmodelsError:  # evaluating it fails first
        read = []
    return RunDir(run).own_files() + read


@forecast.command()
@click.argument("run", type=NamedPath(file_okay=False))
@click.argument("csv")
@json_option("the forecast")
def predict(run, csv, as_json) -> None:
    """Print the next H values after the end of CSV, as CSV (with timestamps when regular)."""
    _needs_pandas()
    import csv as csv_module
    import io

    from seqmodels.forecast.evaluate import predict_with_intervals
    from seqmodels.forecast.run import load_forecast_run

    loaded = load_forecast_run(run)
    when, values, header, bounds = predict_with_intervals(
        loaded, csv, on_note=lambda note: click.echo(f"note: {note}", err=True))
    targets = loaded.series.targets
    several = len(targets) > 1
    values = values.reshape(len(when), len(targets))  # (H, S)
    bounds = bounds if several else [bounds]
    names, columns = [], []  # value, then lower_80, upper_80, lower_95, upper_95 per series
    for k, target in enumerate(targets):
        names.append(target)
        columns.append(values[:, k])
        for level, pair in bounds[k].items():
            for side, b in zip(("lower", "upper"), pair):
                names.append(f"{target}_{side}_{100 * float(level):g}" if several
                             else f"{side}_{100 * float(level):g}")
                columns.append(b)
    if as_json:
        keys = ["value" if n == targets[0] and not several else n for n in names]
        click.echo(json.dumps({"run": str(run), "time": header, "target": targets[0],
                               "targets": targets,
                               "forecast": [{"time": t, **{k: float(c[i])
                                                           for k, c in zip(keys, columns)}}
                                            for i, t in enumerate(when)]}))
        return
    out = io.StringIO()
    rows = csv_module.writer(out, lineterminator="\n")  # quotes a name holding a comma
    rows.writerow([header, *names])
    # every digit: a 6-digit rounding hid real errors
    rows.writerows([t, *(repr(float(c[i])) for c in columns)] for i, t in enumerate(when))
    click.echo(out.getvalue(), nl=False)


@forecast.command()
@click.argument("csv")
@click.option("--origins", type=click.IntRange(min=1), default=3, show_default=True,
              help="Rolling origins: the last a horizon before the end, the others a horizon "
                   "apart.")
@series_options
@model_options(default_model(), embedding=False)
@optimizer_options(default_train_config())
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=default_train_config().seed,
              show_default=True, help="Seed of every refit.")
@click.option("--seeds", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Refit that many models at each origin (--seed, then the next seeds) and "
                   "score the mean of their forecasts.")
@json_option("each origin's and the overall scores")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def backtest(csv, origins, seeds, **kw) -> None:
    """Score the forecaster by rolling-origin backtests: at each origin a model is trained from
    scratch on the rows before it (settings left automatic are chosen again from those rows),
    its forecast of the horizon after it is scored by MASE, sMAPE and RMSE next to seasonal
    naive, naive (last value) and drift."""
    ctx = click.get_current_context()
    check_optimizer_options(ctx, kw)
    _needs_pandas()
    from seqmodels.forecast.backtest import backtest_forecaster, format_backtest

    _series_defaults(ctx, csv, kw)

    def progress(result: dict) -> None:
        if not kw["quiet"]:
            m = result["metrics"]
            click.echo(f"origin at row {result['origin']}: MASE seqmodels "
                       f"{m['seqmodels'].get('mase', float('nan')):.3f}, "
                       + ", ".join(f"{k} {v.get('mase', float('nan')):.3f}"
                                   for k, v in m.items() if k != "seqmodels"), err=True)

    report = backtest_forecaster(config_from(SeriesConfig, kw, csv=csv),
                                 config_from(ModelConfig, kw), train_config_from(kw),
                                 origins=origins, on_origin=progress, seeds=seeds)
    click.echo(json.dumps(report) if kw["as_json"] else format_backtest(report))


@forecast.command()
@click.argument("name", type=click.Choice(list(BUILTIN_SERIES)))
@click.option("--out", type=NamedPath(dir_okay=False), required=True, help="CSV file to write.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def data(name, out, force) -> None:
    """Copy a built-in series (a CSV installed with seqmodels) to a file."""
    from pathlib import Path

    from seqmodels.cli.outputs import check_output_file
    from seqmodels.files import write_text_atomic
    from seqmodels.forecast.series import BUILTIN_SERIES, builtin_path

    source = builtin_path(name)
    target = check_output_file(Path(out), force, [(source, "the built-in series' own file")])
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, source.read_text(encoding="utf-8"))
    click.echo(f"wrote {name} ({BUILTIN_SERIES[name].about}) from {source} to {target}",
               err=True)
