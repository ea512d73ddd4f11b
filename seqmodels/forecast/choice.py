"""The model's forecasts of a part's windows, and the choice made once training ends: the model,
or the naive forecast that beat it on the validation part (never a worse forecast unsaid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.files import check_format, read_json, write_json_atomic
from seqmodels.forecast.baselines import baselines, mase_scale, metrics
from seqmodels.forecast.prepare import Prepared
from seqmodels.forecast.series import unscale_target
from seqmodels.settings import is_finite
from seqmodels.training.rundir import RunDir

CHOICE_FORMAT = "seqmodels.forecast-choice"
MAX_CHOICE_BYTES = 2**26  # widths: 2 levels x horizon x series
MODEL = "model"


def predict_scaled(net, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The model's (N, H) forecasts for windows x (N, W, F), in scaled units."""
    if len(x) == 0:
        return np.zeros((0, net.outputs[0].shape[-1]), np.float32)
    if not np.isfinite(x).all():
        raise SeqmodelsError("the model's input holds NaN or infinite values (check the CSV "
                             "and the run's scaler)")
    out = np.concatenate([np.asarray(net(x[i:i + batch], training=False))
                          for i in range(0, len(x), batch)])
    if not np.isfinite(out).all():
        raise SeqmodelsError("the model's forecasts are NaN or infinite (its weights are not "
                             "finite numbers); nothing to report")
    return out


def part_forecasts(net, data: Prepared, part: int, scaler: dict, series: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's forecasts (N, H) of one series' windows in part, in original units, the
    index in data.target(series) of each one's first step (N,), and the values as read."""
    chunks = [(predict_scaled(net, x), base)
              for x, _, base in data.window_chunks(part, series=series)]
    forecast, base = (np.concatenate(a) for a in zip(*chunks))
    model = unscale_target(forecast + base, scaler, series)  # (N, H)
    ends = data.series_starts[part][series] + data.config.window
    # the values as read, not y unscaled: float32 scaling put an error on exact baselines
    actual = data.target(series)[ends[:, None] + np.arange(data.config.horizon)[None, :]]
    return model, ends, actual


def choose(net, data: Prepared, scaler: dict, run: RunDir) -> dict:
    """Compare the model with the naive forecasts on the validation part (mean absolute error
    over every window and step, of several series each divided by its in-sample naive error),
    write the choice in the run and return it."""
    c = data.config
    each = []  # per series: (candidates, actual, what its errors are divided by)
    for k in range(len(c.targets)):
        model, ends, actual = part_forecasts(net, data, 1, scaler, k)
        candidates = candidate_forecasts(
            model, baselines(data.target(k), ends, c.horizon, c.season))
        scale = 1.0 if len(c.targets) == 1 else (
            mase_scale(data.parts[0].iloc[:, k].to_numpy(float), c.season) or 1.0)
        each.append((candidates, actual, scale))
    errors = {m: sum(metrics(actual, cand[m])["mae"] / scale for cand, actual, scale in each)
              for m in each[0][0] if all(m in cand for cand, _, _ in each)}
    if not all(np.isfinite(v) for v in errors.values()):
        raise SeqmodelsError("the validation errors are not finite numbers (check the CSV's "
                             "magnitudes); no forecast to choose")
    best = min(errors, key=errors.get)
    naive = best if best != MODEL else reference_naive(c.base, c.season, errors)
    widths = {}
    for k, (name, (cand, actual, _)) in enumerate(zip(c.targets, each)):
        theirs = metrics(actual, cand[naive])["mae"]
        ratio = metrics(actual, cand[best])["mae"] / theirs if theirs > 0 else 1.0
        history = data.target(k)[:data.offset(2)]  # training and validation rows
        widths[name] = interval_widths(history, naive, ratio, c.horizon, c.season)
    choice = {"format": CHOICE_FORMAT, "version": 1, "forecast": best,
              "validation_mae": errors, "validation_windows": int(len(each[0][1])),
              "intervals": widths}
    write_json_atomic(run.choice, choice)
    return choice


def candidate_forecasts(model: np.ndarray, naive: dict[str, np.ndarray]
                        ) -> dict[str, np.ndarray]:
    """The forecasts a run may give: its model's and each naive one. (The model's averaged with
    a naive one was tried as well and lost on the forecast bench: geometric mean relative MASE
    0.620 against 0.616 without it.)"""
    return {MODEL: model, **naive}


LEVELS = (0.8, 0.95)  # the prediction intervals given


def reference_naive(base: str, season: int | None, errors: dict[str, float]) -> str:
    """The naive forecast whose in-sample errors size a model's intervals: its base's own
    (seasonal naive for base seasonal, else the last value), or the best naive one."""
    name = f"seasonal naive (m={season})" if base == "seasonal" else "last value"
    return name if name in errors else min((m for m in errors if m != MODEL), key=errors.get)


SHRINK = 0.25  # the power of (the run's validation error / the naive one's) that narrows them


def interval_widths(history: np.ndarray, naive: str, ratio: float, horizon: int,
                    season: int | None) -> dict[str, list[float]]:
    """Half-widths (H,) of the prediction intervals at each of LEVELS: per step, the
    ceil((N + 1) q)-th smallest absolute error of the `naive` forecast made from each of the N
    origins in `history` (every row the run has seen), times min(ratio, 1) ** SHRINK, where
    ratio is the run's forecast's validation error over that naive forecast's.

    Chosen on the forecast bench's backtests (210 values, 7 series; docs/quality.md): the run's
    own validation errors gave intervals covering 61% (80%) and 76% (95%); the in-sample errors
    of the base's naive forecast, shrunk by the ratio to the power 0, 0.25, 0.5 and 1, covered
    87/96, 81/94, 71/87 and 56/70% (computed from the saved backtests, not refitted).
    """
    first = max(season or 1, 1) + 1
    ends = np.arange(first, len(history) - horizon + 1)
    if len(ends) == 0:
        return {}
    forecast = baselines(history, ends, horizon, season).get(naive)
    if forecast is None:
        return {}
    actual = history[ends[:, None] + np.arange(horizon)[None, :]]
    errors = np.sort(np.abs(actual - forecast), axis=0)
    shrink = min(ratio, 1.0) ** SHRINK if np.isfinite(ratio) else 1.0
    out = {}
    for q in LEVELS:
        k = min(int(np.ceil((len(errors) + 1) * q)), len(errors)) - 1
        out[f"{q:g}"] = [float(w) * shrink for w in errors[k]]
    return out


def read_choice(run: RunDir) -> dict:
    """The run's choice; a run trained before choices were made gives its model."""
    path = run.choice
    if not Path(path).exists():
        return {"forecast": MODEL, "validation_mae": {}}
    data = check_format(read_json(path, MAX_CHOICE_BYTES), CHOICE_FORMAT, 1, str(path),
                        "choice")
    errors = data.get("validation_mae")
    if not isinstance(data.get("forecast"), str) or not (
            isinstance(errors, dict) and all(is_finite(v) for v in errors.values())
            and (not errors and data["forecast"] == MODEL
                 or {MODEL, data["forecast"]} <= set(errors) and len(errors) > 1)):
        raise SeqmodelsError(f"{path}: damaged ('forecast' must name a forecast and "
                             f"'validation_mae' give the model's and the others' errors)")
    intervals = data.get("intervals", {})
    if not (isinstance(intervals, dict) and all(
            isinstance(levels, dict) and all(
                isinstance(w, list) and all(is_finite(v) and v >= 0 for v in w)
                for w in levels.values()) for levels in intervals.values())):
        raise SeqmodelsError(f"{path}: damaged ('intervals' must map each series to lists of "
                             f"widths, finite and not negative)")
    return data


def describe_choice(choice: dict) -> str:
    """One line: which forecast the run gives and why."""
    errors = choice.get("validation_mae") or {}
    if choice["forecast"] == MODEL:
        if not errors:
            return "the model's"
        others = {k: v for k, v in errors.items() if k != MODEL}
        best = min(others, key=others.get)
        return (f"the model's (validation MAE {errors[MODEL]:.4g}, best naive: {best} "
                f"{others[best]:.4g})")
    return (f"the {choice['forecast']} forecast, which beat the model on the validation part "
            f"(MAE {errors[choice['forecast']]:.4g} against the model's {errors[MODEL]:.4g})")
