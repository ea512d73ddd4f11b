"""The forecasting bench: seqmodels' defaults against the naive forecasts and, when statsforecast
is installed, AutoETS and AutoARIMA, by rolling-origin backtests on real series that ship with
pmdarima and statsmodels (not seqmodels' built-in three).

    python -m benchmarks.bench --forecast [--origins 3] [--series a,b]

Every method forecasts the same horizon after the same origins from the same rows; MASE divides
by the in-sample seasonal naive error of the rows before each origin; the summary is the
geometric mean over the series of each method's MASE relative to seasonal naive's (naive's where
the series has no season).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# name -> (where it comes from, what it is, start, step, loader of its values)
SERIES: dict[str, tuple[str, str, str, str, Callable[[], np.ndarray]]] = {}


def _pmdarima(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import pmdarima.datasets as datasets

        return np.asarray(getattr(datasets, f"load_{name}")(), float)
    return load


def _statsmodels(loader: Callable) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import statsmodels.api as sm

        return np.asarray(loader(sm.datasets), float)
    return load


SERIES.update({
    "airpassengers": ("pmdarima (MIT), Box & Jenkins", "monthly airline passengers 1949-1960: "
                      "seasonal with trend", "1949-01-01", "month", _pmdarima("airpassengers")),
    "wineind": ("pmdarima (MIT), from R's forecast", "monthly Australian wine sales 1980-1994: "
                "seasonal", "1980-01-01", "month", _pmdarima("wineind")),
    "woolyrnq": ("pmdarima (MIT), from R's forecast", "quarterly Australian wool production "
                 "1965-1994: seasonal", "1965-01-01", "quarter", _pmdarima("woolyrnq")),
    "lynx": ("pmdarima (MIT), from R's datasets", "yearly Canadian lynx trappings 1821-1934: "
             "cyclic", "1821", "year", _pmdarima("lynx")),
    "austres": ("pmdarima (MIT), from R's datasets", "quarterly Australian residents "
                "1971-1993: trend", "1971-03-01", "quarter", _pmdarima("austres")),
    "realgdp": ("statsmodels (BSD-3) macrodata", "quarterly US real GDP 1959-2009: "
                "macroeconomic", "1959-01-01", "quarter",
                _statsmodels(lambda d: d.macrodata.load_pandas().data["realgdp"])),
    "elnino": ("statsmodels (BSD-3) elnino", "monthly Pacific sea temperature 1950-2010: "
               "climate", "1950-01-01", "month",
               _statsmodels(lambda d: d.elnino.load_pandas().data.iloc[:, 1:13]
                            .to_numpy().ravel())),
})


def write_series(name: str, folder: Path) -> Path:
    """The series as a CSV file with a time column, as a user would give it."""
    import pandas as pd

    _, _, start, step, load = SERIES[name]
    values = load()
    if step == "year":
        times = [str(int(start) + i) for i in range(len(values))]
    else:
        months = 1 if step == "month" else 3
        times = [t.strftime("%Y-%m-%d") for t in
                 pd.date_range(start, periods=len(values), freq=f"{months}MS")]
    path = folder / f"{name}.csv"
    pd.DataFrame({"time": times, "value": values}).to_csv(path, index=False)
    return path


def statsforecast_methods(season: int) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """AutoETS and AutoARIMA as forecast functions (history, horizon) -> (horizon,), or none
    when statsforecast is not installed."""
    try:
        from statsforecast.models import AutoARIMA, AutoETS
    except ImportError:
        return {}

    def method(model_class):
        def run(history: np.ndarray, horizon: int) -> np.ndarray:
            model = model_class(season_length=max(season, 1))
            return np.asarray(model.forecast(y=history.astype(float), h=horizon)["mean"])
        return run

    return {"AutoETS": method(AutoETS), "AutoARIMA": method(AutoARIMA)}


def run_series(name: str, csv: Path, origins: int, seeds: int = 1) -> dict:
    """One series' backtest: seqmodels' defaults, the naive forecasts and statsforecast's."""
    from seqmodels.forecast.backtest import backtest_forecaster
    from seqmodels.forecast.baselines import mase_scale, metrics
    from seqmodels.forecast.series import SeriesConfig

    started = time.monotonic()
    report = backtest_forecaster(SeriesConfig(csv=str(csv), time_column="time", target="value"),
                                 origins=origins, seeds=seeds)
    values = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=1)
    others = statsforecast_methods(report["season"])
    for result in report["origins"]:
        origin, horizon = result["origin"], report["horizon"]
        history, actual = values[:origin], values[origin:origin + horizon]
        scale = mase_scale(history, report["season"])
        for method, forecast in others.items():
            result["metrics"][method] = metrics(actual, forecast(history, horizon), scale)
    methods = list(report["origins"][0]["metrics"])
    mean = {m: float(np.mean([r["metrics"][m]["mase"] for r in report["origins"]]))
            for m in methods}
    smape = {m: float(np.mean([r["metrics"][m]["smape"] for r in report["origins"]]))
             for m in methods}
    return {"name": name, "rows": report["rows"], "horizon": report["horizon"],
            "season": report["season"], "mase": mase_of(mean), "smape": smape,
            "used": [f"{r['forecast']}/{r['base']}/w{r['window']}" for r in report["origins"]],
            "coverage": report["coverage"], "origins": report["origins"],
            "points": sum(r["scored"] for r in report["origins"]),
            "seconds": time.monotonic() - started}


def mase_of(mean: dict) -> dict:
    """The MASE table of one series, methods in a fixed order."""
    return dict(mean)


def reference(mase: dict, season: int) -> str:
    """The naive method the relative MASE divides by: seasonal naive, else naive."""
    seasonal = f"seasonal naive (m={season})"
    return seasonal if seasonal in mase else "last value"


def forecast_bench(origins: int = 3, names: list[str] | None = None,
                   save: str | None = None, seeds: int = 1) -> None:
    """Print the table: MASE per series and method, and the geometric mean relative MASE
    (save: also write every origin's forecasts, scores and intervals there as JSON)."""
    names = names or list(SERIES)
    unknown = [n for n in names if n not in SERIES]
    if unknown:
        raise SystemExit(f"unknown series {unknown[0]!r} (known: {', '.join(SERIES)})")
    print(f"forecast bench: {origins} rolling origins per series, refit at each"
          + (f" (the mean of {seeds} seeds)" if seeds > 1 else "") + ", horizon 12 "
          "monthly / 8 quarterly / 10 yearly; MASE (mean over origins)\n")
    for n in names:
        source, about, *_ = SERIES[n]
        print(f"  {n:<14}{about} [{source}]")
    print(flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            rows.append(run_series(n, write_series(n, Path(tmp)), origins, seeds))
            r = rows[-1]
            print(f"{n}: " + ", ".join(f"{m} {v:.3f}" for m, v in r["mase"].items())
                  + f"  (seqmodels used {', '.join(r['used'])}; {r['seconds']:.0f} s)",
                  flush=True)
    if save:
        import json

        Path(save).write_text(json.dumps(rows, indent=1))
    methods = [m for m in rows[0]["mase"] if m not in ("last value", "drift")
               and not m.startswith("seasonal naive")] + ["last value", "drift"]
    print(f"\n{'series':<16}" + "".join(f"{m[:14]:>15}" for m in methods) + f"{'snaive':>10}")
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    for r in rows:
        ref = reference(r["mase"], r["season"])
        cells = ""
        for m in methods:
            cells += f"{r['mase'][m]:>15.3f}"
            ratios[m].append(r["mase"][m] / r["mase"][ref])
        print(f"{r['name']:<16}{cells}{r['mase'][ref]:>10.3f}")
    print(f"\n{'geometric mean of MASE relative to seasonal naive (naive if no season)':<16}")
    print(f"{'':<16}" + "".join(f"{math.exp(np.mean(np.log(ratios[m]))):>15.3f}"
                                for m in methods))
    print(f"\n{'sMAPE %':<16}" + "".join(f"{m[:14]:>15}" for m in methods))
    for r in rows:
        print(f"{r['name']:<16}" + "".join(f"{r['smape'][m]:>15.2f}" for m in methods))
    print(f"{'mean':<16}" + "".join(f"{np.mean([r['smape'][m] for r in rows]):>15.2f}"
                                    for m in methods))
    points = sum(r["points"] for r in rows)
    print("\nseqmodels' prediction intervals (the base's naive forecast's in-sample errors, "
          "shrunk by the validation ratio ** 0.25), share of the backtest's values inside:")
    for level in rows[0]["coverage"]:
        per = ", ".join(f"{r['name']} {100 * r['coverage'][level]:.0f}%" for r in rows)
        pooled = sum(r["coverage"][level] * r["points"] for r in rows) / points
        print(f"  {100 * float(level):g}% intervals: {100 * pooled:.1f}% of {points} values "
              f"({per})")
