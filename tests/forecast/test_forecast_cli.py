"""`seqmodels forecast train|evaluate|predict|data` end to end on small synthetic series."""

import csv
import json
import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pandas")

from seqmodels.cli.main import cli  # noqa: E402

TINY = ["--units", "16", "--batch-size", "32", "--lr", "0.01", "--seed", "1", "--deterministic",
        "-q"]


def seasonal_csv(path, n=500, gaps=(5, 60, 61, 200, 430), trend=0.002, seed=0):
    """Daily sine (period 12) + small trend + noise 0.1, with empty cells at `gaps`."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + trend * t + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, n)
    dates = np.datetime64("2020-01-01") + t
    with open(path, "w") as f:
        f.write("date,y\n")
        for i in range(n):
            f.write(f"{dates[i]},{'' if i in gaps else f'{y[i]:.4f}'}\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["forecast", *map(str, args)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One LSTM run (window 24, horizon 3, 25 epochs) on the seasonal series with gaps."""
    root = tmp_path_factory.mktemp("forecast")
    data = seasonal_csv(root / "seasonal.csv")
    out = root / "run"
    result = invoke("train", data, "--time-column", "date", "--target", "y", "--window", 24,
                    "--horizon", 3, "--splits", "0.7,0.15,0.15", "--missing", "interpolate",
                    "--epochs", 25, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return data, out


def test_help_of_every_forecast_command():
    for command in ([], ["train"], ["evaluate"], ["predict"], ["data"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_run_directory_has_the_language_model_layout(trained):
    _, out = trained
    names = {p.name for p in out.iterdir()} | {p.name for p in (out / "checkpoints").iterdir()}
    assert {"config.json", "model.keras", "history.csv", "training.png", "scaler.json",
            "latest.npz", "previous.npz"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "forecast" and config["data"]["window"] == 24
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == 25 and "val_perplexity" not in rows[-1]  # squared error: no perplexity
    assert float(rows[-1]["val_rmse"]) == pytest.approx(math.sqrt(float(rows[-1]["val_loss"])))


def test_lstm_beats_the_last_value_baseline(trained):
    _, out = trained
    result = invoke("evaluate", out, "--json", "--season", 12)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    m = report["metrics"]
    # measured: model RMSE 0.358, last value 1.486 (1-3 steps ahead), seasonal naive (m=12) 0.154
    assert m["model"]["rmse"] < 0.5 * m["last value"]["rmse"]
    assert report["skill"] == pytest.approx(
        m["model"]["rmse"] / min(v["rmse"] for k, v in m.items() if k != "model"))
    # test rows 425-499: every window whose 3 targets lie there (its inputs may come before),
    # but the 3 whose targets include the gap at row 430
    assert report["test_windows"] == 75 - 3 + 1 - 3
    assert report["forecast"] in m and report["forecast_note"].startswith("the ")
    assert all(v["mase"] > 0 for v in m.values())
    assert (out / "forecast-test.png").stat().st_size > 1000


def test_evaluate_text_reports_every_forecast(trained):
    _, out = trained
    result = invoke("evaluate", out, "--no-plot")
    assert result.exit_code == 0, result.output
    assert "last value" in result.output and "seasonal naive (m=7)" in result.output
    assert "skill ratio" in result.output


def test_predict_prints_h_future_values_with_timestamps(trained):
    data, out = trained
    result = invoke("predict", out, data)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "date,y,lower_80,upper_80,lower_95,upper_95"
    assert [line.split(",")[0] for line in lines[1:]] == ["2021-05-15", "2021-05-16",
                                                           "2021-05-17"]  # after 2021-05-14
    values = [float(line.split(",")[1]) for line in lines[1:]]
    t = np.arange(500, 503)
    truth = 10 + 0.002 * t + 2 * np.sin(2 * np.pi * t / 12)
    assert np.abs(np.array(values) - truth).max() < 0.8  # measured 0.35


def test_predict_json_holds_the_same_forecast(trained):
    data, out = trained
    text = invoke("predict", out, data).stdout.strip().splitlines()[1:]
    result = invoke("predict", out, data, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["time"], report["target"]) == ("date", "y")
    assert [(row["time"], row["value"]) for row in report["forecast"]] == [
        (line.split(",")[0], float(line.split(",")[1])) for line in text]


def test_resume_continues_to_more_epochs(tmp_path):
    data = seasonal_csv(tmp_path / "s.csv", n=200)
    out = tmp_path / "run"
    args = ["--time-column", "date", "--window", 12, "--missing", "ffill", "--out", out, *TINY]
    assert invoke("train", data, "--epochs", 2, *args).exit_code == 0
    result = invoke("train", "--resume", out, "--epochs", 3, "-q")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in csv.DictReader(open(out / "history.csv"))] == ["1", "2", "3"]
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 3
    refused = invoke("train", "--resume", out, "--window", 5)
    assert refused.exit_code == 2 and "--window" in refused.output


BAD = {
    "missing column": ("date,y\n" + "".join(f"2021-01-{d:02d},{d}\n" for d in range(1, 29)),
                       ["--target", "price"], "no column 'price'"),
    "non-numeric target": ("date,y\n" + "".join(f"2021-01-{d:02d},x{d}\n" for d in range(1, 29)),
                           [], "column 'y' is not numeric"),
    "too few rows": ("date,y\n" + "".join(f"2021-01-{d:02d},{d}\n" for d in range(1, 9)),
                     ["--window", 10, "--horizon", 1],
                     "8 rows, fewer than --window 10 + --horizon 1"),
    "unsorted": ("date,y\n" + "".join(f"2021-01-{d:02d},{d}\n"
                                      for d in [1, 2, 4, 3, *range(5, 29)]),
                 [], "line 5 (2021-01-03) comes before line 4 (2021-01-04)"),
    "irregular": ("date,y\n" + "".join(f"2021-01-01 {m // 60:02d}:{m % 60:02d},{m}\n"
                                       for m in range(0, 25 * 28, 25) for m in (m, m + 10)),
                  [], "irregular timestamps: steps between rows range from 0 days 00:10:00 to "
                      "0 days 00:15:00"),
    "gaps": ("date,y\n" + "".join(f"2021-01-{d:02d},{'' if d == 9 else d}\n"
                                  for d in range(1, 29)), [], "line 10 (2021-01-09)"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_csvs_give_one_line_errors(tmp_path, name):
    text, extra, message = BAD[name]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = invoke("train", path, "--time-column", "date", *extra, "--out", tmp_path / "r", "-q")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing created for a file that cannot be used


def test_a_missing_file_and_a_language_model_run_are_refused(tmp_path):
    result = invoke("train", tmp_path / "nope.csv", "-q")
    assert result.exit_code == 1 and "no such file (built-in series: co2" in result.stderr
    run = tmp_path / "lm"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": "seqmodels.run", "version": 1,
                                                 "data": {}, "model": {}, "train": {}}))
    result = invoke("evaluate", run)
    assert result.exit_code == 1 and "is a language-model run" in result.stderr


@pytest.mark.parametrize("command", [["evaluate"], ["generate"], ["diagnose"],
                                     ["train", "--resume"]])
def test_language_model_commands_refuse_a_forecast_run_by_name(trained, command):
    _, run = trained
    result = CliRunner().invoke(cli, [*command, str(run)])
    assert result.exit_code == 1, result.output
    assert f"{run} is a forecast run, not a language model" in result.stderr
    assert "seqmodels forecast evaluate" in result.stderr and "Traceback" not in result.output


def test_without_pandas_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    result = invoke("train", tmp_path / "x.csv")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: seqmodels forecast needs pandas: "
                                     "pip install 'seqmodels-rnn[forecast]'")


def test_data_writes_the_bundled_series(tmp_path):
    from seqmodels.forecast.series import builtin_path

    out = tmp_path / "co2.csv"
    result = invoke("data", "co2", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == builtin_path("co2").read_bytes()
    again = invoke("data", "co2", "--out", out)
    assert again.exit_code == 1 and "exists; pass --force" in again.stderr


def test_training_never_holds_all_windows_at_once(tmp_path, monkeypatch):
    """A wide window over a long series once built every window up front (a 3 MB CSV with
    --window 1500 took 7 GB); now training makes one batch at a time, validation and evaluate
    at most 1024 windows at a time."""
    import seqmodels.forecast.prepare as prepare_module

    built = []
    real = prepare_module.make_windows

    def counting(scaled, starts, *args, **kwargs):
        built.append(len(starts))
        return real(scaled, starts, *args, **kwargs)

    monkeypatch.setattr(prepare_module, "make_windows", counting)
    data = seasonal_csv(tmp_path / "s.csv", n=12000, gaps=())  # 1,200 validation rows
    out = tmp_path / "run"
    result = invoke("train", data, "--time-column", "date", "--window", 12, "--horizon", 1,
                    "--epochs", 1, "--steps-per-epoch", 3, "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    # validation, in chunks (each window's targets in the part, its inputs reaching back), once
    # while training and once to choose between the model and the baselines; no training windows
    assert built == [1024, 1200 - 1024] * 2
    built.clear()
    assert invoke("evaluate", out).exit_code == 0
    assert built == [1024, 1200 - 1024]  # the test part


def test_time_column_none_takes_the_rows_in_file_order(tmp_path):
    """--time-column none (documented: row order) once looked for a column named 'none'."""
    data = tmp_path / "u.csv"
    days = np.datetime64("2021-01-01") + np.random.default_rng(0).permutation(80)  # unsorted
    data.write_text("date,y\n" + "".join(f"{d},{i % 5}\n" for i, d in enumerate(days)))
    out = tmp_path / "run"
    assert "comes before" in invoke("train", data, "--time-column", "date", "--out", out,
                                    *TINY).output
    result = invoke("train", data, "--time-column", "none", "--window", 5, "--epochs", 1,
                    "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["data"]["time_column"] == "none"
    predicted = invoke("predict", out, data)
    assert predicted.exit_code == 0 and predicted.output.startswith("step,y,lower_80,")
    assert invoke("train", "--resume", out, "--epochs", 2, "-q").exit_code == 0


@pytest.mark.parametrize("name", ["co2", "nile", "sunspots"])
def test_each_built_in_series_trains_on_the_defaults_and_predicts_in_its_own_form(tmp_path,
                                                                                 name):
    """nile stopped with 'the validation part has 10 rows and no window of 11'; co2 needed
    --missing; predict wrote the year 2009 as 2009-01-01 and every digit of a float."""
    out = tmp_path / name
    result = invoke("train", name, "--out", out, "--epochs", 1)
    assert result.exit_code == 0, result.output
    if name == "co2":  # its gaps: the one setting a built-in series still brings
        assert "note: co2 trains with --missing interpolate" in result.stderr
    assert "chosen for this series:" in result.stderr
    assert "in the values' own units" in result.stderr and "the run gives" in result.stderr
    predicted = invoke("predict", out, name)
    assert predicted.exit_code == 0, predicted.output
    when, value, *bounds = predicted.stdout.strip().splitlines()[1].split(",")
    assert len(bounds) == 4
    assert when == {"co2": "20020105", "nile": "1971", "sunspots": "2009"}[name]  # the next
    decimals = {"co2": 1, "nile": 0, "sunspots": 1}[name] + 2
    assert len(value.split(".")[1]) <= decimals if "." in value else True


def test_forecasts_keep_every_digit_of_a_series_written_in_scientific_notation():
    import pandas as pd

    from seqmodels.forecast.series import _decimals

    assert _decimals(pd.Series(["1.5", "2.25", "3"])) == 2
    assert _decimals(pd.Series(["1", "20"])) == 0
    assert _decimals(pd.Series(["1.2e-05", "3.0e-05"])) is None  # rounding would zero them
