"""Rolling-origin backtests: refit the forecaster on the rows before each origin, forecast the
horizon after it, and score the forecast and the naive ones by MASE, sMAPE and RMSE."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.forecast.baselines import baselines, mase_scale, metrics
from seqmodels.forecast.defaults import default_train_config
from seqmodels.forecast.prepare import prepare
from seqmodels.forecast.series import SeriesConfig, fill_parts
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import RunOptions, TrainConfig

MEASURES = ("mase", "smape", "rmse")
MODEL = "seqmodels"


def backtest_forecaster(series: SeriesConfig, model: ModelConfig | None = None,
                        config: TrainConfig | None = None, origins: int = 3,
                        on_origin: Callable[[dict], None] | None = None,
                        options: RunOptions | None = None, seeds: int = 1) -> dict:
    """Refit at each of `origins` rolling origins (the last one a horizon before the end, the
    others a horizon apart) on the rows before it, with these settings (automatic ones chosen
    again from those rows), and score the horizon after it against seasonal naive, naive and
    drift. on_origin receives each origin's result as it is made. seeds: refit that many
    models at each origin (config's seed, then the next ones) and average their forecasts."""
    from seqmodels.forecast.train import train_forecaster

    if origins < 1:
        raise SeqmodelsError("`origins` must be at least 1")
    if series.more_targets or (series.target and "," in series.target):
        raise SeqmodelsError("a backtest scores one series: give one `target`")
    splits = (1 - series.splits[1], series.splits[1], 0.0)  # its validation; no test part
    whole = prepare(dataclasses.replace(series, splits=splits, end=None))
    c = whole.config
    rows = len(whole.series)
    horizon, season = c.horizon, c.season
    fixed = dataclasses.replace(series, horizon=horizon, season=season, splits=splits,
                                end=None)
    values = whole.series.values  # NaN where missing
    observed = values.iloc[:, 0].notna().to_numpy()
    first = rows - origins * horizon
    if first < 2 * horizon:
        raise SeqmodelsError(f"{c.csv}: {rows} rows leave too few before the first of "
                             f"`origins` {origins} (a `horizon` {horizon} apart, the last "
                             f"{horizon} rows before the end); give fewer origins")
    results, base = [], config or default_train_config()
    with tempfile.TemporaryDirectory(prefix="seqmodels-backtest-") as tmp:
        for k in range(origins):
            origin = first + k * horizon
            runs = []
            for j in range(seeds):
                try:
                    runs.append(train_forecaster(
                        dataclasses.replace(fixed, end=origin), model,
                        dataclasses.replace(base, seed=base.seed + j),
                        out=Path(tmp) / f"origin-{k + 1}-seed-{base.seed + j}",
                        options=options or RunOptions()))
                except SeqmodelsError as exc:
                    raise SeqmodelsError(f"origin {k + 1} (the first {origin} rows): "
                                         f"{exc}") from None
            result = _score(runs, values, observed, origin, horizon, season)
            results.append(result)
            if on_origin:
                on_origin(result)
    return {"csv": str(series.csv), "target": c.target, "rows": rows, "horizon": horizon,
            "season": season, "origins": results, "refit": "at every origin", "seeds": seeds,
            "overall": _overall(results), "coverage": _coverage(results)}


def _coverage(results: list[dict]) -> dict[str, float]:
    """The share of scored values inside each level's interval, over every origin."""
    levels = results[0]["coverage"].keys()
    total = sum(r["scored"] for r in results)
    return {level: sum(r["coverage"][level] * r["scored"] for r in results) / total
            for level in levels if all(level in r["coverage"] for r in results)}


def _score(runs: list, values, observed: np.ndarray, origin: int, horizon: int, season: int
           ) -> dict:
    """One origin: the runs' mean forecast and the naive ones against the observed values after
    it (the first run's intervals)."""
    from seqmodels.forecast.evaluate import intervals, next_values

    run = runs[0]
    history = fill_parts([values.iloc[:origin]], run.series.missing, run.fill or None)[0]
    rows = history.to_numpy(float)  # fewer than origin where `missing` drop removed some
    after = values.iloc[origin:origin + horizon, 0].to_numpy(float)
    seen = observed[origin:origin + horizon]
    if not seen.any():
        raise SeqmodelsError(f"the {horizon} rows after row {origin} hold no observed value to "
                             f"score")
    forecasts = {MODEL: np.mean([next_values(r, rows) for r in runs], axis=0)[None]}
    forecasts.update(baselines(rows[:, 0], np.array([len(rows)]), horizon, season))
    actual = after[None]
    scale = mase_scale(rows[:, 0], season)
    scores = {name: metrics(actual[:, seen], f[:, seen], scale) for name, f in forecasts.items()}
    bounds = intervals(run, forecasts[MODEL][0])
    coverage = {level: float(np.mean((low[seen] <= after[seen]) & (after[seen] <= high[seen])))
                for level, (low, high) in bounds.items()}
    widths = {level: ((high - low) / 2).tolist() for level, (low, high) in bounds.items()}
    return {"origin": origin, "scored": int(seen.sum()), "window": run.series.window,
            "coverage": coverage, "intervals": widths,
            "validation_mae": (run.choice or {}).get("validation_mae", {}),
            "base": run.series.base, "forecast": run.choice["forecast"] if run.choice else "model",
            "forecasts": {k: v[0].tolist() for k, v in forecasts.items()},
            "actual": actual[0].tolist(), "metrics": scores}


def _overall(results: list[dict]) -> dict:
    """Each method's measures averaged over the origins (MASE only where every origin has it)."""
    names = results[0]["metrics"].keys()
    out = {}
    for name in names:
        out[name] = {}
        for measure in MEASURES:
            got = [r["metrics"][name].get(measure) for r in results]
            if all(v is not None for v in got):
                out[name][measure] = float(np.mean(got))
    return out


def format_backtest(report: dict) -> str:
    """Per origin and overall: each method's MASE, sMAPE and RMSE, aligned."""
    names = list(report["overall"])
    width = max(len(n) for n in names) + 2
    lines = [f"backtest of {report['csv']} ({report['target']}): {len(report['origins'])} "
             f"origin(s), horizon {report['horizon']}, season {report['season']}, refit "
             f"{report['refit']}",
             f"{'origin':<10}{'method':<{width}}{'MASE':>8}{'sMAPE %':>10}{'RMSE':>12}"]

    def row(label: str, name: str, m: dict) -> str:
        mase = f"{m['mase']:>8.3f}" if "mase" in m else f"{'-':>8}"
        return f"{label:<10}{name:<{width}}{mase}{m['smape']:>10.3f}{m['rmse']:>12.4g}"

    for r in report["origins"]:
        for i, name in enumerate(names):
            lines.append(row(f"row {r['origin']}" if i == 0 else "", name, r["metrics"][name]))
    for i, name in enumerate(names):
        lines.append(row("overall" if i == 0 else "", name, report["overall"][name]))
    used = ", ".join(f"row {r['origin']}: {r['forecast']} (base {r['base']}, window "
                     f"{r['window']})" for r in report["origins"])
    lines.append(f"seqmodels gave {used}")
    if report["coverage"]:
        lines.append("interval coverage " + ", ".join(
            f"{100 * float(level):g}%: {100 * share:.0f}% of the values"
            for level, share in report["coverage"].items()))
    return "\n".join(lines)
