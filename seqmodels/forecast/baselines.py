"""The naive forecasts every model is compared with, and the error measures: MAE, RMSE, sMAPE
and MASE (the mean absolute error over the in-sample seasonal naive one)."""

from __future__ import annotations

import numpy as np

from seqmodels.errors import SeqmodelsError


def metrics(actual: np.ndarray, forecast: np.ndarray, scale: float | None = None
            ) -> dict[str, float]:
    """MAE, RMSE and sMAPE (percent, 0..200) of forecasts against actual values, and MASE when
    `scale` (the in-sample naive error, see mase_scale) is given and positive."""
    with np.errstate(over="ignore", invalid="ignore"):  # the caller refuses what is not finite
        err = forecast - actual
        denom = np.abs(actual) + np.abs(forecast)
        ratio = np.divide(2 * np.abs(err), denom, out=np.zeros_like(denom), where=denom > 0)
        out = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
               "smape": float(100 * np.mean(ratio))}
    if scale:
        out["mase"] = out["mae"] / scale
    return out


def mase_scale(history: np.ndarray, season: int | None) -> float | None:
    """The mean absolute error of the one-season-back (or, without a season or too short a
    history, one-step-back) forecast over `history`: what MASE divides by; None when it is 0."""
    m = season if season and season > 1 and len(history) > season else 1
    if len(history) <= m:
        return None
    scale = float(np.mean(np.abs(history[m:] - history[:-m])))
    return scale if scale > 0 else None


def last_value(target: np.ndarray, ends: np.ndarray, horizon: int) -> np.ndarray:
    """Naive forecast (N, H): the window's last value, repeated. ends: index after each window."""
    return np.repeat(target[ends - 1][:, None], horizon, axis=1)


def seasonal_naive(target: np.ndarray, ends: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Seasonal naive (N, H): the value one season (m steps) before each forecast step, taken
    from the last observed season (step h uses y[end + h - m * ceil((h + 1) / m)])."""
    h = np.arange(horizon)
    back = season * ((h // season) + 1)  # (H,)
    index = ends[:, None] + h[None, :] - back[None, :]  # (N, H)
    if index.min() < 0:
        raise SeqmodelsError(f"`season` {season} reaches before the start of the series")
    return target[index]


def drift(target: np.ndarray, ends: np.ndarray, horizon: int) -> np.ndarray:
    """Drift forecast (N, H): the last value plus h times the mean step from the first value."""
    first, last = target[0], target[ends - 1]
    slope = (last - first) / np.maximum(ends - 1, 1)
    return last[:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


def baselines(target: np.ndarray, ends: np.ndarray, horizon: int, season: int | None
              ) -> dict[str, np.ndarray]:
    """The naive forecasts (N, H) after each end: last value, drift and, with a season that the
    history reaches back to, seasonal naive."""
    out = {"last value": last_value(target, ends, horizon), "drift": drift(target, ends, horizon)}
    if season and season > 1 and len(ends) and ends.min() >= season:
        out[f"seasonal naive (m={season})"] = seasonal_naive(target, ends, horizon, season)
    return out
