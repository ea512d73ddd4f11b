"""One spelling for machine-readable output: --json on every command that prints results,
and train --help in sections."""

import json

import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli

SMALL = ["--layers", "1", "--units", "16", "--embedding-dim", "8", "-T", "16",
         "--batch-size", "8", "--epochs", "1", "--steps-per-epoch", "3", "-q"]


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run trained with --json: its results are one JSON object on stdout."""
    root = tmp_path_factory.mktemp("json")
    corpus = root / "c.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60)
    result = invoke("train", corpus, "--out", root / "run", "--cache-dir", root / "cache",
                    *SMALL, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_train_json_says_where_how_it_ended_and_its_figures(run):
    assert run["stop_reason"] == "completed" and run["epochs"] == 1
    assert run["global_step"] == 3 and run["best_val_loss"] > 0 and run["unit"] == "char"
    assert set(run["time_seconds"]) >= {"startup", "steps", "validation"}


def test_generate_evaluate_and_export_print_one_object(run, tmp_path):
    result = invoke("generate-text", run["run"], "-n", "5", "-s", "2", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)["samples"]
    assert [s["sample"] for s in samples] == [0, 1] and all(s["tokens"] == 5 for s in samples)
    beam = json.loads(invoke("generate-text", run["run"], "-n", "4", "--beam", "2",
                             "--json").stdout)
    assert len(beam["samples"]) == 1 and "log_prob" in beam["samples"][0]
    refused = invoke("generate-text", run["run"], "--json", "--format", "jsonl")
    assert refused.exit_code == 2 and "give one of them" in refused.output
    assert "cross_entropy" in json.loads(invoke("evaluate", run["run"], "--json",
                                                "-q").stdout)
    out = tmp_path / "m.tflite"
    exported = json.loads(invoke("export", run["run"], "--format", "tflite", "--out", out,
                                 "--json").stdout)
    assert exported == {"run": run["run"], "format": "tflite", "path": str(out)}


def test_train_help_lists_its_options_in_sections():
    text = invoke("train", "--help").output
    titles = ["Data options", "Model options", "Training options", "Run options"]
    places = [text.index(title) for title in titles]
    assert places == sorted(places)
    at = {name: text.index(f"\n  --{name} ") for name in ("level", "units", "lr", "max-time",
                                                           "json")}
    assert places[0] < at["level"] < places[1] < at["units"] < places[2] < at["lr"] < places[3]
    assert places[3] < at["max-time"] and places[3] < at["json"]
    for command in ("corpus", "evaluate", "diagnose", "generate-text", "export"):
        assert "--json" in invoke(command, "--help").output, command
    for command in ("train", "evaluate", "predict"):
        assert "--json" in invoke("forecast", command, "--help").output, command
