"""Forecast evaluation and prediction: MAE/RMSE/sMAPE in original units next to naive baselines
on the same test windows, a plot, and the next H values after the end of a file."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.forecast.auto import infer_season
from seqmodels.forecast.baselines import baselines, mase_scale, metrics
from seqmodels.forecast.choice import (
    MODEL,
    candidate_forecasts,
    describe_choice,
    part_forecasts,
    predict_scaled,
    read_choice,
)
from seqmodels.forecast.prepare import Prepared, prepare
from seqmodels.forecast.run import ForecastRun
from seqmodels.forecast.series import (
    fill_parts,
    format_time,
    future_times,
    make_windows,
    missing_report,
    read_series,
    scale,
    unscale_target,
)
from seqmodels.plotting import one_at_a_time
from seqmodels.settings import require_memory
from seqmodels.training.rundir import RunDir

EXACT = 1e-6  # relative error below which a forecast counts as exact (float32 scaling)


BYTES_PER_FORECAST_VALUE = 80  # forecasts, baselines, errors: measured 72 (5,000 x 5,000)


def evaluate_forecast(run: ForecastRun, csv: str | None = None, season: int | None = None,
                      plot: str | Path | None = None) -> dict:
    """Test-split metrics (original units) of the model and the naive baselines, same windows.

    csv: another file with the run's columns, split the same way (default: the run's own);
    season: for the seasonal naive (default: inferred from the time step, else skipped);
    plot: write a PNG of one-step-ahead forecasts against the actual values.
    """
    final = run.config.get("final_fit_of")
    if final and csv is None:
        raise SeqmodelsError(f"{run.path} is a final fit, trained on every row of its CSV, so "
                             f"its test part is no test; evaluate the run it came from "
                             f"({final['run']}), backtest the settings, or give a CSV of newer "
                             f"values")
    config = run.series if csv is None else dataclasses.replace(run.series, csv=csv, end=None)
    data = prepare(config, scaler=run.scaler, fill=run.fill or None)
    digest = run.config.get("series_digest")
    if csv is None and digest and data.series.digest != digest:  # its test split moved
        raise SeqmodelsError(f"{run.config['data']['csv']}: the run's CSV has changed since "
                             f"training, so its test split is not the one held out; evaluate "
                             f"on a file given explicitly as CSV")
    windows, H = len(data.starts[2]), data.config.horizon
    if not windows:
        raise SeqmodelsError("the run keeps no test part (its `splits` give the test 0): "
                             "backtest its settings instead (seqmodels forecast backtest)")
    require_memory(windows * H * BYTES_PER_FORECAST_VALUE,
                   f"evaluating {windows:,} test windows of `horizon` {H:,}",
                   "evaluate on a shorter CSV (given as CSV)")
    season = season or data.config.season or infer_season(data.series.step)
    notes = list(data.notes)
    if season and season > 1 and sum(len(p) for p in data.parts) < len(data.series):
        notes.append(f"no seasonal naive forecast: `missing` drop removed rows, so {season} "
                     f"rows back is no longer one season back")
        season = None
    choice = read_choice(RunDir(run.path))
    names = data.config.targets
    reports = [_series_report(run, data, k, season, choice, notes, csv,
                              plot if k == 0 else None) for k in range(len(names))]
    if len(names) == 1:
        return reports[0]
    return {"run": str(run.path), "targets": names, "series": dict(zip(names, reports)),
            "forecast": choice["forecast"], "forecast_note": describe_choice(choice),
            "notes": notes}


def _series_report(run: ForecastRun, data: Prepared, k: int, season: int | None, choice: dict,
                   notes: list[str], csv: str | None, plot: str | Path | None) -> dict:
    """evaluate_forecast's report of series k (the target: 0)."""
    config, W, H = data.config, data.config.window, data.config.horizon
    model, ends, actual = part_forecasts(run.model, data, 2, run.scaler, k)
    target = data.target(k)
    forecasts = {"model": model}
    forecasts.update(baselines(target, ends, H, season))
    if choice["forecast"] != MODEL:
        naive = {k: v for k, v in forecasts.items() if k != "model"}
        given = candidate_forecasts(model, naive).get(choice["forecast"])
        if given is not None:
            forecasts["the run's forecast"] = given
    scale = mase_scale(data.parts[0].iloc[:, k].to_numpy(float), season)
    results = {name: metrics(actual, f, scale) for name, f in forecasts.items()}
    bad = [name for name, m in results.items() if not all(map(math.isfinite, m.values()))]
    if bad:
        raise SeqmodelsError(f"the errors of the {bad[0]} forecast are not finite numbers: the "
                             f"values overflow float64 once unscaled (check the run's "
                             f"scaler and the CSV's magnitudes); nothing to report")
    naive = {k: v for k, v in results.items() if k not in ("model", "the run's forecast")}
    best = min(naive, key=lambda k: naive[k]["rmse"])
    report = {
        "run": str(run.path), "csv": str(run.config["data"]["csv"] if csv is None else csv),
        "target": config.targets[k],
        "window": W, "horizon": H, "test_rows": len(data.parts[2]),
        "test_windows": int(len(model)), "season": season, "metrics": results,
        "forecast": choice["forecast"], "forecast_note": describe_choice(choice),
        "base": data.config.base,
        "best_naive": best,
        # None when the naive forecast is exact (a constant series) up to float32 rounding of
        # the scaled values: no ratio to give
        "skill": results["model"]["rmse"] / results[best]["rmse"]
        if results[best]["rmse"] > EXACT * float(np.abs(actual).max(initial=0.0)) else None,
        "notes": notes,
    }
    if report["skill"] is None:
        naive_rmse, largest = results[best]["rmse"], float(np.abs(actual).max(initial=0.0))
        report["skill_note"] = (
            f"the {best} forecast is exact on this split (RMSE 0)" if naive_rmse == 0 else
            f"the {best} forecast's RMSE ({naive_rmse:.4g}) is within the float32 rounding of "
            f"values up to {largest:.4g}, too small to divide by")
    if plot:
        given = forecasts.get("the run's forecast", model)
        plot_test(data, forecasts, actual, ends, Path(plot), config.targets[k],
                  intervals(run, given, k).get("0.8"))
        report["plot"] = str(plot)
    return report


def format_evaluation(report: dict) -> str:
    """The report as an aligned table, with the skill ratio below (one per series)."""
    if "series" in report:
        return "\n\n".join(f"series {name}\n{format_evaluation(r)}"
                            for name, r in report["series"].items())
    lines = [f"evaluated on   the test split of {report['csv']}: {report['test_rows']} rows, "
             f"{report['test_windows']} windows (window {report['window']}, horizon "
             f"{report['horizon']})",
             f"{'forecast':<26}{'MAE':>12}{'RMSE':>12}{'sMAPE %':>10}{'MASE':>8}"]
    for name, m in report["metrics"].items():
        mase = f"{m['mase']:>8.3f}" if "mase" in m else f"{'-':>8}"
        lines.append(f"{name:<26}{m['mae']:>12.4g}{m['rmse']:>12.4g}{m['smape']:>10.3f}{mase}")
    if report["skill"] is None:
        lines.append(f"skill ratio    none: {report['skill_note']}")
    else:
        tail = ("below 1: the model beats the best naive forecast" if report["skill"] < 1 else
                "at or above 1: the model does not beat the best naive forecast")
        lines.append(f"skill ratio    {report['skill']:.3f} (model RMSE / "
                     f"{report['best_naive']} RMSE; {tail})")
    lines.append(f"the run gives  {report['forecast_note']}")
    lines.append("MASE           mean absolute error over the training part's one-season-back "
                 "(or one-step-back) error; below 1 beats that naive forecast in-sample")
    if report.get("plot"):
        lines.append(f"plot           {report['plot']}")
    return "\n".join(lines)


@one_at_a_time
def plot_test(data: Prepared, forecasts: dict, actual: np.ndarray, ends: np.ndarray,
              path: Path, target: str, band: tuple | None = None) -> None:
    """PNG: actual test values and each forecast's first step, against time; band: the 80%
    interval (lower, upper) around the run's forecast, shaded."""
    from seqmodels.files import atomic_path

    rows = np.concatenate([p.index.to_numpy() for p in data.parts])
    grid = rows[data.series_starts[2][0] + data.config.window]
    times = data.series.times
    xs = times.iloc[grid].to_numpy() if times is not None else grid
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _draw_test(xs, forecasts, actual, path, target, atomic_path, band=band)
    except ValueError:  # dates matplotlib cannot place (before year 1 or after 9999)
        _draw_test(grid, forecasts, actual, path, target, atomic_path, "row of the series",
                   band)


def _draw_test(xs, forecasts: dict, actual: np.ndarray, path: Path, target: str,
               atomic_path, xlabel: str | None = None, band: tuple | None = None) -> None:
    """Draw and write plot_test's figure against xs."""
    from matplotlib.figure import Figure  # not pyplot: no global state, so threads may plot

    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    if band is not None:
        ax.fill_between(xs, band[0][:, 0], band[1][:, 0], color="tab:blue", alpha=0.15, lw=0,
                        label="80% interval")
    ax.plot(xs, actual[:, 0], color="black", lw=1.5, label="actual")
    for name, f in forecasts.items():
        ax.plot(xs, f[:, 0], lw=1, alpha=0.9 if name == "model" else 0.6, label=name)
    ax.set_title("test split: one-step-ahead forecasts")
    ax.set_ylabel(target)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)


def predict_with_intervals(run: ForecastRun, csv: str,
                           on_note: Callable[[str], None] | None = None
                           ) -> tuple[list, np.ndarray, str, dict]:
    """The next H values after the end of csv: (timestamps or step numbers, values, time header).

    The last window's gaps follow the run's `missing` policy (mean/median: the training
    statistics stored in the run); timestamps need a regular step, else steps 1..H are given.
    on_note receives what reading the CSV found (say, times converted to UTC) and which
    forecast the run gives; the dict maps each interval level to its (lower, upper) bounds.
    """
    c = dataclasses.replace(run.series.with_defaults(), csv=csv)
    series = read_series(c)
    for note in series.notes if on_note else []:
        on_note(note)
    W, H = c.window, c.horizon
    if len(series) < W:
        raise SeqmodelsError(f"{csv}: {len(series)} rows, fewer than the run's `window` {W}")
    last = series.values.iloc[-W:]
    count, report = missing_report(dataclasses.replace(series, values=last,
                                                       lines=series.lines[-W:],
                                                       times=None if series.times is None
                                                       else series.times.iloc[-W:]))
    if count and c.missing == "error":
        raise SeqmodelsError(f"{csv}: the last {W} rows (the model's input) have {report}; "
                             f"fill them or train with another `missing` policy")
    stats = run.fill or dict(zip(run.scaler["columns"], run.scaler["mean"]))  # training means
    filled = fill_parts([series.values], c.missing, stats)[0]
    if len(filled) < W:
        raise SeqmodelsError(f"{csv}: fewer than {W} complete rows after dropping gaps")
    said: list[str] = []
    rows = filled.to_numpy(float)
    every = [next_values(run, rows, said.append if not k else None, k)
             for k in range(len(c.targets))]
    decimals = series.decimals if len(every) == 1 else None  # the target's: not the others'
    bounds = [{level: tuple(_as_written(b, decimals) for b in pair)
               for level, pair in intervals(run, values, k).items()}
              for k, values in enumerate(every)]
    values = np.stack(every, axis=1) if len(every) > 1 else every[0]  # (H, S) or (H,)
    bounds = bounds if len(every) > 1 else bounds[0]
    if not np.isfinite(values).all():
        raise SeqmodelsError("the forecasts overflow once unscaled (check the run's "
                             "scaler); nothing to report")
    if series.times is not None and series.step is not None:
        last = format_time(series.times.iloc[-1])
        try:
            future = future_times(series.times.iloc[-1], series.step, H)
        except (ValueError, OverflowError, NotImplementedError):  # pandas, dateutil
            future = None
        if future is None and not isinstance(series.step, tuple):  # months fail past 9999 only
            raise SeqmodelsError(f"{csv}: the {H} timestamp(s) after {last} pass the latest "
                                 f"time pandas can hold at the file's resolution; nothing to "
                                 f"print them as")
        if future is None or any(getattr(t, "year", 0) > 9999 for t in future):  # no reader has
            raise SeqmodelsError(f"{csv}: the {H} timestamp(s) after {last} pass the year "
                                 f"9999, the last a date can have; nothing to print them as")
        when, header = [series.format_time(t) for t in future], c.time_column
    else:
        when, header = list(range(1, H + 1)), "step"
    for note in said if on_note else []:
        on_note(note)
    return when, _as_written(values, decimals), header, bounds


def intervals(run: ForecastRun, values: np.ndarray, series: int = 0
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each level's (lower, upper) bounds around the run's forecasts of one series, values
    (..., H): the widths from the in-sample errors of its base's naive forecast (see
    forecast.choice); none for a run without them."""
    name = run.series.targets[series]
    widths = ((run.choice or {}).get("intervals") or {}).get(name, {})
    return {level: (values - np.asarray(w), values + np.asarray(w)) for level, w in widths.items()
            if len(w) == np.shape(values)[-1]}


def next_values(run: ForecastRun, rows: np.ndarray,
                on_note: Callable[[str], None] | None = None, series: int = 0) -> np.ndarray:
    """The run's forecast (H,) of the steps after rows (N, C: every column the run reads),
    filled, in original units, of one series: its model's, or the naive forecast its choice
    names."""
    c, choice = run.series, run.choice or read_choice(RunDir(run.path))
    W, H, S = c.window, c.horizon, len(c.targets)
    scaled = scale(rows[-W:], run.scaler)[:, [series, *range(S, rows.shape[1])]]
    padded = np.concatenate([scaled, np.zeros((H, scaled.shape[1]))])  # H rows to come
    x, _, base = make_windows(padded, np.array([0]), W, H, c.base, c.season)
    model = unscale_target(predict_scaled(run.model, x) + base, run.scaler, series)  # (1, H)
    given = candidate_forecasts(model, baselines(rows[:, series], np.array([len(rows)]), H,
                                                 c.season))
    if choice["forecast"] not in given:
        raise SeqmodelsError(f"{RunDir(run.path).choice}: names the forecast "
                             f"{choice['forecast']!r}, which this series cannot give (is the "
                             f"history shorter than a season?)")
    if choice["forecast"] != MODEL and on_note:
        on_note(f"the run gives {describe_choice(choice)}")
    return given[choice["forecast"]][0]


def _as_written(values: np.ndarray, decimals: int | None) -> np.ndarray:
    """Forecasts to the series' own precision plus two digits (every digit where the file
    writes numbers in scientific notation)."""
    return values if decimals is None else np.round(values, decimals + 2)
