"""`seqmodels train` from the command line: options, resume, budgets, signals, TensorBoard."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli

SMALL = ["--layers", "1", "--units", "16", "--embedding-dim", "8", "-T", "16",
         "--batch-size", "8", "--quiet"]


def train(*args):
    return CliRunner().invoke(cli, ["train", *args], catch_exceptions=False)


def history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("cell, level, extra", [
    ("lstm", "char", ["--stateful"]),
    ("gru", "word", ["--schedule", "cosine", "--optimizer", "rmsprop"]),
    ("rnn", "char", ["--no-clip", "--l2", "1e-4", "--dropout", "0.1"]),
])
def test_train_cli_each_cell_and_level(tmp_path, corpus, cell, level, extra):
    out = tmp_path / f"run-{cell}"
    result = train(str(corpus), "--cell", cell, "--level", level, "--epochs", "2",
                   "--out", str(out), *SMALL, *extra)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)  # --quiet: only the run directory on stdout
    rows = history(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) >= {"loss", "val_loss", "val_perplexity", "val_bits_per_token", "lr",
                            "grad_norm_mean", "grad_norm_max", "clipped_fraction",
                            "tokens_per_s", "seconds"}
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["model"]["cell"] == cell and config["data"]["level"] == level
    assert config["windows"]["stateful"] == ("--stateful" in extra)
    assert config["train"]["clipnorm"] == (None if "--no-clip" in extra else 1.0)


def test_resume_and_max_time_from_the_cli(tmp_path, corpus):
    out = tmp_path / "run"
    result = train(str(corpus), "--epochs", "1", "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    result = train("--resume", str(out), "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in history(out)] == ["1", "2"]
    budget = tmp_path / "budget"
    start = time.monotonic()
    result = train(str(corpus), "--epochs", "100000", "--max-time", "3s", "--out", str(budget),
                   *SMALL)
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 60
    assert (budget / "model.keras").is_file()


def test_a_resumed_run_keeps_its_budget_until_max_time_none(tmp_path, corpus):
    out = tmp_path / "run"
    settings = lambda: json.loads((out / "config.json").read_text())["train"]  # noqa: E731
    assert train(str(corpus), "--epochs", "1", "--max-time", "1h", "--out", str(out),
                 *SMALL).exit_code == 0
    assert train("--resume", str(out), "--epochs", "2", "-q").exit_code == 0
    assert settings()["max_time"] == 3600
    result = train("--resume", str(out), "--epochs", "3", "--max-time", "none", "-q")
    assert result.exit_code == 0, result.output
    assert settings()["max_time"] is None and len(history(out)) == 3
    stored = json.loads((out / "config.json").read_text())
    stored["train"]["max_time"] = -5
    (out / "config.json").write_text(json.dumps(stored))
    refused = CliRunner().invoke(cli, ["train", "--resume", str(out), "--epochs", "4"])
    assert refused.exit_code == 1
    assert "config.json: --max-time must be a budget above 0" in refused.output


def test_summary_names_the_next_command(tmp_path, corpus):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(corpus), "--epochs", "1", "--out", str(out),
                                      *SMALL[:-1]])
    assert result.exit_code == 0, result.output
    assert "best validation loss" in result.output and "perplexity" in result.output
    assert f"seqmodels train --resume {out}" in result.output


def test_tensorboard_logs(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(str(corpus), "--epochs", "1", "--out", str(out), "--tensorboard",
                 *SMALL).exit_code == 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("bad, message", [
    (["--max-time", "soon"], "cannot read the duration"),
    (["--out", "EXISTING"], "already exists and is not empty"),
    (["-T", "5000"], "too few for one window"),
    (["--lr", "1e-320"], "--lr 9.99989e-321 is too small for float32"),
    (["--clipnorm", "1e-46"], "--clipnorm 1e-46 is too small for float32"),
    (["--l2", "1e308"], "--l2 1e+308 is too large for float32"),
    (["--stateful", "--eval-tokens", "20"],
     "the validation split (its first --eval-tokens 20 and the target after them) has 21 "
     "tokens, too few for 8 streams"),
    (["--stride", "100000"], "1 window(s) of --seq-len 16 at --stride 100000, fewer than one "
                             "batch of 8; use a smaller --batch-size or --seq-len or --stride"),
])
def test_bad_train_input_is_one_line(tmp_path, corpus, bad, message):
    (tmp_path / "EXISTING").mkdir()
    (tmp_path / "EXISTING" / "keep.txt").write_text("keep")
    bad = [str(tmp_path / b) if b in ("EXISTING", "NOWHERE") else b for b in bad]
    result = CliRunner().invoke(cli, ["train", str(corpus), *SMALL, *bad])
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output
    assert (tmp_path / "EXISTING" / "keep.txt").read_text() == "keep"


def test_resume_of_a_missing_run_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such run directory" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_names_the_resume_command(tmp_path, corpus, signum, code):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqmodels", "train", str(corpus), "--epochs", "100000",
         "--out", str(out), "--checkpoint-every", "5", *SMALL],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "history.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until at least one epoch has finished
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"Resume with: seqmodels train --resume {out}" in err
    assert "Traceback" not in err
    result = train("--resume", str(out), "--epochs", str(len(history(out)) + 1), "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_no_arguments_trains_on_the_builtin_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = train("--epochs", "1", "--steps-per-epoch", "3", "--layers", "1", "--units", "8",
                   "--embedding-dim", "4", "--quiet")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / result.output.strip()
    assert run_dir.parent.name == "runs" and run_dir.name.endswith("-lstm-char")
    assert (run_dir / "model.keras").is_file()


def test_a_stateful_run_saves_a_plain_model_that_evaluates_and_generates(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(str(corpus), "--stateful", "--epochs", "1", "--out", str(out),
                 *SMALL).exit_code == 0
    import seqmodels

    model = seqmodels.load(out)
    assert model.network.inputs[0].shape[0] is None  # any batch size
    assert not model.stateful
    assert not any(getattr(layer, "stateful", False) for layer in model.network.layers)
    for args in (["evaluate", str(out), "--context", "7", "-q"],
                 ["generate", str(out), "-n", "10", "--seed", "0"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output


def test_damaged_run_files_are_one_line(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(str(corpus), "--epochs", "1", "--out", str(out), *SMALL).exit_code == 0
    model = (out / "model.keras").read_bytes()
    (out / "model.keras").write_bytes(model[: len(model) // 3])
    result = CliRunner().invoke(cli, ["generate", str(out), "-n", "5"])
    assert result.exit_code == 1 and "truncated or damaged" in result.output
    (out / "model.keras").write_bytes(model)
    (out / "vocab.json").write_text('{"format": "seqmodels.vocab", "version": 1, '
                                    '"tokens": ["<pad>", "<unk>", "a"]}')
    result = CliRunner().invoke(cli, ["evaluate", str(out), "-q"])
    assert result.exit_code == 1 and "3 tokens, but the model predicts" in result.output
    plain = tmp_path / "plain"
    plain.mkdir()
    result = CliRunner().invoke(cli, ["train", "--resume", str(plain)])
    assert result.exit_code == 1 and "is not a seqmodels run" in result.output
    assert "Traceback" not in result.output


def test_resume_refuses_options_it_would_ignore(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(str(corpus), "--epochs", "1", "--out", str(out), *SMALL).exit_code == 0
    before = (out / "config.json").read_text()
    for extra in (["--units", "64"], ["--out", str(tmp_path / "elsewhere")]):
        result = CliRunner().invoke(cli, ["train", "--resume", str(out), *extra])
        assert result.exit_code == 2 and "these cannot change" in result.output, extra
        assert "corpus" not in result.output.split("cannot change:")[1]  # no internal names
    assert (out / "config.json").read_text() == before
    assert not (tmp_path / "elsewhere").exists()
    result = CliRunner().invoke(cli, ["train", str(corpus), "--no-clip", "--clipnorm", "2"])
    assert result.exit_code == 2 and "--no-clip" in result.output
    result = CliRunner().invoke(cli, ["train", str(corpus), "--stateful", "--stride", "3"])
    assert result.exit_code == 2 and "--stride does not apply" in result.output


def test_resume_updates_epochs_and_works_from_another_folder(tmp_path, corpus, monkeypatch):
    import json

    monkeypatch.chdir(corpus.parent)
    assert train("corpus.txt", "--epochs", "1", "--out", "run", *SMALL).exit_code == 0
    config = json.loads((corpus.parent / "run" / "config.json").read_text())
    assert config["data"]["corpus"] == [str(corpus)]  # stored absolute
    monkeypatch.chdir(tmp_path.parent)
    run_dir = corpus.parent / "run"
    assert train("--resume", str(run_dir), "--epochs", "2", "-q").exit_code == 0
    assert json.loads((run_dir / "config.json").read_text())["train"]["epochs"] == 2
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), "-q", "--json"])
    assert result.exit_code == 0, result.output


def test_default_run_directories_never_collide(tmp_path, monkeypatch):
    from seqmodels.training.rundir import RunDir

    monkeypatch.chdir(tmp_path)
    dirs = {RunDir.create(None, "lstm-char").path for _ in range(5)}
    assert len(dirs) == 5 and all(d.is_dir() for d in dirs)


def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, corpus):
    out = tmp_path / "run"
    assert train(str(corpus), "--epochs", "2", "--out", str(out), *SMALL).exit_code == 0
    latest = out / "checkpoints" / "latest.npz"
    latest.write_bytes(latest.read_bytes()[:1000])
    result = CliRunner().invoke(cli, ["train", "--resume", str(out), "--epochs", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^warning: .*using .*previous.npz instead$", result.stderr, re.M)
    assert [r["epoch"] for r in history(out)] == ["1", "2", "3"]


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed"),
    (["--out", "/proc/seqmodels-test/run"], "/proc/seqmodels-test"),
])
def test_more_bad_input_is_one_line(corpus, args, message):
    result = CliRunner().invoke(cli, ["train", str(corpus), *SMALL, *args])
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output


REFUSE_BEFORE_TF = (
    "import json, sys\n"
    "from click.testing import CliRunner\n"
    "from seqmodels.cli import cli\n"
    "result = CliRunner().invoke(cli, sys.argv[1:])\n"
    "print(json.dumps({'code': result.exit_code, 'output': result.output,\n"
    "                  'tensorflow': 'tensorflow' in sys.modules}))\n"
)


def _refused_before_tensorflow(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", REFUSE_BEFORE_TF, *args], capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["tensorflow"], result  # answered without loading TensorFlow
    return result


def test_run_directory_preconditions_are_checked_before_tensorflow_loads(tmp_path, corpus):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine\n")
    result = _refused_before_tensorflow("train", str(corpus), "--out", str(full))
    assert result["code"] == 1 and "already exists and is not empty" in result["output"]
    result = _refused_before_tensorflow("train", "--resume", str(full))
    assert result["code"] == 1 and "is not a seqmodels run" in result["output"]
    result = _refused_before_tensorflow("train", "--resume", str(full), "--units", "8")
    assert result["code"] == 2 and "cannot change: --units" in result["output"]
    result = _refused_before_tensorflow("forecast", "train", "co2", "--out", str(full))
    assert result["code"] == 1 and "already exists and is not empty" in result["output"]
    (full / "notes.txt").unlink()
    (full / "config.json").write_text(
        '{"format": "seqmodels.run", "version": 1, "data": {}, "model": {},'
        ' "train": {"epochs": 1, "speed": "fast"}}')
    result = _refused_before_tensorflow("train", "--resume", str(full))
    assert result["code"] == 1 and "unknown training setting(s): speed" in result["output"]


def test_resume_says_which_limit_stops_it_and_the_summary_what_resume_would_do(tmp_path, corpus):
    """A budget-stopped run resumed got its stored budget again, whatever --epochs said, and
    the summary's '--resume RUN --epochs N to train longer' misled the same way."""
    out = tmp_path / "run"
    small = [a for a in SMALL if a != "--quiet"]
    result = train(str(corpus), "--epochs", "100000", "--max-time", "2s", "--out", str(out),
                   "--sample-every", "0", *small)
    assert result.exit_code == 0, result.output
    assert (f"Next: seqmodels train --resume {out} trains for another 2s (its --max-time; give "
            f"another, or --max-time none to stop at --epochs 100000 only).") in result.stderr
    assert ("budget: 100000 epoch(s) or 2s (start-up and the final validation included), "
            "whichever comes first; validation on") in result.stderr
    assert re.search(r"^Time: [\d.]+ s in all: start-up [\d.]+ s \([\d.]+%\), compilation .*"
                     r"% of the training time went around the steps\.$", result.stderr, re.M)
    result = train("--resume", str(out), "--sample-every", "0")
    assert ("budget: on to epoch 100000 or for another 2s, whichever comes first (the run's "
            "--max-time; a new one replaces it); the budget: start-up and the final validation "
            "included; validation on") in result.stderr
    done = tmp_path / "run's done"  # shell-quoted in the hint (issue 34)
    result = train(str(corpus), "--epochs", "1", "--out", str(done), "--sample-every", "0",
                   *small)
    quoted = "'" + str(done).replace("'", "'\"'\"'") + "'"
    assert f"Next: seqmodels train --resume {quoted} --epochs N (above 1) trains longer." \
        in result.stderr
    result = train("--resume", str(done), "--sample-every", "0")
    assert "budget: no training: its 1 epoch(s) are done (a larger --epochs trains on)" \
        in result.stderr


def test_a_budget_fits_the_size_unless_the_size_is_given(tmp_path, corpus, monkeypatch):
    from seqmodels.lm import sizing

    monkeypatch.setattr(sizing, "probe_seconds", lambda: sizing.PROBE_REFERENCE_SECONDS)
    corpus.write_text(corpus.read_text() * 12)  # windows of the measured batch 64 x T 100
    tiny = ["--embedding-dim", "8", "--max-time", "2s", "--epochs", "1", "--sample-every", "0"]
    layers, units = sizing.size_for(2 / 60)
    result = train(str(corpus), "--out", str(tmp_path / "fitted"), *tiny)
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"Model size: {layers} x {units} LSTM, fitted to the budget of 2s")
    model = json.loads((tmp_path / "fitted" / "config.json").read_text())["model"]
    assert (model["layers"], model["units"]) == (layers, units)
    taken = tmp_path / "taken"
    (taken / "x").mkdir(parents=True)
    monkeypatch.setattr(sizing, "probe_seconds", lambda: pytest.fail("probed"))
    refused = train(str(corpus), "--out", str(taken), *tiny)  # refused before any probe
    assert refused.exit_code == 1 and "not empty" in refused.output
    monkeypatch.setattr(sizing, "probe_seconds", lambda: sizing.PROBE_REFERENCE_SECONDS)
    for given, expected in ((["--units", "16"], (2, 16)), (["--level", "word"], (2, 256)),
                            (["-T", "50"], (2, 256))):
        out = tmp_path / given[1]
        result = train(str(corpus), "--out", str(out), *tiny, *given[:2])
        assert result.exit_code == 0, result.output
        assert "Model size" not in result.stderr
        model = json.loads((out / "config.json").read_text())["model"]
        assert (model["layers"], model["units"]) == expected


def test_a_run_that_moved_evaluates_and_resumes_with_its_corpus_given_again(tmp_path, corpus):
    """config.json kept absolute corpus paths: a copied run generated text but could not be
    evaluated or resumed. Given again (the same content only), the corpus is found; one kept
    inside the run is stored relative to it and travels with it."""
    import shutil

    out = tmp_path / "run"
    assert train(str(corpus), "--epochs", "1", "--out", str(out), *SMALL).exit_code == 0
    before = json.loads(CliRunner().invoke(cli, ["evaluate", str(out), "--json", "-q"]).stdout)
    moved_corpus = tmp_path / "elsewhere" / "c.txt"
    moved_corpus.parent.mkdir()
    shutil.move(corpus, moved_corpus)
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    lost = CliRunner().invoke(cli, ["evaluate", str(moved), "-q"])
    assert lost.exit_code == 1 and "give it again as --corpus PATH" in lost.stderr
    found = CliRunner().invoke(cli, ["evaluate", str(moved), "--corpus", str(moved_corpus),
                                     "--json", "-q"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["cross_entropy"] == pytest.approx(before["cross_entropy"])
    other = tmp_path / "other.txt"
    other.write_text(moved_corpus.read_text() + "one more line\n")
    refused = train("--resume", str(moved), str(other), "--epochs", "2")
    assert refused.exit_code == 1 and "is not the one" in refused.stderr
    inside = moved / "corpus.txt"
    shutil.copy(moved_corpus, inside)
    result = train("--resume", str(moved), str(inside), "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert json.loads((moved / "config.json").read_text())["data"]["corpus"] == ["corpus.txt"]
    shutil.move(moved, tmp_path / "again")
    moved_corpus.unlink()
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "again"), "--json", "-q"])
    assert result.exit_code == 0, result.output
