"""Numeric series from CSV: reading, timestamps, missing values, chronological split, scaling,
windows that never cross a split. Needs pandas (the `seqmodels[forecast]` extra)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels import settings
from seqmodels.distribution import pip_install
from seqmodels.errors import SeqmodelsError
from seqmodels.files import expand_user

MISSING_POLICIES = ("error", "drop", "ffill", "interpolate", "mean", "median")
DEFAULT_SPLITS = (0.8, 0.1, 0.1)
BASES = ("auto", "none", "last", "seasonal")  # what the model's forecasts are relative to
NO_TIME_COLUMN = "none"  # `time_column` none: rows in file order, also for a built-in series
NA_STRINGS = {"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"}
SHOWN = 5  # rows listed in a report


@dataclass(frozen=True)
class BuiltinSeries:
    """A real, public-domain series shipped in seqmodels/forecast/data (see its README)."""

    time_column: str
    target: str
    about: str
    # settings `forecast train` takes for this series unless they are given: what it needs to
    # train on the defaults at all (co2 has gaps)
    defaults: dict = field(default_factory=dict)


BUILTIN_SERIES = {
    "co2": BuiltinSeries("date", "co2",
                         "weekly atmospheric CO2 at Mauna Loa, ppm, 1958-2001 (59 gaps)",
                         {"missing": "interpolate"}),
    "sunspots": BuiltinSeries("YEAR", "SUNACTIVITY", "yearly sunspot numbers, 1700-2008"),
    "nile": BuiltinSeries("year", "volume", "yearly Nile flow at Aswan, 1871-1970"),
}
DATA_FOLDER = Path(__file__).parent / "data"
EXTRA_HINT = pip_install("forecast")


def require_pandas():
    """The pandas module, or a one-line error naming the extra to install."""
    try:
        import pandas as pd
    except ImportError:
        raise SeqmodelsError(f"seqmodels forecast needs pandas: {EXTRA_HINT}") from None
    return pd


def builtin_path(name: str) -> Path:
    """The CSV file of a built-in series, installed with seqmodels."""
    path = DATA_FOLDER / f"{name}.csv"
    if name not in BUILTIN_SERIES or not path.is_file():
        raise SeqmodelsError(f"{path}: this seqmodels installation lacks the built-in series "
                             f"{name!r}; reinstall seqmodels")
    return path


def resolve_csv(spec: str) -> Path:
    """A CSV path, or the installed file of a built-in series name."""
    path = expand_user(spec)
    if path.exists() or spec not in BUILTIN_SERIES:
        if path.exists() and not path.is_file():
            raise SeqmodelsError(f"{spec}: not a regular file, so seqmodels does not read it")
        if not path.is_file():
            raise SeqmodelsError(f"{spec}: no such file (built-in series: "
                                 f"{', '.join(BUILTIN_SERIES)})")
        return path
    return builtin_path(spec)


@dataclass
class SeriesConfig:
    """Which CSV columns to model and how to window, split and clean them."""

    csv: str = "co2"  # a CSV path or a built-in series name
    target: str | None = None  # default: the built-in's, or the only numeric column
    time_column: str | None = None  # default: the built-in's; NO_TIME_COLUMN: rows in file order
    features: list[str] = field(default_factory=list)  # extra inputs; the target always is one
    # more series that the same (global) model forecasts, each scaled on its own; `target`
    # "a,b" that names no column is read as target a and more_targets [b]
    more_targets: list[str] = field(default_factory=list)
    window: int | None = None  # input steps (None: from the season, horizon and length)
    horizon: int | None = None  # steps predicted (None: the usual one for the time step)
    splits: tuple[float, float, float] = DEFAULT_SPLITS
    missing: str = "error"  # one of MISSING_POLICIES
    allow_irregular: bool = False  # treat irregularly timed rows as equally spaced
    relative: bool = False  # the same as base "last" (kept from the first version)
    base: str = "auto"  # one of BASES: what the model forecasts relative to
    season: int | None = None  # rows per season (None: from the time step; 1: no season)
    end: int | None = None  # use the first `end` rows of the file only (backtests)

    def validate(self) -> SeriesConfig:
        """Raise SeqmodelsError for settings that cannot work."""
        from seqmodels.data.windows import check_fractions

        if any(v is not None and v < 1 for v in (self.window, self.horizon, self.season,
                                                  self.end)):
            raise SeqmodelsError("`window`, `horizon`, `season` and `end` must be at least 1")
        if self.base not in BASES:
            raise SeqmodelsError(f"`base` must be one of {', '.join(BASES)}")
        if self.relative and self.base not in ("auto", "last"):
            raise SeqmodelsError(f"`relative` is base last; it contradicts `base` {self.base}")
        if not str(self.csv).strip():
            raise SeqmodelsError("the CSV is an empty name; give a file or a built-in series "
                                 f"({', '.join(BUILTIN_SERIES)})")
        if self.time_column is not None and not self.time_column.strip():
            raise SeqmodelsError("`time_column` is empty; name a column, or none to take the "
                                 "rows in file order")
        for name in [self.target, *self.more_targets]:
            if name is not None and name in self.features:
                raise SeqmodelsError(f"`features` lists the target {name!r}, which is always "
                                     f"an input; drop it from `features`")
        if len(set(self.more_targets)) != len(self.more_targets) or self.target in \
                self.more_targets:
            raise SeqmodelsError("`target` names a column twice")
        if self.missing not in MISSING_POLICIES:
            raise SeqmodelsError(f"`missing` must be one of {', '.join(MISSING_POLICIES)}")
        self.splits = check_fractions(self.splits)
        if self.splits[1] <= 0:
            raise SeqmodelsError("forecasting needs a validation part (early stopping and the "
                                 "choice between the model and the baselines): give splits "
                                 "like 0.8,0.1,0.1, or 0.9,0.1,0 to keep no test part")
        return self

    def with_defaults(self) -> SeriesConfig:
        """A copy with the built-in series' time column and target filled in."""
        builtin = BUILTIN_SERIES.get(self.csv) if not Path(self.csv).exists() else None
        if builtin is None:
            return dataclasses.replace(self)
        return dataclasses.replace(self, time_column=self.time_column or builtin.time_column,
                                   target=self.target or builtin.target)

    @property
    def time_source(self) -> str | None:
        """The column of timestamps, or None where the rows are taken in file order."""
        return None if self.time_column in (None, NO_TIME_COLUMN) else self.time_column

    @property
    def targets(self) -> list[str]:
        """Every series forecast, the target first."""
        return [self.target] + [c for c in self.more_targets if c != self.target]

    @property
    def columns(self) -> list[str]:
        """The columns read: the targets, then the features."""
        return self.targets + [c for c in self.features if c not in self.targets]

    @property
    def inputs(self) -> int:
        """Columns of one window's input: the series' own, then the features."""
        return 1 + len(self.columns) - len(self.targets)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**dataclasses.asdict(self), "splits": list(self.splits)}

    @classmethod
    def from_json(cls, data: dict) -> SeriesConfig:
        """Rebuild from to_json's dict; unknown keys are refused."""
        config = settings.from_json(cls, data, "series")
        if isinstance(config.splits, list):
            config.splits = tuple(config.splits)
        return config.validate()

    def as_stored(self) -> SeriesConfig:
        """A run's stored settings, ready to read: training stores a file as an absolute path,
        so a bare built-in name is the built-in, even where ./co2 exists."""
        stored = self
        if self.base == "auto":  # a run of the first version: `relative` or the levels
            stored = dataclasses.replace(self, base="last" if self.relative else "none",
                                         relative=False)
        if self.csv in BUILTIN_SERIES:
            return dataclasses.replace(stored, csv=str(builtin_path(self.csv)))
        return stored


@dataclass
class Series:
    """A cleaned-up but not yet filled series on a regular grid (NaN where values are missing)."""

    values: Any  # pandas DataFrame (N, F) float, columns target first
    times: Any  # pandas Series of timestamps or numbers, or None (file order)
    lines: list[int | None]  # file line of each row; None for a timestamp absent from the file
    step: Any  # pd.Timedelta, ("months", k, month_end), a number, or None (irregular / no time)
    digest: str  # sha256 of the file's bytes
    notes: list[str] = field(default_factory=list)  # what was found (gaps, absent timestamps)
    time_form: str | None = None  # how the file writes its times, where not as dates (TIME_FORMS)
    decimals: int | None = None  # most digits after the point in the target's cells (None:
    # some are written in scientific notation, whose precision is not kept)

    def format_time(self, t: Any) -> str:
        """A time as the file writes its own: the year 2009 as 2009, not 2009-01-01."""
        if self.time_form == "year" and hasattr(t, "year"):
            return f"{t.year:04d}"
        if self.time_form == "yyyymmdd" and hasattr(t, "year"):
            return f"{t.year:04d}{t.month:02d}{t.day:02d}"
        return format_time(t)

    def __len__(self) -> int:
        return len(self.values)

    def describe_row(self, i: int) -> str:
        """'line 8 (1958-05-10)' or '1958-05-17 (absent from the file)'."""
        when = "" if self.times is None else format_time(self.times.iloc[i])
        if self.lines[i] is None:
            return f"{when} (absent from the file)"
        return f"line {self.lines[i]}" + (f" ({when})" if when else "")


TIME_FORMS = {"year": r"\d{4}", "yyyymmdd": r"\d{8}"}  # times read as dates, written so


def _time_form(column) -> str | None:
    """The TIME_FORMS entry every cell of a time column matches, if any."""
    text = column.astype(str).str.strip()
    for form, pattern in TIME_FORMS.items():
        if text.str.fullmatch(pattern).all():
            return form
    return None


def _decimals(column) -> int | None:
    """The most digits after the decimal point in a column of numbers as written; None when
    a cell is written in scientific notation (1.2e-05: rounding it would lose it)."""
    text = column.astype(str).str.strip().str.lower()
    if text.str.contains(r"\de", regex=True).any():
        return None
    after = text.str.extract(r"\.(\d+)$", expand=False).dropna()
    return int(after.str.len().max()) if len(after) else 0


def format_time(t: Any) -> str:
    """A timestamp as ISO date (or date-time when it has a time of day), a number as is."""
    pd = require_pandas()
    if isinstance(t, pd.Timestamp):
        day = f"{t.year:04d}-{t.month:02d}-{t.day:02d}"  # strftime writes the year 1 as '1'
        return day if t == t.normalize() else t.isoformat(sep=" ")
    if isinstance(t, float):  # every digit: 1600000150.5, not 1.6e+09
        text = repr(float(t))  # (a numpy float's repr names its type)
        return text[:-2] if text.endswith(".0") else text
    return str(t)


def read_series(config: SeriesConfig) -> Series:
    """Read the CSV columns, parse numbers and timestamps, put rows on a regular time grid."""
    pd = require_pandas()
    path = resolve_csv(config.csv)
    raw = path.read_bytes()
    try:
        from io import BytesIO

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: a row with more fields than the header must not shift the columns
            frame = pd.read_csv(BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False,
                                skipinitialspace=True, index_col=False)
    except UnicodeDecodeError as exc:
        raise SeqmodelsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty"
        raise SeqmodelsError(f"{path}: not a readable CSV file ({first})") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _check_extra_fields(raw, path)  # pandas dropped fields past the header's: empty ones only?
    frame.columns = [str(c).strip() for c in frame.columns]
    header = _header(raw)  # as written: pandas renames a second 'a' to 'a.1'
    names = pd.Index(header if len(header) == len(frame.columns) else frame.columns)
    twice = names[names.duplicated()]
    if len(twice):
        raise SeqmodelsError(f"{path}: column {twice[0]!r} appears twice in the header; "
                             f"rename one of them")
    if frame.empty:
        raise SeqmodelsError(f"{path}: no data rows")
    _check_header_row(names, path)
    chosen_target = config.target is not None
    if chosen_target and config.target not in frame.columns and "," in config.target:
        config.target, *more = [c.strip() for c in config.target.split(",") if c.strip()]
        config.more_targets = more + config.more_targets
        config.validate()
    time = config.time_source
    target = config.target or _only_numeric_column(frame, time, path, config.time_column is None)
    config.target = target
    if time in config.columns:
        which = "`target`" if time == target else "`features`"
        raise SeqmodelsError(f"{which} names the time column {time!r}; the times are not a "
                             f"value to forecast or an input (name another column, or "
                             f"`time_column` none to take the rows in order)")
    wanted = config.columns + ([time] if time else [])
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise SeqmodelsError(f"{path}: no column {absent[0]!r} (columns: "
                             f"{', '.join(frame.columns)})")
    lines = _line_numbers(raw, len(frame))
    try:
        values = pd.DataFrame({c: _numbers(frame[c], c, path, lines) for c in config.columns})
    except SeqmodelsError as exc:
        if chosen_target:
            raise
        why = (f"the only one besides `time_column` {time!r} (did you mean another "
               f"`time_column`?)" if time else "the file's only column")
        raise SeqmodelsError(f"{exc}; it was taken as the column to forecast as {why}") from None
    times, step, notes = None, None, []
    if time:
        times, note = _times(frame[time], time, path, lines)
        notes += [note] if note else []
        step = _check_order_and_step(times, lines, path, config.allow_irregular)
        if step is not None:
            values, times, lines, absent_n = _regular_grid(values, times, lines, step, path)
            if absent_n:
                notes.append(f"{absent_n} timestamp(s) absent from the regular "
                             f"{describe_step(step)} step were added as missing rows")
    series = Series(values.reset_index(drop=True), times, lines, step,
                    hashlib.sha256(raw).hexdigest(), notes,
                    _time_form(frame[time]) if time else None, _decimals(frame[target]))
    return series


def _check_header_row(names, path: Path) -> None:
    """Refuse a first row of numbers or dates: a CSV without a header row, whose first data row
    would name the columns (and be lost)."""
    pd = require_pandas()
    text = pd.Series([str(n) for n in names])
    numbers = pd.to_numeric(text, errors="coerce").notna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": a name is no date anyway
        dates = pd.to_datetime(text, errors="coerce").notna() & text.str.contains(r"\d")
    if (numbers | dates).all():
        raise SeqmodelsError(f"{path}: its first row ({', '.join(map(str, names))}) holds data, "
                             f"not column names; add a header row naming the columns")


def _only_numeric_column(frame, time_column: str | None, path: Path, hint: bool = True) -> str:
    """The target when none is named: the one column (besides time) that holds numbers; hint:
    suggest `time_column` (not when it was given)."""
    pd = require_pandas()
    candidates = [c for c in frame.columns if c != time_column]

    def share(column: str, thousands: bool = False) -> float:
        values = frame[column].str.strip()
        if thousands:
            values = values.str.replace(r"(?<=\d),(?=\d{3}(?:\D|$))", "", regex=True)
        return pd.to_numeric(values, errors="coerce").notna().mean()

    plain = {c: share(c) for c in candidates}
    grouped = [c for c in candidates if plain[c] <= 0.5 < share(c, thousands=True)]
    if grouped:  # "1,234.5" is no number to read, and the constant ID beside it was taken
        raise SeqmodelsError(f"{path}: column {grouped[0]!r} writes its numbers with thousands "
                             f"separators ({frame[grouped[0]].iloc[0].strip()!r}), which are "
                             f"not read as numbers: remove the separators and name the column "
                             f"to forecast with `target`")
    if len(candidates) > 1:
        candidates = [c for c in candidates if plain[c] > 0.5]
    if len(candidates) != 1:
        more = " (and the timestamps with `time_column`)" if hint and not time_column else ""
        raise SeqmodelsError(f"{path}: name the column to forecast with `target`{more}; "
                             f"columns: {', '.join(frame.columns)}")
    return candidates[0]


def _header(raw: bytes) -> list[str]:
    """The column names of a CSV's first row as written (stripped); [] if it cannot be read
    from the first MiB."""
    import csv

    try:
        return next(([cell.strip() for cell in row] for _, row in _csv_rows(raw[:2**20])), [])
    except csv.Error:
        return []


def _csv_rows(raw: bytes) -> Iterator[tuple[int, list[str]]]:
    """(line it begins on, cells) of each row pandas reads (it skips blank lines), by the csv
    module; csv.Error where that module cannot read on."""
    import csv
    import io

    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig", "replace"), newline=""),
                        skipinitialspace=True)
    line = 1
    for row in reader:
        if any(cell.strip() for cell in row) or len(row) > 1:
            yield line, row
        line = reader.line_num + 1


def _check_extra_fields(raw: bytes, path: Path) -> None:
    """Refuse a row with a value past the header's last column (empty fields there, the trailing
    commas some spreadsheets write, are harmless)."""
    import csv

    width = None
    try:
        for line, row in _csv_rows(raw):
            if width is None:
                width = len(row)
            elif len(row) > width and any(cell.strip() for cell in row[width:]):
                extra = next(cell.strip() for cell in row[width:] if cell.strip())
                raise SeqmodelsError(
                    f"{path}: line {line} has {len(row)} fields but the header names "
                    f"{width} column{'s' if width > 1 else ''} ({extra!r} has no column); "
                    f"quote a value that holds a comma, or name every column in the header")
    except csv.Error:
        pass


BLANK_LINE = re.compile(rb"\n[ \t\r]*(\n|$)")  # a line of nothing but spaces, pandas skips


def _line_numbers(raw: bytes, rows: int) -> list[int]:
    """The file line on which each of the rows pandas read begins (blank lines and quoted
    line breaks taken into account); line i + 2 if the csv module counts the rows otherwise."""
    import csv

    body = raw.rstrip(b"\r\n\t ")
    if (b'"' not in raw and raw.count(b"\r") == raw.count(b"\r\n")
            and not BLANK_LINE.search(b"\n" + body) and body.count(b"\n") == rows):
        return list(range(2, rows + 2))  # no quotes, no blank lines: row i is on line i + 2
    try:
        starts = [line for line, _ in _csv_rows(raw)]
    except csv.Error:
        starts = []
    if len(starts) == rows + 1:  # the header, then each row
        return starts[1:]
    return list(range(2, rows + 2))


def _numbers(column, name: str, path: Path, lines: list[int]):
    """Floats of a text column; empty and NA cells become NaN, mostly-text columns an error."""
    pd = require_pandas()
    text = column.str.strip()
    missing = text.str.lower().isin(NA_STRINGS)
    numbers = pd.to_numeric(text.where(~missing), errors="coerce").astype(float)
    bad = numbers.isna() & ~missing
    given = int((~missing).sum())
    if given == 0 or bad.sum() > given / 2:
        examples = ", ".join(f"{v!r} (line {lines[i]})" for i, v in text[bad].head(3).items())
        raise SeqmodelsError(f"{path}: column {name!r} is not numeric"
                             + (f": {examples}" if examples else ": it has no values"))
    infinite = np.flatnonzero(np.isinf(numbers.to_numpy()))
    if len(infinite):
        i = int(infinite[0])
        raise SeqmodelsError(f"{path}: line {lines[i]}: column {name!r} holds {text.iloc[i]!r}, "
                             f"not a finite number ({len(infinite)} such cell(s)); leave a cell "
                             f"empty for a missing value")
    return numbers


def _times(column, name: str, path: Path, lines: list[int]):
    """Timestamps (or plain numbers) of the time column; unparsable ones are an error."""
    pd = require_pandas()
    text = column.str.strip()
    note = None
    plain = pd.to_numeric(text, errors="coerce")
    if plain.notna().all() and (plain < 0).any():  # -200 is a number, not the year 200 BC
        return _numeric_times(plain, text, name, path, lines), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            times = _to_datetime(pd, text)
        except ValueError:  # offsets that differ from row to row (a daylight-saving change)
            times = _to_datetime(pd, text, utc=True).dt.tz_localize(None)
            note = "timestamps with different UTC offsets were converted to UTC"
    day_first = _day_first_in_order(pd, text, times) if note is None else None
    if day_first is not None:
        times = day_first
        note = ("the dates were read day first (31/01 is 31 January): read month first they "
                "were not in increasing order")
    if getattr(times.dt, "tz", None) is not None:  # one offset throughout: keep local times
        note = f"the timestamps' UTC offset ({times.dt.tz}) is left out of the times shown"
        times = times.dt.tz_localize(None)
    if times.isna().any():
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().mean() > 0.5 and numbers.isna().any():  # numbers, some unreadable
            times = numbers.astype(float).where(numbers.notna())  # as NaT: reported below
        elif numbers.notna().all():
            return _numeric_times(numbers, text, name, path, lines), None
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise SeqmodelsError(f"{path}: line {lines[i]}: cannot read the time {text.iloc[i]!r} in "
                             f"column {name!r} ({int(times.isna().sum())} unreadable)")
    early = np.flatnonzero((times.dt.year < 1).to_numpy())
    if len(early):  # the year 0 and before: no calendar date prints or plots them
        raise SeqmodelsError(f"{path}: line {lines[early[0]]}: the time {text.iloc[early[0]]!r} "
                             f"in column {name!r} is before the year 1, the first a date can "
                             f"have; give such times as plain numbers")
    return times, note


def _numeric_times(numbers, text, name: str, path: Path, lines: list[int]):
    """A time column of plain numbers: finite and small enough to count steps exactly."""
    bad = np.flatnonzero(~np.isfinite(numbers.to_numpy(float)))
    if len(bad):
        raise SeqmodelsError(f"{path}: line {lines[bad[0]]}: the time {text.iloc[bad[0]]!r} in "
                             f"column {name!r} is not a finite number")
    huge = np.flatnonzero(np.abs(numbers.to_numpy(float)) >= 2**53)
    if len(huge):
        raise SeqmodelsError(f"{path}: line {lines[huge[0]]}: the time {text.iloc[huge[0]]!r} "
                             f"in column {name!r} is too large to count steps exactly (at "
                             f"most 2**53)")
    return numbers.astype(float) if (numbers % 1).any() else numbers.astype("int64")


def _to_datetime(pd, text, utc: bool = False, dayfirst: bool = False):
    """pd.to_datetime of each cell, unreadable ones NaT, formats mixed if need be."""
    times = pd.to_datetime(text, errors="coerce", utc=utc, dayfirst=dayfirst)
    if times.isna().any():
        times = pd.to_datetime(text, errors="coerce", format="mixed", utc=utc, dayfirst=dayfirst)
    return times


def _day_first_in_order(pd, text, times):
    """The times read day first, when read month first (01/02 as 2 January) they are out of
    order and day first they all read and strictly increase: a day-first file, not an unsorted
    one; else None."""
    def increasing(values) -> bool:
        t = values.to_numpy()
        return bool(values.notna().all() and (t[1:] > t[:-1]).all())

    if len(text) < 2 or increasing(times) or not text.str.contains(r"\d[/.]\d").all():
        return None
    try:
        day_first = _to_datetime(pd, text, dayfirst=True)
    except ValueError:  # mixed offsets: not a day-first question
        return None
    return day_first if increasing(day_first) else None


def _check_order_and_step(times, lines: list, path: Path, allow_irregular: bool):
    """The regular step of sorted timestamps; errors for unsorted, duplicate or irregular ones."""
    pd = require_pandas()
    if len(times) < 2:
        return None
    t = times.to_numpy()
    back = np.flatnonzero(t[1:] <= t[:-1])
    if len(back):
        i = int(back[0]) + 1
        what = "repeats" if t[i] == t[i - 1] else "comes before"
        raise SeqmodelsError(
            f"{path}: timestamps are not in increasing order: line {lines[i]} "
            f"({format_time(times.iloc[i])}) {what} line {lines[i - 1]} "
            f"({format_time(times.iloc[i - 1])}); {len(back)} such row(s); sort the file "
            f"and remove duplicates first")
    step = _fixed_step(times) or (_month_step(times) if _is_datetime(times) else None)
    if step is None and not allow_irregular:
        d = np.diff(t)
        smallest, largest = d.min(), d.max()
        if _is_datetime(times):
            smallest, largest = pd.Timedelta(smallest), pd.Timedelta(largest)
        raise SeqmodelsError(
            f"{path}: irregular timestamps: steps between rows range from {smallest} to "
            f"{largest} and are not multiples of one step; resample the file to a regular step, "
            f"or pass `allow_irregular` to treat the rows as equally spaced")
    return step


def _is_datetime(times) -> bool:
    return np.issubdtype(times.dtype, np.datetime64)


def _fixed_step(times):
    """The smallest difference when every difference is a whole multiple of it."""
    pd = require_pandas()
    d = np.diff(times.to_numpy().astype("int64") if _is_datetime(times) else times.to_numpy())
    smallest = d.min()
    if np.issubdtype(d.dtype, np.integer):  # whole multiples exactly
        if np.any(d % smallest):
            return None
    else:  # float times: within rounding (an absolute tolerance: not 0.4 steps over a long gap)
        with np.errstate(over="ignore", invalid="ignore"):  # a step of 5e-324
            ratio = d / smallest
            if np.abs(ratio - np.round(ratio)).max() > 1e-6:  # NaN: not more, go on
                return None
    if _is_datetime(times):
        unit = np.datetime_data(times.dtype)[0]
        return pd.Timedelta(int(smallest), unit=unit)
    return smallest.item()


def _month_step(times):
    """('months', k, month_end) when timestamps fall on one day of the month every k months."""
    month_end = bool(times.dt.is_month_end.all())
    same_day = times.dt.day.nunique() == 1 and (times - times.dt.normalize()).nunique() == 1
    if not (month_end or same_day):
        return None
    months = (times.dt.year * 12 + times.dt.month).to_numpy()
    k = int(np.diff(months).min())
    if k < 1 or np.any(np.diff(months) % k):
        return None
    return ("months", k, month_end)


def describe_step(step) -> str:
    """'7 days', '1 month', '12 months', '0.5'."""
    if isinstance(step, tuple):
        return f"{step[1]} month" + ("s" if step[1] > 1 else "")
    c = getattr(step, "components", None)
    if c is not None and not (c.hours or c.minutes or c.seconds or c.milliseconds
                              or c.microseconds or c.nanoseconds):
        return f"{c.days} day" + ("s" if c.days != 1 else "")
    return str(step)


def positions(times, step) -> np.ndarray:
    """Each timestamp's index on the regular grid that starts at the first one (as floats:
    a tiny step puts the last one beyond any integer)."""
    if isinstance(step, tuple):
        months = (times.dt.year * 12 + times.dt.month).to_numpy()
        return ((months - months[0]) // step[1]).astype(float)
    start = times.iloc[0]
    with np.errstate(over="ignore"):
        return np.round(((times - start) / step).to_numpy().astype(float))


def future_times(last, step, n: int) -> list:
    """The n timestamps after `last` on the regular step."""
    pd = require_pandas()
    if isinstance(step, tuple):
        _, k, month_end = step
        if month_end:
            return [last + pd.offsets.MonthEnd(k * i) for i in range(1, n + 1)]
        return [last + pd.DateOffset(months=k * i) for i in range(1, n + 1)]
    return [last + step * i for i in range(1, n + 1)]


MAX_ADDED_ROWS = 1_000_000  # or ten times the rows read, if more: gaps filled on a regular grid


def _regular_grid(values, times, lines: list, step, path: Path):
    """Insert the timestamps a regular series lacks as rows of NaN; return how many."""
    pd = require_pandas()
    pos = positions(times, step)
    limit = max(MAX_ADDED_ROWS, 10 * len(times))
    if not pos[-1] + 1 - len(times) <= limit:  # inf too
        gap = int(np.argmax(np.diff(times.to_numpy())))
        rows = pos[-1] + 1 - len(times)
        added = f"{rows:,.0f}" if rows < 1e15 else f"{rows:.3g}" if np.isfinite(rows) else (
            "endless")
        raise SeqmodelsError(
            f"{path}: between lines {lines[gap]} and {lines[gap + 1]} the timestamps jump from "
            f"{format_time(times.iloc[gap])} to {format_time(times.iloc[gap + 1])}: a regular "
            f"{describe_step(step)} step would add {added} missing rows (at most {limit:,} are "
            f"added); fix the timestamps, or split the file at the gap")
    pos = pos.astype(int)
    n = int(pos[-1]) + 1
    if n == len(times):
        return values, times.reset_index(drop=True), lines, 0
    grid = pd.DataFrame(np.nan, index=range(n), columns=values.columns)
    grid.iloc[pos] = values.to_numpy()
    new_times = pd.Series(future_times(times.iloc[0], step, n - 1), dtype=times.dtype)
    new_times = pd.concat([times.iloc[:1], new_times], ignore_index=True)
    new_lines: list[int | None] = [None] * n
    for p, line in zip(pos, lines):
        new_lines[p] = line
    return grid, new_times, new_lines, n - len(times)


def missing_report(series: Series) -> tuple[int, str]:
    """How many rows lack a value, and a line naming the first few."""
    rows = np.flatnonzero(series.values.isna().any(axis=1).to_numpy())
    if not len(rows):
        return 0, ""
    cells = int(series.values.isna().sum().sum())
    first = ", ".join(series.describe_row(int(i)) for i in rows[:SHOWN])
    more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
    return len(rows), (f"{len(rows)} row(s) with missing or unreadable values ({cells} cell(s)): "
                       f"{first}{more}")


def fill_statistics(train, policy: str) -> dict[str, float]:
    """Per-column mean or median of the training part (NaN skipped): what mean/median fill."""
    stats = train.mean() if policy == "mean" else train.median()
    empty = [c for c in train.columns if np.isnan(stats[c])]
    if policy in ("mean", "median", "ffill", "interpolate") and empty:
        raise SeqmodelsError(f"column {empty[0]!r} has no values in the training part")
    return {c: float(v) for c, v in stats.items()} if policy in ("mean", "median") else {}


def fill_parts(parts: list, policy: str, stats: dict[str, float] | None = None) -> list:
    """Fill (or drop) the gaps of consecutive parts, each using only itself and earlier parts.

    ffill: the last earlier value; interpolate: linear between the values around the gap within
    the part (a gap at a part's end is forward-filled); mean/median: the training part's statistic
    (stats); drop: remove the rows. A gap before a column's first value is given that value.
    """
    pd = require_pandas()
    out = []
    for i, part in enumerate(parts):
        if policy == "drop":
            out.append(part.dropna())
            continue
        if policy in ("mean", "median"):
            out.append(part.fillna(stats))
            continue
        prefix = out[-1].iloc[-1:] if out and len(out[-1]) else part.iloc[:0]
        joined = pd.concat([prefix, part])
        if policy == "interpolate":
            joined = joined.interpolate(method="linear", limit_area="inside")
        joined = joined.ffill()
        if i == 0:
            joined = joined.bfill()  # a gap before the first value (training part only)
        out.append(joined.iloc[len(prefix):])
    return out


def fit_scaler(train) -> dict[str, list]:
    """Per-column mean and standard deviation of the training part (std 0 becomes 1)."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below
        mean = train.mean().to_numpy(float)
        std = train.std(ddof=0).to_numpy(float)
        scaled_max = np.nanmax(np.abs((train.to_numpy(float) - mean) / np.where(std > 0, std, 1)),
                               initial=0.0)
    empty = [c for c in train.columns if not train[c].notna().any()]
    if empty:
        raise SeqmodelsError(f"column {empty[0]!r} has no values in the training part")
    bad = [c for c, m, s in zip(train.columns, mean, std) if not (np.isfinite(m) and
                                                                  np.isfinite(s))]
    if bad or not np.isfinite(scaled_max):
        raise SeqmodelsError(f"column {(bad or list(train.columns))[0]!r}: its values are too "
                             f"large to scale (their mean or spread overflows float64); divide "
                             f"them by a power of ten first")
    std = np.where(std > 0, std, 1.0)
    return {"columns": list(train.columns), "mean": mean.tolist(), "std": std.tolist()}


def scale(values: np.ndarray, scaler: dict) -> np.ndarray:
    """(N, F) original units -> standardised float32."""
    return ((values - np.asarray(scaler["mean"])) / np.asarray(scaler["std"])).astype(np.float32)


def unscale_target(values: np.ndarray, scaler: dict, column: int = 0) -> np.ndarray:
    """Standardised values of one column (the target: 0) of any shape -> original units."""
    return np.asarray(values, float) * scaler["std"][column] + scaler["mean"][column]


def window_starts(observed: np.ndarray, window: int, horizon: int) -> np.ndarray:
    """Starts t of windows inside one part whose H targets were all observed (not filled)."""
    n = len(observed) - window - horizon + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    ok = np.lib.stride_tricks.sliding_window_view(observed[window:], horizon)[:n].all(axis=1)
    return np.flatnonzero(ok)


def base_kind(base: str | bool) -> str:
    """A base named, or the old `relative` flag: True is "last", False "none"."""
    return ("last" if base else "none") if isinstance(base, bool) else base


def make_windows(scaled: np.ndarray, starts: np.ndarray, window: int, horizon: int,
                 base: str | bool = "none", season: int | None = None):
    """x (N, W, F) = rows t..t+W-1 and y (N, H) = target at t+W..t+W+H-1, and base (N, H), what
    the model's forecasts are relative to (add it back to a forecast):

    none: 0 (the model forecasts the scaled values); last: the window's last target value;
    seasonal: the seasonal naive forecast, the value one season (`season` rows, at most the
    window) before each step, from the window's last season. With last and seasonal the
    target's inputs are changes from the window's last value, so a trend carries on.
    """
    kind = base_kind(base)
    x = scaled[starts[:, None] + np.arange(window)]  # (N, W, F)
    y = scaled[starts[:, None] + window + np.arange(horizon), 0]  # (N, H)
    last = x[:, -1, 0].copy() if kind != "none" else np.zeros(len(x))  # (N,)
    x[:, :, 0] -= last[:, None]
    if kind == "seasonal":
        ref = seasonal_offsets(window, horizon, season)  # (H,) rows after the start
        out = scaled[starts[:, None] + ref[None, :], 0]  # (N, H)
    else:
        out = np.repeat(last[:, None], horizon, axis=1)
    return x.astype(np.float32), (y - out).astype(np.float32), out


def seasonal_offsets(window: int, horizon: int, season: int | None) -> np.ndarray:
    """For each step h of a forecast made after `window` rows: the row (from the window's start)
    one or more whole seasons back that the seasonal naive forecast repeats."""
    if not season or season > window:
        raise SeqmodelsError(f"a seasonal base needs `season` ({season}) of at most `window` "
                             f"({window}) rows")
    h = np.arange(horizon)
    return window + h - season * (h // season + 1)


def window_maker(tf, scaled: np.ndarray, window: int, horizon: int, base: str | bool = "none",
                 season: int | None = None):
    """A TensorFlow function: a batch of starts (B,) -> the (x, y) make_windows gives them.

    It does the same float64 arithmetic, so the windows are bit-equal, but only one batch of
    them exists at a time: all windows of a long series with a wide window would not fit.
    """
    kind = base_kind(base)
    rows = tf.constant(np.asarray(scaled, np.float64))  # (n, F)
    inputs, targets = tf.range(window, dtype=tf.int64), tf.range(horizon, dtype=tf.int64)
    ref = (tf.constant(seasonal_offsets(window, horizon, season), tf.int64)
           if kind == "seasonal" else None)

    def windows(starts):
        starts = tf.cast(starts, tf.int64)[:, None]
        x = tf.gather(rows, starts + inputs)  # (B, W, F)
        y = tf.gather(rows[:, 0], starts + window + targets)  # (B, H)
        if kind != "none":
            last = x[:, -1, :1]  # (B, 1)
            x = tf.concat([x[:, :, :1] - last[:, None], x[:, :, 1:]], axis=2)
            y = y - (tf.gather(rows[:, 0], starts + ref) if kind == "seasonal" else last)
        return tf.cast(x, tf.float32), tf.cast(y, tf.float32)

    return windows
