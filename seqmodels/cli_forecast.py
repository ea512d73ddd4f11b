"""`seqmodels forecast train|evaluate|predict|data`: time-series regression from CSV files."""

from __future__ import annotations

import json
import math

import click

from seqmodels.cli_options import Finite, optimizer_options, regularizer_options, run_options
from seqmodels.errors import SeqmodelsError

RESUMABLE = {"resume", "epochs", "max_time", "on_nan", "log_every", "quiet"}
POLICIES = ["error", "drop", "ffill", "interpolate", "mean", "median"]


def _needs_pandas() -> None:
    """One-line error, before TensorFlow loads, when the forecast extra is not installed."""
    from seqmodels.series import require_pandas

    require_pandas()


def _splits(ctx, param, value: str) -> tuple[float, float, float]:
    from seqmodels.windows import check_fractions

    try:
        return check_fractions(tuple(float(p) for p in value.split(",")))
    except (ValueError, SeqmodelsError) as exc:
        raise click.BadParameter(f"give three fractions like 0.8,0.1,0.1 ({exc})") from None


def _columns(ctx, param, value: str | None) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def forecast() -> None:
    """Forecast numeric time series from CSV files with LSTM/GRU/SimpleRNN regression.

    CSV is a file path or a built-in series (co2, sunspots, nile: real data shipped in the
    statsmodels wheel). Needs the extra: pip install 'seqmodels[forecast]'.
    """


@forecast.command()
@click.argument("csv", required=False)
@click.option("--time-column", default=None,
              help="Column of timestamps (or numbers) [default: the built-in's; none: row order].")
@click.option("--target", default=None,
              help="Column to forecast [default: the built-in's, or the only numeric column].")
@click.option("--features", default=None, callback=_columns,
              help="Extra input columns, comma-separated (the target's past is always an input).")
@click.option("--window", type=click.IntRange(min=1), default=10, show_default=True,
              help="Input steps per window.")
@click.option("--horizon", type=click.IntRange(min=1), default=1, show_default=True,
              help="Steps predicted at once.")
@click.option("--splits", default="0.8,0.1,0.1", show_default=True, callback=_splits,
              help="Train,validation,test fractions (chronological).")
@click.option("--missing", type=click.Choice(POLICIES), default="error", show_default=True,
              help="Rows with gaps: stop and list them, drop them, or fill them (mean/median from "
                   "the training part only).")
@click.option("--allow-irregular", is_flag=True,
              help="Treat irregularly timed rows as equally spaced instead of stopping.")
@click.option("--relative", is_flag=True,
              help="Model changes from each window's last target value (for trending series "
                   "whose later values leave the training range).")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default="lstm",
              show_default=True, help="Recurrent cell (rnn = SimpleRNN).")
@click.option("--layers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Recurrent layers stacked.")
@click.option("--units", type=click.IntRange(min=1), default=50, show_default=True,
              help="Units of each recurrent layer.")
@click.option("--dropout", type=Finite(0, 1, max_open=True), default=0.0,
              show_default=True, help="Dropout after each recurrent layer.")
@regularizer_options
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Passes over the training windows [default: 20].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Windows per step.")
@optimizer_options
@run_options
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/<date-time>-<cell>-series].")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue this run from its last checkpoint with its saved settings "
                   "(only --epochs, --max-time and --on-nan can change).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
def train(csv, **kw) -> None:
    """Train a forecaster on CSV (a file or a built-in series) into a run directory."""
    _check_options(click.get_current_context(), csv, kw)
    _needs_pandas()
    from seqmodels.forecasting import train_forecaster
    from seqmodels.models import ModelConfig
    from seqmodels.series import SeriesConfig
    from seqmodels.training import TrainConfig

    series = SeriesConfig(csv=csv or "", target=kw["target"], time_column=kw["time_column"],
                          features=kw["features"], window=kw["window"], horizon=kw["horizon"],
                          splits=kw["splits"], missing=kw["missing"],
                          allow_irregular=kw["allow_irregular"], relative=kw["relative"])
    model = ModelConfig(cell=kw["cell"], layers=kw["layers"], units=kw["units"],
                        dropout=kw["dropout"], recurrent_dropout=kw["recurrent_dropout"],
                        l1=kw["l1"], l2=kw["l2"])
    no_clip = kw["no_clip"]
    config = TrainConfig(
        epochs=kw["epochs"] or 20, batch_size=kw["batch_size"], seq_len=kw["window"],
        optimizer=kw["optimizer"], lr=kw["lr"], schedule=kw["schedule"],
        decay_factor=kw["decay_factor"], decay_after=kw["decay_after"],
        clipnorm=None if no_clip else kw["clipnorm"],
        clipvalue=None if no_clip else kw["clipvalue"],
        patience=kw["patience"], max_time=kw["max_time"], seed=kw["seed"],
        deterministic=kw["deterministic"], checkpoint_every=kw["checkpoint_every"],
        steps_per_epoch=kw["steps_per_epoch"], tensorboard=kw["tensorboard"],
        on_nan=kw["on_nan"] or "stop", xla=kw["xla"],
    )
    resume = kw["resume"]
    run = train_forecaster(series, model, config, out=kw["out"], resume=resume,
                           progress=not kw["quiet"],
                           epochs=kw["epochs"] if resume else None,
                           max_time=kw["max_time"] if resume else None,
                           on_nan=kw["on_nan"] if resume else None, log_every=kw["log_every"])
    if not kw["quiet"]:
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(_summary(run), err=True)
    click.echo(str(run.path))


def _check_options(ctx: click.Context, csv: str | None, kw: dict) -> None:
    """Refuse option combinations that would be silently ignored."""
    from click.core import ParameterSource

    given = {n for n in kw if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE}
    if kw["resume"]:
        extra = sorted(given - RESUMABLE) + (["CSV"] if csv else [])
        if extra:
            flag = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
            raise click.UsageError("--resume continues a run with its saved settings; these "
                                   f"cannot change: {', '.join(flag.get(n, n) for n in extra)}")
    elif not csv:
        raise click.UsageError("give a CSV file (or a built-in series: co2, sunspots, nile), "
                               "or --resume RUN")
    if kw["no_clip"] and given & {"clipnorm", "clipvalue"}:
        raise click.UsageError("--no-clip turns clipping off; drop --clipnorm/--clipvalue")


def _summary(run) -> str:
    """How training ended, the best validation error in original units, and what next."""
    how = {"completed": "finished", "max-time": "stopped at the --max-time budget",
           "early-stopping": "stopped early (no better validation loss)"}[run.stop_reason]
    best = run.best_val_loss
    figures = (f"best validation RMSE {math.sqrt(best):.4f} scaled = {run.best_val_rmse:.4g} "
               f"{run.series.target} units" if best is not None else "no full epoch finished")
    return (f"Training {how} after {len(run.history)} epoch(s): {figures}. Saved in {run.path}. "
            f"Next: seqmodels forecast evaluate {run.path}")


@forecast.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("csv", required=False)
@click.option("--season", type=click.IntRange(min=1), default=None,
              help="Season length m for the seasonal naive baseline [default: from the time "
                   "step: 7 daily, 52 weekly, 24 hourly, 12 monthly, 4 quarterly; else none].")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Where to write the test-split plot [default: RUN/forecast-test.png].")
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(run, csv, season, plot, no_plot, as_json) -> None:
    """MAE, RMSE, sMAPE on the test split (original units) next to naive baselines.

    CSV defaults to the file the run was trained on; another file is split the same way and
    scaled with the run's training statistics.
    """
    _needs_pandas()
    from pathlib import Path

    from seqmodels.forecast_eval import evaluate_forecast, format_evaluation
    from seqmodels.forecasting import load_forecast_run

    loaded = load_forecast_run(run)
    where = None if no_plot else (plot or Path(run) / "forecast-test.png")
    report = evaluate_forecast(loaded, csv, season=season, plot=where)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for note in report["notes"]:
            click.echo(f"note: {note}", err=True)
        click.echo(format_evaluation(report))


@forecast.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("csv")
def predict(run, csv) -> None:
    """Print the next H values after the end of CSV, as CSV (with timestamps when regular)."""
    _needs_pandas()
    from seqmodels.forecast_eval import predict_future
    from seqmodels.forecasting import load_forecast_run

    loaded = load_forecast_run(run)
    when, values, header = predict_future(loaded, csv)
    click.echo(f"{header},{loaded.series.target}")
    for t, v in zip(when, values):
        click.echo(f"{t},{v:.6g}")


@forecast.command()
@click.argument("name", type=click.Choice(["co2", "sunspots", "nile"]))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="CSV file to write.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def data(name, out, force) -> None:
    """Copy a built-in series (the CSV inside the installed statsmodels wheel) to a file."""
    from pathlib import Path

    from seqmodels.files import write_text_atomic
    from seqmodels.series import BUILTIN_SERIES, builtin_path

    target = Path(out)
    if target.exists() and not force:
        raise SeqmodelsError(f"{target} exists; pass --force to replace it")
    source = builtin_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, source.read_text(encoding="utf-8"))
    click.echo(f"wrote {name} ({BUILTIN_SERIES[name].about}) from {source} to {target}",
               err=True)
