"""A CSV series read, split chronologically, filled, scaled and windowed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from seqmodels.data.windows import split_bounds
from seqmodels.errors import SeqmodelsError
from seqmodels.forecast.auto import (
    choose_base,
    default_horizon,
    default_window,
    infer_season,
    part_rows,
)
from seqmodels.forecast.series import (
    MISSING_POLICIES,
    Series,
    SeriesConfig,
    describe_step,
    fill_parts,
    fill_statistics,
    fit_scaler,
    make_windows,
    missing_report,
    read_series,
    scale,
    window_starts,
)

PARTS = ("train", "validation", "test")
HOW = {  # what each `missing` policy did, for the note
    "drop": "removed those rows",
    "ffill": "filled each gap with the last earlier value",
    "interpolate": "filled them linearly between the values around each gap, within its part",
    "mean": "filled them with the training part's column means",
    "median": "filled them with the training part's column medians",
}
CHUNK_VALUES = 2**25  # input values in one chunk of windows (384 MiB as float64 + float32)


@dataclass
class Prepared:
    """A series split, filled, scaled and windowed; parts keep their grid row numbers as index."""

    config: SeriesConfig  # with every automatic setting resolved (window, horizon, base...)
    series: Series
    parts: list  # 3 pandas DataFrames (n_i, F), original units, filled
    observed: list[np.ndarray]  # per part (n_i, S): each target value was in the file
    scaler: dict
    fill: dict[str, float]
    starts: list[np.ndarray]  # per part: starts of the windows whose targets lie in it, as rows
    # of scaled(i), every series' block end to end (a window's inputs may lie in earlier parts)
    notes: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)  # the automatic settings and why
    series_starts: list[list[np.ndarray]] = field(default_factory=list)  # [part][series]: the
    # same starts, as rows of that series' own block(i, s)

    @property
    def n_series(self) -> int:
        """How many series the model forecasts."""
        return len(self.config.targets)

    def block(self, i: int, s: int = 0) -> np.ndarray:
        """Series s over parts 0..i, scaled: its own column, then the features, (n, 1 + F)."""
        rows = scale(np.concatenate([p.to_numpy(float) for p in self.parts[:i + 1]]),
                     self.scaler)
        return rows[:, [s, *range(self.n_series, rows.shape[1])]]

    def scaled(self, i: int) -> np.ndarray:
        """Every series' block(i, s) end to end, (S n, 1 + F) float64."""
        return np.concatenate([self.block(i, s) for s in range(self.n_series)])

    def windows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (N, W, F), y (N, H), base (N, H) of part i, scaled (see make_windows)."""
        return next(self.window_chunks(i, len(self.starts[i])))

    def window_chunks(self, i: int, size: int | None = None, series: int | None = None
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """windows(i) (or those of one series) in consecutive chunks of at most size windows,
        one in memory at a time (default: 1024, fewer where a window is so wide that 1024 would
        pass CHUNK_VALUES)."""
        c = self.config
        rows = self.scaled(i) if series is None else self.block(i, series)
        starts = self.starts[i] if series is None else self.series_starts[i][series]
        size = size or min(1024, max(1, CHUNK_VALUES // (c.window * rows.shape[1])))
        for a in range(0, max(len(starts), 1), max(size, 1)):
            yield make_windows(rows, starts[a:a + size], c.window, c.horizon, c.base, c.season)

    def target(self, series: int = 0) -> np.ndarray:
        """One series' filled values over all parts end to end (original units)."""
        return np.concatenate([p.iloc[:, series].to_numpy(float) for p in self.parts])

    def offset(self, i: int) -> int:
        """Where part i begins in target()."""
        return sum(len(p) for p in self.parts[:i])


def prepare(config: SeriesConfig, scaler: dict | None = None,
            fill: dict[str, float] | None = None) -> Prepared:
    """Read, check, split chronologically, fill gaps and scale (statistics from training only);
    settings left as None or auto are chosen from the series (see forecast.auto).

    A stored scaler and fill statistics (from a run) are used as they are instead of refitted.
    """
    config = config.with_defaults().validate()
    series = read_series(config)
    if config.end is not None:
        if config.end > len(series):
            raise SeqmodelsError(f"{config.csv}: `end` {config.end} passes its {len(series)} "
                                 f"rows")
        series = dataclasses.replace(series, values=series.values.iloc[:config.end],
                                     times=None if series.times is None
                                     else series.times.iloc[:config.end],
                                     lines=series.lines[:config.end])
    c, notes, chosen = config, list(series.notes), []
    if c.season is None:
        c.season = infer_season(series.step) or 1
        if c.season > 1:
            chosen.append(f"season {c.season} (from the time step, {describe_step(series.step)})")
    if c.horizon is None:
        c.horizon = default_horizon(series.step, len(series))
        chosen.append(f"horizon {c.horizon}")
    least = (c.window or 1) + c.horizon
    if len(series) < least:
        raise SeqmodelsError(f"{c.csv}: {len(series)} rows, fewer than `window` {c.window or 1} + "
                             f"`horizon` {c.horizon} = {least}")
    count, report = missing_report(series)
    if count and c.missing == "error":
        raise SeqmodelsError(f"{c.csv}: {report}; choose how to handle them with `missing` "
                             f"{'|'.join(MISSING_POLICIES[1:])}")
    n_train, n_val, _ = part_rows(len(series), c.splits, c.horizon)
    n_train = max(n_train, 0)
    if n_train < 1 and split_bounds(len(series), c.splits)[0] >= 1:  # the horizon's doing
        raise SeqmodelsError(f"{c.csv}: {len(series)} rows leave no training part once the "
                             f"validation and test parts hold a `horizon` ({c.horizon}) of rows "
                             f"each; give a smaller horizon or a longer series")
    a, b = n_train, n_train + n_val
    raw = [series.values.iloc[:a], series.values.iloc[a:b], series.values.iloc[b:]]
    for name, part in zip(PARTS, raw):
        if len(part) == 0 and (name != "test" or c.splits[2] > 0):
            raise SeqmodelsError(f"{c.csv}: `splits` {','.join(f'{f:g}' for f in c.splits)} "
                                 f"leaves the {name} part of {len(series)} rows empty; give it "
                                 f"a larger fraction")
    observed_all = series.values.iloc[:, :len(c.targets)].notna().to_numpy()  # (n, S)
    if fill is None:
        fill = fill_statistics(raw[0], c.missing) if count else {}
    parts = fill_parts(raw, c.missing, fill)
    for name, before, after in zip(PARTS, raw, parts):
        if len(after) == 0 and len(before):  # `missing` drop removed every row
            worst = before.isna().sum()
            raise SeqmodelsError(
                f"{c.csv}: `missing` drop removed all {len(before)} rows of the {name} part (each "
                f"has a gap; column {worst.idxmax()!r} lacks {int(worst.max())} of them); fill "
                f"the gaps with another `missing` policy, or leave that column out")
    observed = [observed_all[p.index.to_numpy()] for p in parts]
    if count:
        notes.append(f"{report}; `missing` {c.missing} {HOW[c.missing]}")
    if scaler is None:
        scaler = fit_scaler(parts[0])
    _check_float32(series, parts, scaler, c.csv)
    _resolve_base(c, [parts[0].iloc[:, k].to_numpy(float) for k in range(len(c.targets))],
                  chosen)
    if c.window is None:
        c.window = default_window(len(parts[0]), c.horizon, c.season, c.base)
        chosen.append(f"window {c.window}")
    if c.base == "seasonal" and c.season > c.window:
        raise SeqmodelsError(f"`base` seasonal needs a `window` of at least the season "
                             f"({c.season} rows); give a longer window or another base")
    starts, by_series, offset = [], [], 0
    every = np.concatenate(observed)  # (n, S)
    for name, part in zip(PARTS, parts):
        found = []
        for k in range(every.shape[1]):
            got = window_starts(every[:offset + len(part), k], c.window, c.horizon)
            found.append(got[got + c.window >= offset])  # its targets lie in this part
        block = offset + len(part)
        offset += len(part)
        by_series.append(found)
        starts.append(np.concatenate([f + k * block for k, f in enumerate(found)]))
        if any(len(f) == 0 for f in found) and len(part):
            which = c.targets[[len(f) for f in found].index(0)]
            raise SeqmodelsError(
                f"{c.csv}: the {name} part has {len(part)} rows and no window of `window` "
                f"{c.window} + `horizon` {c.horizon} = {c.window + c.horizon} rows with "
                f"observed targets in it" + (f" for {which!r}" if len(found) > 1 else "") +
                "; use a longer series, a smaller `window`/`horizon` or other `splits`")
    return Prepared(c, series, parts, observed, scaler, fill, starts, notes, chosen, by_series)


def _resolve_base(c: SeriesConfig, train: list[np.ndarray], chosen: list[str]) -> None:
    """Settle `base` auto (and the old `relative`) on the training part's targets."""
    if c.relative:
        c.base, c.relative = "last", False
    if c.base != "auto":
        return
    season = c.season if c.season > 1 and len(train[0]) > c.season + c.horizon else None
    if c.window is not None and season and season > c.window:
        season = None  # the window the user gave cannot hold a season
    c.base, why = choose_base(train, c.horizon, season)
    chosen.append(f"base {c.base} ({why})")


def _check_float32(series: Series, parts: list, scaler: dict, csv: str) -> None:
    """Refuse a value that float32, the model's precision, cannot hold once scaled."""
    limit = float(np.finfo(np.float32).max)
    for part in parts:
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = scale(part.to_numpy(float), scaler)
        bad = np.argwhere(np.abs(scaled) > limit)
        if len(bad):
            row, column = (int(i) for i in bad[0])
            name = part.columns[column]
            raise SeqmodelsError(
                f"{csv}: {series.describe_row(int(part.index[row]))}: {name} "
                f"{part.iloc[row, column]:g} is beyond float32's range (the model's) once scaled "
                f"by the training part's mean and spread; fix the value, or leave it empty as a "
                f"gap")
