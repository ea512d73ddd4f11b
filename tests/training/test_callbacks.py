"""Keras callbacks driven by seqmodels' own loop: the usual events and logs, stock callbacks
(CSVLogger, LambdaCallback, EarlyStopping-style stop_training) working, resume unchanged."""

import csv

import keras
import numpy as np
import pytest

from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.models.saving import load_model
from seqmodels.training import checkpoint
from seqmodels.training.config import TrainConfig

TINY = ModelConfig(layers=1, units=16, embedding_dim=8)


def settings(**over):
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "seq_len": 16, "steps_per_epoch": 5,
                          "eval_every": 2, "deterministic": True, **over})


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
    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(), out=tmp_path / "run",
                callbacks=[lam, Tests(), keras.callbacks.CSVLogger(str(log))])
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

    run = train(DataConfig(corpus=[str(cyclic)]), TINY, settings(eval_every=100),
                out=tmp_path / "run", callbacks=[StopAtThree()])
    assert run.stop_reason == "callback"
    assert [r["global_step"] for r in run.history] == [3]  # validated where it stopped
    kept = load_model(run.path / "model.keras").get_weights()
    reached = [w for w in checkpoint.read(checkpoint.latest(run.path)).arrays["weights"]
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
                out=tmp_path / "run", callbacks=[stop])
    assert run.stop_reason == "callback"
    assert [r["global_step"] for r in run.history] == [5]  # not one step more


def test_something_that_is_not_a_keras_callback_is_refused(tmp_path, cyclic):
    with pytest.raises(SeqmodelsError, match="keras.callbacks.Callback objects, not function"):
        train(DataConfig(corpus=[str(cyclic)]), TINY, settings(), out=tmp_path / "run",
              callbacks=[lambda: None])
