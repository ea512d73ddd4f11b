"""Forecasting defaults that extrapolate, the choice between the model and the naive forecasts,
prediction intervals and rolling-origin backtests (issue 33)."""

import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from click.testing import CliRunner  # noqa: E402

from seqmodels.cli.main import cli  # noqa: E402
from seqmodels.errors import SeqmodelsError  # noqa: E402
from seqmodels.forecast.auto import choose_base, default_horizon, default_window  # noqa: E402
from seqmodels.forecast.baselines import drift, mase_scale  # noqa: E402
from seqmodels.forecast.choice import interval_widths  # noqa: E402
from seqmodels.forecast.prepare import prepare  # noqa: E402
from seqmodels.forecast.series import BUILTIN_SERIES, SeriesConfig  # noqa: E402

TINY = ["--units", "8", "--batch-size", "32", "--lr", "0.01", "--seed", "1", "--deterministic"]


def monthly_csv(path, values, start="2000-01-01"):
    times = pd.date_range(start, periods=len(values), freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"month": times, "y": values}).to_csv(path, index=False)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["forecast", *map(str, args)])


def test_the_base_is_the_naive_forecast_that_errs_least_on_the_training_part():
    t = np.arange(120)
    seasonal = 10 + np.sin(2 * np.pi * t / 12) * 3
    assert choose_base(seasonal, 12, 12)[0] == "seasonal"
    assert choose_base(5 + 0.5 * t, 12, 12)[0] == "last"  # a trend: changes carry on
    noise = np.random.default_rng(0).normal(0, 1, 120)  # no persistence: the mean
    assert choose_base(noise, 12, 12)[0] == "none"
    base, why = choose_base(noise, 12, None)
    assert base == "none" and "seasonal" not in why and "none" in why


def test_horizon_and_window_follow_the_step_and_the_length():
    assert default_horizon(("months", 1, False), 144) == 12
    assert default_horizon(("months", 3, False), 119) == 8
    assert default_horizon(1, 114) == 10 and default_horizon(None, 40) == 4
    assert default_window(100, 12, 12, "seasonal") == 24
    assert default_window(30, 4, 12, "seasonal") == 12  # short: shortened, down to one season
    assert default_window(60, 10, None, "none") == 17  # 60 - 17 - 10 + 1 = 34 >= 2 x 17


@pytest.mark.parametrize("name", list(BUILTIN_SERIES))
def test_every_built_in_series_prepares_on_the_defaults(name):
    data = prepare(SeriesConfig(csv=name, **BUILTIN_SERIES[name].defaults))
    c = data.config
    assert c.window and c.horizon and c.base in ("none", "last", "seasonal") and c.season >= 1
    assert all(len(s) for s in data.starts) and data.chosen


@pytest.mark.parametrize("rows", [40, 41, 57])
def test_a_series_of_40_points_prepares_on_the_defaults(tmp_path, rows):
    rng = np.random.default_rng(rows)
    for values in (np.cumsum(rng.normal(0, 1, rows)),
                   10 + 3 * np.sin(np.arange(rows) * np.pi / 6) + rng.normal(0, 0.1, rows)):
        data = prepare(SeriesConfig(csv=str(monthly_csv(tmp_path / "s.csv", values)),
                                    time_column="month"))
        assert all(len(s) for s in data.starts), data.config


def test_drift_and_mase_by_hand():
    y = np.array([1.0, 2, 4, 7, 11])
    assert drift(y, np.array([5]), 2).tolist() == [[13.5, 16.0]]  # slope (11 - 1) / 4
    assert mase_scale(y, None) == pytest.approx(2.5)  # one step back: 1, 2, 3, 4
    assert mase_scale(y, 2) == pytest.approx((3 + 5 + 7) / 3)
    assert mase_scale(np.ones(5), None) is None


def test_interval_widths_are_quantiles_of_the_naive_forecasts_in_sample_errors():
    """Last value on a straight line rising by 1: its error h steps ahead is h at every
    origin, so each level's width at step h is h, shrunk by the validation ratio ** 0.25."""
    line = np.arange(50.0)
    widths = interval_widths(line, "last value", 1.0, 3, None)
    assert widths == {"0.8": [1.0, 2.0, 3.0], "0.95": [1.0, 2.0, 3.0]}
    shrunk = interval_widths(line, "last value", 1 / 16, 3, None)
    assert shrunk["0.8"] == pytest.approx([0.5, 1.0, 1.5])  # (1/16) ** 0.25 = 1/2
    assert interval_widths(line, "last value", 4.0, 3, None) == widths  # never widened
    noisy = np.random.default_rng(0).normal(0, 1, 400)
    w = interval_widths(noisy, "last value", 1.0, 1, None)
    assert w["0.8"][0] < w["0.95"][0]  # |N(0, 2)| quantiles: about 1.8 and 2.8
    assert 1.5 < w["0.8"][0] < 2.1 and 2.4 < w["0.95"][0] < 3.2


def test_a_run_that_its_baseline_beats_gives_the_baseline_and_says_so(tmp_path):
    """An exactly repeating season: seasonal naive is exact, a one-epoch model is not, so the
    run gives seasonal naive; predict prints the last season again, with intervals."""
    season = [3.0, 5, 9, 4, 6, 8, 2, 7, 1, 5, 6, 4]
    csv = monthly_csv(tmp_path / "s.csv", np.tile(season, 8))
    out = tmp_path / "run"
    trained = invoke("train", csv, "--time-column", "month", "--horizon", 12, "--epochs", 1,
                     "--out", out, *TINY)
    assert trained.exit_code == 0, trained.output
    choice = json.loads((out / "choice.json").read_text())
    assert choice["forecast"] == "seasonal naive (m=12)"
    assert choice["validation_mae"]["seasonal naive (m=12)"] == 0
    assert "base seasonal" in trained.stderr and "season 12" in trained.stderr
    predicted = invoke("predict", out, csv, "--json")
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["forecast"]
    assert [r["value"] for r in rows] == season and rows[0]["time"] == "2008-01-01"
    assert all(r["lower_80"] <= r["value"] <= r["upper_95"] for r in rows)
    assert "beat the model on the validation part" in predicted.stderr
    report = json.loads(invoke("evaluate", out, "--json", "--no-plot").stdout)
    assert report["forecast"] == "seasonal naive (m=12)"
    assert report["metrics"]["the run's forecast"]["mae"] == 0


def test_backtest_refits_at_each_origin_and_scores_the_baselines_by_hand(tmp_path):
    rng = np.random.default_rng(1)
    values = np.round(20 + 0.3 * np.arange(60) + rng.normal(0, 1, 60), 3)  # a trend, 5 years
    csv = monthly_csv(tmp_path / "t.csv", values)
    result = invoke("backtest", csv, "--time-column", "month", "--origins", 2, "--horizon", 6,
                    "--season", 1, "--epochs", 2, "--json", *TINY[:-1])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["origin"] for r in report["origins"]] == [48, 54]
    assert report["refit"] == "at every origin" and report["horizon"] == 6
    for r in report["origins"]:
        o = r["origin"]
        assert r["actual"] == pytest.approx(values[o:o + 6].tolist())
        assert r["forecasts"]["last value"] == [values[o - 1]] * 6
        naive_mae = np.mean(np.abs(values[o:o + 6] - values[o - 1]))
        scale = np.mean(np.abs(np.diff(values[:o])))
        assert r["metrics"]["last value"]["mase"] == pytest.approx(naive_mae / scale)
        assert set(r["metrics"]) == {"seqmodels", "last value", "drift"}
        assert set(r["coverage"]) == {"0.8", "0.95"}
    overall = report["overall"]["last value"]["mase"]
    assert overall == pytest.approx(np.mean([r["metrics"]["last value"]["mase"]
                                             for r in report["origins"]]))
    assert "origin at row 48" in result.stderr


def test_backtest_averages_the_forecasts_of_several_seeds(tmp_path, monkeypatch):
    """--seeds 2: two refits at each origin (seeds 1 and 2), their forecasts averaged."""
    import seqmodels.forecast.evaluate as evaluate_module

    real, given = evaluate_module.next_values, []

    def recording(run, rows, *args, **kwargs):
        given.append((run.config["train"]["seed"], real(run, rows, *args, **kwargs)))
        return given[-1][1]

    monkeypatch.setattr(evaluate_module, "next_values", recording)
    csv = monthly_csv(tmp_path / "t.csv", np.sin(np.arange(48.0) / 2))
    result = invoke("backtest", csv, "--time-column", "month", "--origins", 1, "--horizon", 4,
                    "--season", 1, "--epochs", 1, "--seeds", 2, "--json", "-q", *TINY[:-1])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["seeds"] == 2 and [seed for seed, _ in given] == [1, 2]
    mean = (given[0][1] + given[1][1]) / 2
    assert report["origins"][0]["forecasts"]["seqmodels"] == pytest.approx(mean.tolist())


def test_backtest_after_missing_drop_scores_the_values_after_the_origin(tmp_path):
    """Dropped gaps made the history shorter than the origin: the values scored were shifted."""
    values = np.round(np.sin(np.arange(48.0) / 2) + 5, 3).astype(object)
    values[3] = ""
    csv = monthly_csv(tmp_path / "g.csv", values)
    result = invoke("backtest", csv, "--time-column", "month", "--origins", 1, "--horizon", 4,
                    "--season", 1, "--missing", "drop", "--epochs", 1, "--json", "-q",
                    *TINY[:-1])
    assert result.exit_code == 0, result.output
    origin = json.loads(result.stdout)["origins"][0]
    assert origin["origin"] == 44
    assert origin["actual"] == pytest.approx([float(v) for v in values[44:48]])
    assert origin["forecasts"]["last value"] == [float(values[43])] * 4


def test_backtest_with_too_many_origins_is_one_line(tmp_path):
    csv = monthly_csv(tmp_path / "t.csv", np.arange(40.0))
    result = invoke("backtest", csv, "--time-column", "month", "--origins", 9)
    assert result.exit_code == 1 and "give fewer origins" in result.stderr
    assert "Traceback" not in result.output


def test_a_test_fraction_of_zero_trains_and_evaluate_says_there_is_no_test_part(tmp_path):
    csv = monthly_csv(tmp_path / "t.csv", np.sin(np.arange(50.0)))
    out = tmp_path / "run"
    trained = invoke("train", csv, "--time-column", "month", "--splits", "0.9,0.1,0",
                     "--epochs", 1, "--out", out, "-q", *TINY)
    assert trained.exit_code == 0, trained.output
    result = invoke("evaluate", out, "--no-plot")
    assert result.exit_code == 1 and "no test part" in result.stderr


def test_seasonal_base_needs_a_window_of_a_season():
    with pytest.raises(SeqmodelsError, match="at least the season"):
        prepare(SeriesConfig(csv="co2", missing="interpolate", base="seasonal", window=20))


def test_one_model_forecasts_two_related_series_each_in_its_own_units(tmp_path):
    """--target a,b: one global model over both series' windows, each series scaled on its own;
    predict, evaluate and the intervals are per series."""
    t = np.arange(96)
    a = 10 + 3 * np.sin(2 * np.pi * t / 12)  # the same shape at two scales and levels
    b = 1000 + 300 * np.sin(2 * np.pi * (t + 1) / 12)
    times = pd.date_range("2000-01-01", periods=96, freq="MS").strftime("%Y-%m-%d")
    csv = tmp_path / "two.csv"
    pd.DataFrame({"month": times, "a": a.round(3), "b": b.round(3)}).to_csv(csv, index=False)
    data = prepare(SeriesConfig(csv=str(csv), time_column="month", target="a,b"))
    assert data.config.targets == ["a", "b"] and data.n_series == 2
    assert len(data.starts[0]) == sum(len(s) for s in data.series_starts[0])
    assert data.scaled(0).shape[1] == 1 and data.scaler["mean"][1] > 900  # per-series scaling
    out = tmp_path / "run"
    trained = invoke("train", csv, "--time-column", "month", "--target", "a,b", "--epochs", 2,
                     "--out", out, "-q", *TINY)
    assert trained.exit_code == 0, trained.output
    choice = json.loads((out / "choice.json").read_text())
    assert set(choice["intervals"]) == {"a", "b"}
    predicted = invoke("predict", out, csv)
    assert predicted.exit_code == 0, predicted.output
    header, first = predicted.stdout.splitlines()[:2]
    assert header.split(",")[:3] == ["month", "a", "a_lower_80"] and ",b," in header
    values = dict(zip(header.split(","), first.split(",")))
    assert 5 < float(values["a"]) < 15 and 600 < float(values["b"]) < 1400  # its own units
    report = json.loads(invoke("evaluate", out, "--json", "--no-plot").stdout)
    assert set(report["series"]) == {"a", "b"}
    text = invoke("evaluate", out, "--no-plot")
    assert text.exit_code == 0 and "series b\n" in text.stdout, text.output
    assert report["series"]["b"]["metrics"]["last value"]["mae"] > 50  # b's units, not a's
    refused = invoke("backtest", csv, "--time-column", "month", "--target", "a,b")
    assert refused.exit_code == 1 and "one series" in refused.stderr


def test_a_final_fit_trains_on_every_row_with_the_validated_runs_settings(tmp_path):
    """--final-from RUN: RUN's settings, its best epoch count, every row's windows (the newest
    included), RUN's choice and intervals kept; evaluate refuses its in-sample test part."""
    t = np.arange(60)
    csv = monthly_csv(tmp_path / "s.csv", 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.05 * t)
    first = tmp_path / "validated"
    trained = invoke("train", csv, "--time-column", "month", "--epochs", 3, "--out", first,
                     "-q", *TINY)
    assert trained.exit_code == 0, trained.output
    refused = invoke("train", csv, "--final-from", first, "--window", 5)
    assert refused.exit_code == 2 and "--window" in refused.output
    final = tmp_path / "final"
    fitted = invoke("train", csv, "--final-from", first, "--out", final, "-q")
    assert fitted.exit_code == 0, fitted.output
    source = json.loads((first / "config.json").read_text())
    config = json.loads((final / "config.json").read_text())
    history = list(pd.read_csv(first / "history.csv")["val_loss"])
    best_epoch = 1 + int(np.argmin(history))
    assert config["final_fit_of"]["epochs"] == best_epoch == config["train"]["epochs"]
    assert config["data"]["window"] == source["data"]["window"]
    assert config["data"]["base"] == source["data"]["base"]
    assert (final / "choice.json").read_text() == (first / "choice.json").read_text()
    from seqmodels.forecast.prepare import prepare as prepare_series
    from seqmodels.forecast.series import SeriesConfig as Config
    from seqmodels.forecast.task import every_start

    data = prepare_series(Config.from_json(config["data"]).as_stored())
    starts = every_start(data)
    assert starts.max() + data.config.window + data.config.horizon == 60  # the newest rows too
    assert len(starts) == sum(len(s) for s in data.starts)
    evaluated = invoke("evaluate", final, "--no-plot")
    assert evaluated.exit_code == 1 and "final fit" in evaluated.stderr
    assert invoke("predict", final, csv).exit_code == 0


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A one-epoch run on 50 months of a sine."""
    root = tmp_path_factory.mktemp("small")
    csv = monthly_csv(root / "s.csv", np.sin(np.arange(50.0)))
    out = root / "run"
    assert invoke("train", csv, "--time-column", "month", "--epochs", 1, "--out", out, "-q",
                  *TINY).exit_code == 0
    return csv, out


@pytest.mark.parametrize("damage", [
    "not json", '{"format": "seqmodels.forecast-choice", "version": 1}',
    '{"format": "seqmodels.forecast-choice", "version": 1, "forecast": "model", '
    '"validation_mae": {}, "intervals": {"y": {"0.8": [1, -2]}}}',
    '{"format": "seqmodels.forecast-choice", "version": 1, "forecast": "a guess", '
    '"validation_mae": {}}',
    '{"format": "seqmodels.forecast-choice", "version": 1, "forecast": "drift", '
    '"validation_mae": {}}',
    '{"format": "seqmodels.forecast-choice", "version": 1, "forecast": "model", '
    '"validation_mae": {"model": 1}}',
    '{"format": "seqmodels.forecast-choice", "version": 1, "forecast": "model", '
    '"validation_mae": {"model": "1", "drift": 2}}',
])
def test_a_damaged_choice_is_one_line(small_run, tmp_path, damage):
    import shutil

    csv, trained = small_run
    out = shutil.copytree(trained, tmp_path / "run")
    (out / "choice.json").write_text(damage)
    result = invoke("predict", out, csv)
    assert result.exit_code == 1 and "choice.json" in result.stderr, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_horizon_that_leaves_no_training_part_is_named(tmp_path):
    csv = monthly_csv(tmp_path / "s.csv", np.arange(20.0))
    with pytest.raises(SeqmodelsError, match=r"leave no training part .* horizon \(12\)"):
        prepare(SeriesConfig(csv=str(csv), time_column="month", horizon=12))
