"""CSV series without TensorFlow: missing values, timestamps, splits, scaling, baselines."""

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from seqmodels.errors import SeqmodelsError  # noqa: E402
from seqmodels.forecast.auto import infer_season  # noqa: E402
from seqmodels.forecast.baselines import last_value, metrics, seasonal_naive  # noqa: E402
from seqmodels.forecast.prepare import prepare  # noqa: E402
from seqmodels.forecast.series import (  # noqa: E402
    SeriesConfig,
    builtin_path,
    fill_parts,
    fill_statistics,
    read_series,
    window_starts,
)


def write_csv(path, rows, header="date,y"):
    """A CSV from a header and rows of cells."""
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def days(n, start="2021-01-01"):
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, periods=n, freq="D")]


# --- missing-value policies on a hand-made frame -------------------------------------------

HAND = [  # train: rows 0-5, validation: 6-7, test: 8-9 (splits 0.6,0.2,0.2)
    [math.nan, 10.0], [2.0, math.nan], [4.0, 30.0], [math.nan, 40.0], [8.0, 50.0],
    [10.0, 60.0], [math.nan, 70.0], [14.0, 80.0], [math.nan, 90.0], [100.0, 100.0],
]


def hand_parts():
    frame = pd.DataFrame(HAND, columns=["y", "x"])
    return [frame.iloc[:6], frame.iloc[6:8], frame.iloc[8:]]


@pytest.mark.parametrize("policy, expected_y", [
    # ffill: last earlier value (across parts: only the past); the leading gap takes the first
    ("ffill", [2, 2, 4, 4, 8, 10, 10, 14, 14, 100]),
    # interpolate: linear inside a part; a part's first gap uses the previous part's last value
    ("interpolate", [2, 2, 4, 6, 8, 10, 12, 14, 57, 100]),
    # mean/median of the training part only (2, 4, 8, 10): 6 and 6; never the test's 100
    ("mean", [6, 2, 4, 6, 8, 10, 6, 14, 6, 100]),
    ("median", [6, 2, 4, 6, 8, 10, 6, 14, 6, 100]),
])
def test_each_policy_fills_the_expected_values(policy, expected_y):
    parts = hand_parts()
    stats = fill_statistics(parts[0], policy)
    filled = pd.concat(fill_parts(parts, policy, stats))
    assert filled["y"].tolist() == expected_y
    assert not filled.isna().any().any()


def test_mean_and_median_differ_and_use_training_rows_only():
    train = pd.DataFrame({"y": [1.0, 2.0, 9.0, math.nan]})
    assert fill_statistics(train, "mean") == {"y": 4.0}
    assert fill_statistics(train, "median") == {"y": 2.0}


def test_drop_removes_rows_with_any_gap():
    filled = pd.concat(fill_parts(hand_parts(), "drop"))
    assert filled.index.tolist() == [2, 4, 5, 7, 9]


def test_error_policy_lists_the_gaps(tmp_path):
    rows = [[d, "" if i in (3, 7) else i] for i, d in enumerate(days(40))]
    rows[11][1] = "n/a"
    rows[20][1] = "abc"  # unparsable: also a gap
    csv = write_csv(tmp_path / "gaps.csv", rows)
    with pytest.raises(SeqmodelsError) as info:
        prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=3))
    text = str(info.value)
    assert "4 row(s) with missing or unreadable values" in text
    assert "line 5 (2021-01-04), line 9 (2021-01-08), line 13" in text and "line 22" in text
    assert "missing drop|ffill|interpolate|mean|median" in text


# --- timestamps ------------------------------------------------------------------------------

def test_absent_timestamps_become_reported_missing_rows(tmp_path):
    dates = days(30)
    rows = [[d, i] for i, d in enumerate(dates) if i not in (10, 11)]  # two days absent
    csv = write_csv(tmp_path / "skip.csv", rows)
    series = read_series(SeriesConfig(csv=str(csv), target="y", time_column="date"))
    assert len(series) == 30 and series.values["y"].isna().sum() == 2
    assert "2 timestamp(s) absent" in series.notes[0]
    assert series.describe_row(10) == "2021-01-11 (absent from the file)"
    data = prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=3,
                                missing="interpolate", splits=(0.6, 0.2, 0.2)))
    assert data.parts[0]["y"].iloc[10:12].tolist() == [10.0, 11.0]


def test_monthly_steps_are_regular(tmp_path):
    months = [d.strftime("%Y-%m-%d") for d in pd.date_range("2000-01-31", periods=30, freq="ME")]
    csv = write_csv(tmp_path / "m.csv", [[d, i] for i, d in enumerate(months)])
    series = read_series(SeriesConfig(csv=str(csv), target="y", time_column="date"))
    assert series.step == ("months", 1, True) and infer_season(series.step) == 12


@pytest.mark.parametrize("dates, message", [
    (["2021-01-01", "2021-01-03", "2021-01-02"], "not in increasing order: line 4 (2021-01-02) "
                                                  "comes before line 3 (2021-01-03)"),
    (["2021-01-01", "2021-01-02", "2021-01-02"], "line 4 (2021-01-02) repeats line 3"),
    (["2021-01-01", "2021-01-03", "2021-01-06"], "irregular timestamps"),
    (["2021-01-01", "not a date", "2021-01-03"], "line 3: cannot read the time 'not a date'"),
])
def test_bad_timestamps_are_reported(tmp_path, dates, message):
    csv = write_csv(tmp_path / "t.csv", [[d, i] for i, d in enumerate(dates)])
    with pytest.raises(SeqmodelsError) as info:
        read_series(SeriesConfig(csv=str(csv), target="y", time_column="date"))
    assert message in str(info.value)


def test_allow_irregular_keeps_rows_in_order(tmp_path):
    csv = write_csv(tmp_path / "t.csv", [["2021-01-01", 1], ["2021-01-03", 2], ["2021-01-06", 3]])
    series = read_series(SeriesConfig(csv=str(csv), target="y", time_column="date",
                                      allow_irregular=True))
    assert series.step is None and series.values["y"].tolist() == [1, 2, 3]


# --- bad files -------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, config, message", [
    ([[d, 1] for d in days(30)], {"target": "price"}, "no column 'price' (columns: date, y)"),
    ([[d, "high"] for d in days(30)], {"target": "y"}, "column 'y' is not numeric: 'high'"),
    ([[d, 1] for d in days(8)], {"target": "y", "window": 10, "horizon": 1},
     "8 rows, fewer than window 10 + horizon 1"),
])
def test_bad_csvs_give_one_line_errors(tmp_path, rows, config, message):
    csv = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(SeqmodelsError) as info:
        prepare(SeriesConfig(csv=str(csv), time_column="date", **config))
    assert message in str(info.value) and "\n" not in str(info.value)


# --- split, scaling, windows -------------------------------------------------------------------

def test_scaler_sees_the_training_part_only(tmp_path):
    values = [float(i % 5) for i in range(100)]
    values[95] = 1e6  # a huge outlier in the test part (rows 90-99)
    csv = write_csv(tmp_path / "o.csv", [[d, v] for d, v in zip(days(100), values)])
    data = prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=4))
    train = np.array(values[:80])
    assert data.scaler["mean"][0] == pytest.approx(train.mean())  # 2.0, not ~10,000
    assert data.scaler["std"][0] == pytest.approx(train.std())
    assert max(data.scaler["mean"][0], data.scaler["std"][0]) < 10


def test_no_window_takes_targets_from_another_part(tmp_path):
    """A window's targets lie in one part; its inputs may come from earlier parts (the values a
    forecast made at that point would have), never from a later one."""
    csv = write_csv(tmp_path / "w.csv", [[d, i] for i, d in enumerate(days(100))])
    data = prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=7,
                                horizon=3, base="none"))
    seen = []
    for i, part in enumerate(data.parts):
        x, y, _ = data.windows(i)
        rows = part["y"].to_numpy()  # y == its row number
        lo, hi = rows.min(), rows.max()
        inputs = x[:, :, 0] * data.scaler["std"][0] + data.scaler["mean"][0]
        targets = y * data.scaler["std"][0] + data.scaler["mean"][0]
        assert targets.min() >= lo - 1e-3 and targets.max() <= hi + 1e-3
        assert inputs.max() < lo - 1 + 1e-3 + (len(part) - 3)  # before the last target
        assert inputs.min() >= (0 if i else lo) - 1e-3
        # every window whose targets fit in the part, none more
        assert len(x) == len(part) - 3 + 1 - (7 if i == 0 else 0)
        seen.append((lo, hi))
    assert seen == [(0, 79), (80, 89), (90, 99)]


def test_windows_skip_targets_that_were_filled():
    observed = np.array([1, 1, 1, 1, 0, 1, 1, 1], bool)
    assert window_starts(observed, 2, 2).tolist() == [0, 3, 4]  # targets 2-3, 5-6, 6-7


# --- baselines and metrics ---------------------------------------------------------------------

def test_baselines_and_metrics_by_hand():
    target = np.arange(20, dtype=float)
    ends = np.array([10, 15])
    assert last_value(target, ends, 2).tolist() == [[9, 9], [14, 14]]
    assert seasonal_naive(target, ends, 3, 2).tolist() == [[8, 9, 8], [13, 14, 13]]
    m = metrics(np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]]))
    assert m["mae"] == 0.5 and m["rmse"] == pytest.approx(math.sqrt(0.5))
    assert m["smape"] == pytest.approx(100 * (2 / 3) / 2)


def test_builtin_co2_is_read_from_seqmodels_own_data(tmp_path):
    import seqmodels

    path = builtin_path("co2")
    assert path.is_relative_to(__import__("pathlib").Path(seqmodels.__file__).parent)
    series = read_series(SeriesConfig(csv="co2").with_defaults())
    assert len(series) == 2284 and int(series.values["co2"].isna().sum()) == 59
    assert str(series.step) == "7 days 00:00:00" and infer_season(series.step) == 52


def test_relative_windows_are_changes_from_the_last_value():
    from seqmodels.forecast.series import make_windows

    scaled = np.arange(20, dtype=float)[:, None] * 0.5  # (20, 1)
    starts = np.array([0, 7])
    x, y, base = make_windows(scaled, starts, 4, 2)
    xr, yr, base_r = make_windows(scaled, starts, 4, 2, "last")
    assert base.tolist() == [[0, 0], [0, 0]] and base_r.tolist() == [[1.5, 1.5], [5.0, 5.0]]
    assert np.all(xr[:, -1, 0] == 0) and np.allclose(xr[:, :, 0], x[:, :, 0] - base_r[:, :1])
    assert np.allclose(yr + base_r, y) and yr.tolist() == [[0.5, 1.0], [0.5, 1.0]]
    assert np.array_equal(make_windows(scaled, starts, 4, 2, True)[1], yr)  # the old flag


def test_seasonal_windows_are_corrections_to_the_seasonal_naive_forecast():
    """Base seasonal: y is what the model adds to the value one season back (from the window's
    last season), and the inputs are changes from the window's last value."""
    from seqmodels.forecast.series import make_windows

    scaled = (np.arange(30) % 4 * 10.0 + np.arange(30) * 0.1)[:, None]  # season 4, a trend
    x, y, base = make_windows(scaled, np.array([2]), 8, 6, "seasonal", 4)
    ends = 2 + 8
    expected = [scaled[ends + h - 4 * (h // 4 + 1), 0] for h in range(6)]
    assert np.allclose(base[0], expected)
    assert np.allclose(y[0] + base[0], scaled[ends:ends + 6, 0])
    # the trend over the seasons between: all that is left (steps 5-6 repeat the last season)
    assert np.allclose(y[0], [0.4] * 4 + [0.8] * 2, atol=1e-5)
    assert np.allclose(x[0, :, 0], scaled[2:10, 0] - scaled[9, 0])
    with pytest.raises(SeqmodelsError, match="season"):
        make_windows(scaled, np.array([0]), 3, 2, "seasonal", 4)  # the window holds no season


@pytest.mark.parametrize("relative", ["none", "last", "seasonal"])
def test_batch_windows_are_bit_equal_to_make_windows(relative):
    """Training makes its windows one batch at a time in TensorFlow: the same float32 values."""
    from seqmodels.backend import import_tf
    from seqmodels.forecast.series import make_windows, window_maker

    rng = np.random.default_rng(3)
    scaled = rng.normal(0, 1, (60, 3)) * np.array([1e-3, 1.0, 1e5])  # (60, 3) float64
    starts = rng.permutation(60 - 7 - 2 + 1)[:17]
    x, y, _ = make_windows(scaled, starts, 7, 2, relative, 5)
    bx, by = window_maker(import_tf(), scaled, 7, 2, relative, 5)(starts)
    assert bx.dtype.name == "float32" and bx.shape == x.shape and by.shape == y.shape
    assert np.array_equal(np.asarray(bx), x) and np.array_equal(np.asarray(by), y)


def test_window_chunks_cover_every_window_once(tmp_path):
    csv = write_csv(tmp_path / "w.csv", [[d, i % 7] for i, d in enumerate(days(300))])
    data = prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=9,
                                horizon=2, relative=True))
    whole = data.windows(0)
    chunks = list(data.window_chunks(0, 50))
    assert [len(c[0]) for c in chunks] == [50, 50, 50, 50, 30]  # 230 windows
    for a, b in zip(whole, (np.concatenate(c) for c in zip(*chunks))):
        assert np.array_equal(a, b)


def test_chunks_of_wide_windows_are_smaller(tmp_path, monkeypatch):
    import seqmodels.forecast.prepare as prepare_module

    csv = write_csv(tmp_path / "w.csv", [[d, i % 7] for i, d in enumerate(days(300))])
    data = prepare(SeriesConfig(csv=str(csv), target="y", time_column="date", window=9,
                                horizon=1))
    assert [len(c[0]) for c in data.window_chunks(0)] == [231]  # at most 1024 a chunk
    monkeypatch.setattr(prepare_module, "CHUNK_VALUES", 9 * 100)  # 100 windows of 9 x 1
    assert [len(c[0]) for c in data.window_chunks(0)] == [100, 100, 31]


def test_time_column_none_keeps_a_builtin_series_in_row_order():
    series = read_series(SeriesConfig(csv="co2", time_column="none").with_defaults())
    assert series.times is None and series.step is None
    rows = len(builtin_path("co2").read_text().splitlines()) - 1
    assert len(series) == rows  # the rows as they are in the file
    dated = read_series(SeriesConfig(csv="co2").with_defaults())
    assert dated.times is not None


def test_a_target_written_with_thousands_separators_is_named_not_passed_over(tmp_path):
    """'1,234.5' did not count as numeric, so the constant ID column beside it became the target:
    exit 0, RMSE 0, no note (issue 34)."""
    rows = [(d, 7, f'"{1000 + 10 * i:,}.5"') for i, d in enumerate(days(40))]
    path = write_csv(tmp_path / "s.csv", rows, header="date,id,value")
    with pytest.raises(SeqmodelsError, match="column 'value' writes its numbers with thousands "
                                             "separators \\('1,000.5'\\)"):
        read_series(SeriesConfig(csv=str(path), time_column="date"))


@pytest.mark.parametrize("first", ["2021-01-01,5.0", "1,5.0", "0.5,-3"])
def test_a_csv_without_a_header_row_is_refused(tmp_path, first):
    """Its first data row named the columns (and was lost), and it trained (issue 34)."""
    path = tmp_path / "s.csv"
    path.write_text(first + "\n" + "".join(f"{d},{i}.5\n" for i, d in enumerate(days(30))))
    with pytest.raises(SeqmodelsError, match="holds data, not column names; add a header row"):
        read_series(SeriesConfig(csv=str(path)))


def test_a_header_with_a_digit_in_a_name_is_a_header(tmp_path):
    path = write_csv(tmp_path / "s.csv", [(d, i) for i, d in enumerate(days(30))],
                     header="date,pm2.5")
    config = SeriesConfig(csv=str(path), time_column="date")
    read_series(config)
    assert config.target == "pm2.5"


def test_day_first_dates_are_read_day_first_when_month_first_is_out_of_order(tmp_path):
    """31/01/2021-style dates were read month first where they could be, and the file was then
    called "not in increasing order" (issue 34)."""
    dates = pd.date_range("2021-01-01", periods=40, freq="D").strftime("%d/%m/%Y")
    path = write_csv(tmp_path / "s.csv", [(d, i) for i, d in enumerate(dates)])
    series = read_series(SeriesConfig(csv=str(path), time_column="date"))
    assert series.times.iloc[0] == pd.Timestamp("2021-01-01")
    assert series.times.iloc[12] == pd.Timestamp("2021-01-13")
    assert any("read day first" in note for note in series.notes)
