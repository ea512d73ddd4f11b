"""A CSV series read, split chronologically, filled, scaled and windowed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from seqmodels.data.windows import split_bounds
from seqmodels.errors import SeqmodelsError
from seqmodels.forecast.series import (
    MISSING_POLICIES,
    Series,
    SeriesConfig,
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

    config: SeriesConfig
    series: Series
    parts: list  # 3 pandas DataFrames (n_i, F), original units, filled
    observed: list[np.ndarray]  # per part (n_i,): the target value was in the file
    scaler: dict
    fill: dict[str, float]
    starts: list[np.ndarray]  # per part: window starts (row offsets inside the part)
    notes: list[str] = field(default_factory=list)

    def scaled(self, i: int) -> np.ndarray:
        """The rows of part i, scaled, (n_i, F) float64."""
        return scale(self.parts[i].to_numpy(float), self.scaler)

    def windows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (N, W, F), y (N, H), base (N,) of part i, scaled (see make_windows)."""
        return next(self.window_chunks(i, len(self.starts[i])))

    def window_chunks(self, i: int, size: int | None = None
                      ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """windows(i) in consecutive chunks of at most size windows, one in memory at a time
        (default: 1024, fewer where a window is so wide that 1024 would pass CHUNK_VALUES)."""
        c, rows, starts = self.config, self.scaled(i), self.starts[i]
        size = size or min(1024, max(1, CHUNK_VALUES // (c.window * rows.shape[1])))
        for a in range(0, max(len(starts), 1), max(size, 1)):
            yield make_windows(rows, starts[a:a + size], c.window, c.horizon, c.relative)

    def target(self) -> np.ndarray:
        """The filled target of all parts end to end (original units), for the baselines."""
        return np.concatenate([p.iloc[:, 0].to_numpy(float) for p in self.parts])

    def offset(self, i: int) -> int:
        """Where part i begins in target()."""
        return sum(len(p) for p in self.parts[:i])


def prepare(config: SeriesConfig, scaler: dict | None = None,
            fill: dict[str, float] | None = None) -> Prepared:
    """Read, check, split chronologically, fill gaps and scale (statistics from training only).

    A stored scaler and fill statistics (from a run) are used as they are instead of refitted.
    """
    config = config.with_defaults().validate()
    series = read_series(config)
    c, notes = config, list(series.notes)
    need = c.window + c.horizon
    if len(series) < need:
        raise SeqmodelsError(f"{c.csv}: {len(series)} rows, fewer than `window` {c.window} + "
                             f"`horizon` {c.horizon} = {need}")
    count, report = missing_report(series)
    if count and c.missing == "error":
        raise SeqmodelsError(f"{c.csv}: {report}; choose how to handle them with `missing` "
                             f"{'|'.join(MISSING_POLICIES[1:])}")
    a, b = split_bounds(len(series), c.splits)
    raw = [series.values.iloc[:a], series.values.iloc[a:b], series.values.iloc[b:]]
    for name, part in zip(PARTS, raw):
        if len(part) == 0:
            raise SeqmodelsError(f"{c.csv}: `splits` {','.join(f'{f:g}' for f in c.splits)} "
                                 f"leaves the {name} part of {len(series)} rows empty; give it "
                                 f"a larger fraction")
    observed_all = series.values.iloc[:, 0].notna().to_numpy()
    if fill is None:
        fill = fill_statistics(raw[0], c.missing) if count else {}
    parts = fill_parts(raw, c.missing, fill)
    for name, before, after in zip(PARTS, raw, parts):
        if len(after) == 0:  # `missing` drop removed every row
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
    starts = [window_starts(o, c.window, c.horizon) for o in observed]
    for name, part, s in zip(PARTS, parts, starts):
        if len(s) == 0:
            raise SeqmodelsError(
                f"{c.csv}: the {name} part has {len(part)} rows and no window of `window` "
                f"{c.window} + `horizon` {c.horizon} = {need} rows with observed targets; use a "
                f"longer series, a smaller `window`/`horizon` or other `splits`")
    return Prepared(config, series, parts, observed, scaler, fill, starts, notes)


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
