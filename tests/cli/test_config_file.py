"""--config FILE.toml and SEQMODELS_* environment variables: the same keys as the options,
the command line wins, unknown keys are refused with one line naming them."""

import json

from click.testing import CliRunner

from seqmodels.cli.main import cli

FAST = ["--steps-per-epoch", "2", "-q"]


def train(*args, env=None):
    return CliRunner().invoke(cli, ["train", *map(str, args)], auto_envvar_prefix="SEQMODELS",
                              env=env)


def stored(run):
    return json.loads((run / "config.json").read_text())


def test_a_config_file_sets_options_and_the_command_line_wins(tmp_path, cyclic):
    config = tmp_path / "small.toml"
    config.write_text('layers = 1\nunits = 12\nembedding-dim = 8\nseq_len = 16\n'
                      'batch-size = 8\nepochs = 3\nlr = 0.01\n')
    result = train(cyclic, "--config", config, "--epochs", "1", "--out", tmp_path / "r", *FAST)
    assert result.exit_code == 0, result.output
    settings = stored(tmp_path / "r")
    assert settings["model"]["units"] == 12 and settings["model"]["layers"] == 1
    assert settings["windows"]["seq_len"] == 16 and settings["train"]["lr"] == 0.01
    assert settings["train"]["epochs"] == 1  # the command line wins


def test_environment_variables_set_options_below_the_command_line(tmp_path, cyclic):
    env = {"SEQMODELS_TRAIN_UNITS": "10", "SEQMODELS_TRAIN_LAYERS": "1",
           "SEQMODELS_TRAIN_SEQ_LEN": "16", "SEQMODELS_TRAIN_BATCH_SIZE": "8",
           "SEQMODELS_TRAIN_EPOCHS": "2"}
    result = train(cyclic, "--epochs", "1", "--out", tmp_path / "r", *FAST, env=env)
    assert result.exit_code == 0, result.output
    settings = stored(tmp_path / "r")
    assert settings["model"]["units"] == 10 and settings["train"]["epochs"] == 1


def test_unknown_keys_are_refused_naming_them(tmp_path, cyclic):
    config = tmp_path / "bad.toml"
    config.write_text('units = 12\ncolour = "red"\nlearning-speed = 3\n')
    result = train(cyclic, "--config", config, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "unknown key(s) colour, learning_speed" in result.output
    assert not (tmp_path / "r").exists()


def test_a_broken_or_missing_config_file_is_one_line(tmp_path, cyclic):
    broken = tmp_path / "broken.toml"
    broken.write_text("units = = 3\n")
    result = train(cyclic, "--config", broken)
    assert result.exit_code == 2 and "not a TOML file" in result.output
    result = train(cyclic, "--config", tmp_path / "nope.toml")
    assert result.exit_code == 2 and "file not found" in result.output


def test_a_config_file_with_resume_names_what_cannot_change(tmp_path, cyclic):
    small = ["--layers", "1", "--units", "8", "-T", "16", "--batch-size", "8", "--epochs", "1"]
    assert train(cyclic, "--out", tmp_path / "r", *small, *FAST).exit_code == 0
    config = tmp_path / "more.toml"
    config.write_text("units = 32\n")
    result = train("--resume", tmp_path / "r", "--config", config, "--epochs", "2")
    assert result.exit_code == 2 and "--units" in result.output
    assert "--config" not in result.output.split("cannot change")[-1]
    budget = tmp_path / "budget.toml"
    budget.write_text('max-time = "10m"\nepochs = 2\n')  # settings a resume may change
    result = train("--resume", tmp_path / "r", "--config", budget, "-q")
    assert result.exit_code == 0, result.output
    assert stored(tmp_path / "r")["train"]["max_time"] == 600


def test_forecast_train_reads_a_config_file(tmp_path):
    import pytest

    pytest.importorskip("pandas")
    config = tmp_path / "f.toml"
    config.write_text('target = "volume"\ntime-column = "year"\nwindow = 8\nunits = 8\n'
                      'epochs = 1\n')
    result = CliRunner().invoke(cli, ["forecast", "train", "nile", "--config", str(config),
                                      "--out", str(tmp_path / "f"), "-q"])
    assert result.exit_code == 0, result.output
    settings = stored(tmp_path / "f")
    assert settings["data"]["window"] == 8 and settings["model"]["units"] == 8


def test_an_empty_list_leaves_a_multiple_option_unset(tmp_path, cyclic):
    """'sample-temperature = []' with -q was refused as a sample setting -q ignores."""
    config = tmp_path / "empty.toml"
    config.write_text('sample-temperature = []\ncallback = []\nlayers = 1\nunits = 8\n'
                      'seq-len = 16\nbatch-size = 8\nepochs = 1\n')
    result = train(cyclic, "--config", config, "--out", tmp_path / "r", *FAST)
    assert result.exit_code == 0, result.output
    assert stored(tmp_path / "r")["train"]["epochs"] == 1
