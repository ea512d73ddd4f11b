"""Keras callbacks driven by seqmodels' own loop: the usual events and logs, stock callbacks
(CSVLogger, LambdaCallback, EarlyStopping-style stop_training) working, resume unchanged."""

import csv

import keras
import numpy as np
import pytest

from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.models.saving import load_model
from seqmodels.training import checkpoint
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.rundir import RunDir

TINY = ModelConfig(layers=1, units=16, embedding_dim=8)


def settings(**over):
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "steps_per_epoch": 5,
                          "eval_every": 2, "deterministic": True, **over})


WINDOWS = WindowConfig(seq_len=16)


def test_stock_callbacks_see_every_event_with_logs(tmp_path, cyclic):
    events = []
    lam = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: events.append(f"epoch_begin {epoch}"),
        on_train_batch_end=lambda batch, logs: events.append(f"batch {batch} {logs['loss']:.3f}"),
        on_epoch_end=lambda epoch, logs: events.append(f"epoch_end {epoch} {logs['val_loss']:.4f}"),
        on_train_end=lambda logs: events.append("train_end"))

    class Tests(keras.callbacks.Callback):
        def on_test_end(self, logs=None):
            events.append(f"test_end {logs['loss']:.4f}")

    log = tmp_path / "log.csv"
    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(), WINDOWS,
                out=tmp_path / "run",
                options=RunOptions(callbacks=[lam, Tests(), keras.callbacks.CSVLogger(str(log))]))
    assert events[0] == "train_begin" and events[-1] == "train_end"
    assert events.count("epoch_begin 0") == 1 and events.count("epoch_begin 1") == 1
    assert [e.split()[1] for e in events if e.startswith("batch")] == [str(i) for i in
                                                                       (0, 1, 2, 3, 4) * 2]
    vals = [r["val_loss"] for r in run.history]  # global steps 2, 4, 5 (epoch end), 6, 8, 10
    assert [e for e in events if e.startswith("test_end")] == [f"test_end {v:.4f}" for v in vals]
    assert [e for e in events if e.startswith("epoch_end")] == [
        f"epoch_end 0 {vals[2]:.4f}", f"epoch_end 1 {vals[5]:.4f}"]
    with open(log) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["val_loss"]) == pytest.approx(vals[5], rel=1e-5)
    assert float(rows[1]["global_step"]) == 10 and "tokens_per_s" in rows[1]


def test_stop_training_stops_like_a_budget_and_keeps_the_weights(tmp_path, cyclic):
    class StopAtThree(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(eval_every=100), WINDOWS,
                out=tmp_path / "run", options=RunOptions(callbacks=[StopAtThree()]))
    assert run.stop_reason == "callback"
    assert [r["global_step"] for r in run.history] == [3]  # validated where it stopped
    kept = load_model(run.path / "model.keras").get_weights()
    reached = [w for w in checkpoint.read(RunDir(run.path).latest_checkpoint()).arrays["weights"]
               if w.dtype == np.float32]
    for a, b in zip(kept, reached):
        np.testing.assert_array_equal(a, b)
    resumed = train(resume=run.path)  # and the run goes on from step 3 to the end
    assert resumed.stop_reason == "completed"
    assert resumed.history[-1]["global_step"] == 10


def test_early_stopping_at_an_epoch_end_stops_there(tmp_path, cyclic):
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(stop.model, "stop_training", True))
    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(epochs=3, eval_every=100),
                WINDOWS,
                out=tmp_path / "run", options=RunOptions(callbacks=[stop]))
    assert run.stop_reason == "callback"
    assert [r["global_step"] for r in run.history] == [5]  # not one step more


def test_something_that_is_not_a_keras_callback_is_refused(tmp_path, cyclic):
    with pytest.raises(SeqmodelsError, match="keras.callbacks.Callback objects, not function"):
        train(DataConfig(corpus=[str(cyclic)]), TINY, settings(), WINDOWS,
              out=tmp_path / "run",
              options=RunOptions(callbacks=[lambda: None]))


CALLBACKS_MODULE = '''
import json

import keras

class Recorder(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open("epochs.jsonl", "a") as f:
            f.write(json.dumps({"epoch": epoch, "val_loss": logs["val_loss"]}) + "\\n")

def stopper():
    stop = keras.callbacks.LambdaCallback()
    stop.on_epoch_end = lambda epoch, logs: setattr(stop.model, "stop_training", True)
    return stop

NOT_ONE = 5

class InitRaises(keras.callbacks.Callback):
    def __init__(self):
        raise RuntimeError("init boom")

class EpochRaises(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise ValueError("epoch boom")

def scheduler():
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)

class BatchExits(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise SystemExit(3)

class InitRaisesBase(keras.callbacks.Callback):
    def __init__(self):
        raise GeneratorExit

class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no str")

def make_unprintable():
    raise Unprintable()

class BatchRaisesUnprintable(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        raise Unprintable()

class BeginRaisesBase(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise BaseException("base boom")

class SetModelRaises(keras.callbacks.Callback):
    def set_model(self, model):
        raise TypeError("set_model boom")

class SetParamsRaises(keras.callbacks.Callback):
    def set_params(self, params):
        raise TypeError("set_params boom")
'''


@pytest.fixture
def callbacks_module(tmp_path, monkeypatch):
    """A module of the user's callbacks in the current folder, under a name of its own."""
    name = f"my_callbacks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(CALLBACKS_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    return name


def test_the_cli_drives_callbacks_named_module_colon_name(tmp_path, cyclic, callbacks_module):
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    config = tmp_path / "train.toml"
    config.write_text(f'callback = ["{callbacks_module}:stopper"]\n')
    result = CliRunner().invoke(cli, [
        "train", str(cyclic), "--out", "run", "--callback", f"{callbacks_module}:Recorder",
        "--config", str(config), "--epochs", "3", "--steps-per-epoch", "4", "--layers", "1",
        "--units", "16", "--embedding-dim", "8", "-T", "16", "--batch-size", "8", "-q"])
    assert result.exit_code == 0, result.output
    # the current folder was searched for the user's module only while it imported
    assert str(tmp_path) not in __import__("sys").path
    # the command line's --callback replaces the file's: Recorder ran, stopper did not stop it
    rows = [__import__("json").loads(line) for line in open("epochs.jsonl")]
    with open(tmp_path / "run" / "history.csv") as f:
        history = [r for r in csv.DictReader(f) if r["val_loss"]]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    epoch_ends = [float(r["val_loss"]) for r in history if int(r["step"]) % 4 == 0]
    assert [r["val_loss"] for r in rows] == pytest.approx(epoch_ends[-3:], rel=1e-5)
    again = CliRunner().invoke(cli, ["train", "--resume", "run", "--epochs", "5",
                                     "--config", str(config), "-q"])  # the file's stopper
    assert again.exit_code == 0, again.output
    with open(tmp_path / "run" / "history.csv") as f:
        assert max(int(r["epoch"]) for r in csv.DictReader(f)) == 4  # one epoch, then stopped


@pytest.mark.parametrize("spec, message", [
    ("{m}", "give MODULE:NAME"),
    ("no_such_module_here:Thing", "cannot import no_such_module_here"),
    ("{m}:Missing", "has no Missing"),
    ("{m}:NOT_ONE", "is not a keras.callbacks.Callback"),
    ("{m}:InitRaises", "calling InitRaises() raised RuntimeError: init boom"),
    ("broken_{m}:X", "importing broken_{m} raised SyntaxError"),
    ("exiting_{m}:X", "importing exiting_{m} raised SystemExit"),
    ("based_{m}:X", "importing based_{m} raised Odd: at import"),
    ("{m}:InitRaisesBase", "calling InitRaisesBase() raised GeneratorExit"),
    ("{m}:make_unprintable", "calling make_unprintable() raised Unprintable: (its message"),
    ("unprintable_{m}:X", "importing unprintable_{m} raised Unprintable: (its message"),
])
def test_a_bad_callback_is_one_line_before_anything_is_made(tmp_path, cyclic, callbacks_module,
                                                            spec, message):
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    (tmp_path / f"broken_{callbacks_module}.py").write_text("x = (\n")
    (tmp_path / f"exiting_{callbacks_module}.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / f"unprintable_{callbacks_module}.py").write_text(
        "class Unprintable(Exception):\n    def __str__(self):\n        return 5\n\n"
        "raise Unprintable()\n")
    (tmp_path / f"based_{callbacks_module}.py").write_text(
        "class Odd(BaseException):\n    pass\n\nraise Odd('at import')\n")
    result = CliRunner().invoke(cli, ["train", str(cyclic), "--out", "run", "--callback",
                                      spec.format(m=callbacks_module), "-q"])
    assert result.exit_code == 2 and message.format(m=callbacks_module) in result.output, \
        result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_forecast_train_drives_them_too(tmp_path, callbacks_module):
    pytest.importorskip("pandas")
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    result = CliRunner().invoke(cli, [
        "forecast", "train", "nile", "--window", "4", "--out", "run", "--epochs", "3",
        "--units", "8", "-q",
        "--callback", f"{callbacks_module}:Recorder", "--callback", f"{callbacks_module}:stopper"])
    assert result.exit_code == 0, result.output
    assert [__import__("json").loads(line)["epoch"] for line in open("epochs.jsonl")] == [0]


@pytest.mark.parametrize("name, message", [
    ("EpochRaises", "failed in on_epoch_end: ValueError: epoch boom at my_callbacks_"),
    ("scheduler", "LearningRateScheduler or ReduceLROnPlateau, do not apply"),
    ("BatchExits", "failed in on_train_batch_end: SystemExit: 3"),
    ("BeginRaisesBase", "failed in on_train_begin: BaseException: base boom"),
    ("BatchRaisesUnprintable", "Unprintable: (its message cannot be shown)"),
])
def test_a_callback_that_fails_while_training_is_named_and_the_run_resumes(
        tmp_path, cyclic, callbacks_module, name, message):
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    args = ["--epochs", "2", "--steps-per-epoch", "3", "--layers", "1", "--units", "16",
            "--embedding-dim", "8", "-T", "16", "--batch-size", "8", "-q"]
    result = CliRunner().invoke(cli, ["train", str(cyclic), "--out", "run", "--callback",
                                      f"{callbacks_module}:{name}", *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--resume" in lines[0], result.stderr
    again = CliRunner().invoke(cli, ["train", "--resume", "run", "-q"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("name", ["SetModelRaises", "SetParamsRaises"])
def test_a_callback_that_fails_as_keras_sets_it_up_is_one_line(tmp_path, cyclic,
                                                                callbacks_module, name):
    """Keras calls set_model and set_params while it builds the CallbackList: a traceback."""
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    result = CliRunner().invoke(cli, ["train", str(cyclic), "--out", "run", "--callback",
                                      f"{callbacks_module}:{name}", "--layers", "1", "--units",
                                      "8", "-T", "16", "--batch-size", "8", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    what = name.replace("Raises", "").replace("SetModel", "set_model").replace(
        "SetParams", "set_params")
    assert len(lines) == 1 and f"TypeError: {what} boom" in lines[0], result.stderr
    assert "--resume" not in lines[0]


class ReadsTheOptimizer(keras.callbacks.Callback):
    """Reads what W&B's WandbMetricsLogger reads: model.optimizer's learning rate (a variable,
    a tensor or a schedule) and its iterations, at every batch and epoch."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def _read(self, when):
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            rate = rate(optimizer.iterations)
        self.rows.append((when, int(keras.ops.convert_to_numpy(optimizer.iterations)),
                          float(keras.ops.convert_to_numpy(rate)),
                          optimizer.get_config()["name"]))

    def on_train_batch_end(self, batch, logs=None):
        self._read("batch")

    def on_epoch_end(self, epoch, logs=None):
        self._read("epoch")


def test_tracker_callbacks_read_the_optimizer_and_write_their_files(tmp_path, cyclic):
    """Trackers read model.optimizer (it failed: the network was never compiled), may not set
    it (the loop sets the rate), and the saved model holds no optimizer state."""
    reader = ReadsTheOptimizer()
    board, log = tmp_path / "board", tmp_path / "log.csv"
    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(lr=0.003), WINDOWS,
                out=tmp_path / "run", options=RunOptions(callbacks=[
                    reader, keras.callbacks.TensorBoard(str(board), write_graph=False),
                    keras.callbacks.CSVLogger(str(log))]))
    batches = [row for row in reader.rows if row[0] == "batch"]
    assert [row[1] for row in batches] == list(range(1, 11))  # 2 epochs of 5 steps
    assert {round(row[2], 6) for row in reader.rows} == {0.003}
    assert {row[3].split("_")[0] for row in reader.rows} == {"adam"}
    assert [row[1] for row in reader.rows if row[0] == "epoch"] == [5, 10]
    with open(log) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    events = b"".join(p.read_bytes() for p in board.rglob("events.out.tfevents.*"))
    assert b"learning_rate" in events  # Keras' TensorBoard logs it: the view is an Optimizer
    assert not hasattr(run.model.network, "optimizer") or run.model.network.optimizer is None


def test_a_callback_cannot_change_the_optimizer(tmp_path, cyclic):
    class Replaces(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model.optimizer = keras.optimizers.SGD()

    with pytest.raises(SeqmodelsError, match="cannot replace model.optimizer.*do not apply"):
        train(DataConfig(corpus=[str(cyclic)]), TINY, settings(), WINDOWS,
              out=tmp_path / "run", options=RunOptions(callbacks=[Replaces()]))
