"""The settings a series chooses for itself when they are not given: its season (from the time
step), the horizon, the split, what the model forecasts relative to (its base) and the window."""

from __future__ import annotations

import numpy as np

SEASONS = {"days=1": 7, "days=7": 52, "hours=1": 24, "minutes=60": 24}  # step -> season
HORIZONS = {"days=1": 14, "days=7": 13, "hours=1": 24, "minutes=60": 24}  # step -> horizon
MONTH_SEASONS = {1: 12, 3: 4}  # months per step -> season
MONTH_HORIZONS = {1: 12, 3: 8}  # months per step -> horizon (M4's and the textbooks')
OTHER_HORIZON = 10  # years, numbers, rows in file order
HORIZON_SHARE = 10  # the default horizon is at most a tenth of the series
MIN_WINDOWS = 2  # a default window leaves at least this many training windows per window row


def _step_key(step) -> str:
    """'days=1', 'hours=1', ... for a pandas Timedelta step; '' otherwise."""
    if step is None or isinstance(step, tuple) or not hasattr(step, "components"):
        return ""
    c = step.components
    if c.days and not (c.hours or c.minutes or c.seconds):
        return f"days={c.days}"
    if c.hours and not (c.days or c.minutes or c.seconds):
        return f"hours={c.hours}"
    if c.minutes and not (c.days or c.hours or c.seconds):
        return f"minutes={c.minutes}"
    return ""


def infer_season(step) -> int | None:
    """A natural season for a regular step: 7 daily, 52 weekly, 24 hourly, 12 monthly, 4
    quarterly; None when there is none to guess."""
    if isinstance(step, tuple):
        return MONTH_SEASONS.get(step[1])
    return SEASONS.get(_step_key(step))


def default_horizon(step, rows: int) -> int:
    """The usual horizon for the step (12 monthly, 8 quarterly, 13 weekly, 14 daily, 24 hourly,
    else 10), at most a tenth of the rows."""
    usual = (MONTH_HORIZONS.get(step[1], OTHER_HORIZON) if isinstance(step, tuple)
             else HORIZONS.get(_step_key(step), OTHER_HORIZON))
    return max(1, min(usual, rows // HORIZON_SHARE))


def part_rows(rows: int, splits: tuple[float, float, float], horizon: int
              ) -> tuple[int, int, int]:
    """Rows of the training, validation and test parts: the fractions, but a validation or test
    part given a fraction gets at least `horizon` rows (one whole forecast to score)."""
    from seqmodels.data.windows import split_bounds

    a, b = split_bounds(rows, splits)
    val, test = b - a, rows - b
    val = max(val, horizon) if splits[1] > 0 else 0
    test = max(test, horizon) if splits[2] > 0 else 0
    return rows - val - test, val, test


def baseline_errors(target: np.ndarray, horizon: int, season: int | None) -> dict[str, float]:
    """Mean absolute error over steps 1..horizon of each base's own forecast, from every origin
    of `target` (the training part): none (the mean), last (the last value) and, with a
    season, seasonal (the value one season back)."""
    n = len(target)
    first = max(season or 1, 1)
    origins = np.arange(first, n - horizon + 1)  # forecasts made after target[:t]
    if len(origins) == 0:
        return {}
    steps = origins[:, None] + np.arange(horizon)[None, :]  # (N, H)
    actual = target[steps]
    errors = {"none": float(np.mean(np.abs(actual - target.mean()))),
              "last": float(np.mean(np.abs(actual - target[origins - 1][:, None])))}
    if season and season > 1:
        h = np.arange(horizon)
        back = steps - season * (h // season + 1)[None, :]
        errors["seasonal"] = float(np.mean(np.abs(actual - target[back])))
    return errors


def choose_base(target: np.ndarray | list[np.ndarray], horizon: int, season: int | None
                ) -> tuple[str, str]:
    """The base whose own forecast errs least on the training part (the model learns what is
    left), and why, in words; of several series, by their errors each divided by the series'
    spread, summed."""
    series = target if isinstance(target, list) else [target]
    each = [baseline_errors(t, horizon, season) for t in series]
    if not all(each):
        return "none", "the training part is too short to compare bases"
    spread = [float(np.std(t)) or 1.0 for t in series]
    errors = {k: sum(e[k] / (sp if len(series) > 1 else 1.0) for e, sp in zip(each, spread))
              for k in each[0]}
    best = min(errors, key=errors.get)
    listed = ", ".join(f"{k} {v:.4g}" for k, v in errors.items())
    return best, f"its forecast errs least on the training part (mean absolute error: {listed})"


def default_window(train_rows: int, horizon: int, season: int | None, base: str) -> int:
    """Two seasons (or two horizons, at least 10) of input, shortened while the training part
    holds fewer than MIN_WINDOWS windows per input row, down to one season (or 2 rows)."""
    m = season if season and season > 1 else 0
    lowest = m if base == "seasonal" else 2
    window = max(2 * m, 2 * horizon, 10)
    while window > lowest and train_rows - window - horizon + 1 < MIN_WINDOWS * window:
        window -= 1
    return max(window, 1)
