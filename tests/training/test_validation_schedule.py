"""Validation on a schedule: every N steps, at epoch ends and when a budget stops training, so a
budget keeps the weights it reached; resume stays exact across a validation."""

import math

import numpy as np
import pytest

import seqmodels
from seqmodels.data.config import DataConfig
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.train import train
from seqmodels.models.saving import load_model
from seqmodels.training import checkpoint, timing
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.progress import Progress
from seqmodels.training.rundir import RunDir
from seqmodels.training.schedule import MIN_EVAL_EVERY, eval_every
from seqmodels.training.trainer import validation_due

TINY = dict(layers=1, units=16, embedding_dim=8)


def on_step(function):
    """A Keras callback that hands every step's logs to function."""
    import keras

    return keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: function(logs))


def run_train(tmp_path, cyclic, name, resume=None, callback=None, **settings):
    from seqmodels.models.config import ModelConfig

    options = RunOptions(cache_dir=tmp_path / "cache",
                         callbacks=[on_step(callback)] if callback else [])
    if resume is not None:
        return train(resume=resume, changes=settings, options=options)
    windows = WindowConfig(seq_len=16, stateful=settings.pop("stateful", False),
                           eval_tokens=settings.pop("eval_tokens", None))
    config = TrainConfig(**{"epochs": 2, "batch_size": 8, "steps_per_epoch": 7,
                            "deterministic": True, "eval_every": 3, **settings})
    return train(DataConfig(corpus=[str(cyclic)]), ModelConfig(**TINY), config, windows,
                 out=tmp_path / name, options=options)


def weights(run_dir):
    return checkpoint.read(RunDir(run_dir).latest_checkpoint()).arrays["weights"]


def stop_by_budget_after(monkeypatch, steps: int):
    """Make --max-time run out after `steps` steps (a clock that jumps then); returns the step
    callback that counts them."""
    done = {"steps": 0}
    monkeypatch.setattr(timing.TimeSpent, "elapsed",
                        lambda self: 1e9 if done["steps"] >= steps else 0.0)
    return lambda info: done.update(steps=info["global_step"])


def test_when_validation_is_due():
    p = Progress(step=3, global_step=10, last_validated_step=7)
    assert validation_due(p, every=5, steps=20)  # every 5th global step
    assert not validation_due(p, every=4, steps=20)
    assert validation_due(p, every=4, steps=3)  # the epoch's end
    assert validation_due(p, every=100, steps=20, stopping=True)  # a budget or signal stop
    p.last_validated_step = 10
    assert not validation_due(p, every=1, steps=3, stopping=True)  # nothing new to validate


def test_the_default_keeps_validation_near_five_percent_of_training():
    assert eval_every(TrainConfig(eval_every=7), 10**6, 6400) == 7
    # 215k validation tokens at 2.5x the training speed cost 5% after 269 steps of 6,400 tokens
    assert eval_every(TrainConfig(), 215_000, 6400) == math.ceil(215_000 / (2.5 * 0.05 * 6400))
    assert eval_every(TrainConfig(), 1000, 6400) == MIN_EVAL_EVERY


def test_rows_every_n_steps_and_at_epoch_ends(tmp_path, cyclic):
    run = run_train(tmp_path, cyclic, "every")
    rows = run.history
    assert [r["global_step"] for r in rows] == [3, 6, 7, 9, 12, 14]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 3), (1, 6), (1, 7), (2, 2), (2, 5),
                                                       (2, 7)]
    assert [r["tokens"] for r in rows] == [8 * 16 * s for s in (3, 6, 7, 9, 12, 14)]
    assert all(r["tokens_per_s"] > 0 and r["step_tokens_per_s"] >= r["tokens_per_s"]
               for r in rows)  # wall time holds the steps and more
    walls = [r["wall_seconds"] for r in rows]
    assert walls == sorted(walls) and walls[0] > 0
    assert run.best_val_loss == min(r["val_loss"] for r in rows)
    assert (run.path / "training.png").stat().st_size > 0


def test_a_budget_ending_mid_epoch_keeps_the_weights_it_reached(tmp_path, cyclic, monkeypatch):
    count = stop_by_budget_after(monkeypatch, 2)  # before the first scheduled validation
    run = run_train(tmp_path, cyclic, "budget", callback=count, max_time=60.0, eval_every=100)
    assert run.stop_reason == "max-time"
    assert [(r["epoch"], r["step"], r["global_step"]) for r in run.history] == [(1, 2, 2)]
    assert (run.path / "history.csv").is_file() and (run.path / "training.png").is_file()
    kept = load_model(run.path / "model.keras").get_weights()
    reached = checkpoint.read(RunDir(run.path).latest_checkpoint()).arrays["weights"]
    trainable = [w for w in reached if w.dtype == np.float32]  # not the RNG seed states
    assert len(kept) == len(trainable)
    for a, b in zip(kept, trainable):
        np.testing.assert_array_equal(a, b)
    assert run.best_val_loss == run.history[0]["val_loss"]


def test_resume_across_a_validation_is_exact(tmp_path, cyclic, monkeypatch):
    straight = run_train(tmp_path, cyclic, "straight")
    with monkeypatch.context() as mp:
        count = stop_by_budget_after(mp, 4)  # one step after the validation at step 3
        stopped = run_train(tmp_path, cyclic, "stopped", callback=count, max_time=60.0)
    assert stopped.stop_reason == "max-time"
    assert [r["global_step"] for r in stopped.history] == [3, 4]
    resumed = run_train(tmp_path, cyclic, None, resume=tmp_path / "stopped")
    assert resumed.stop_reason == "completed"
    for a, b in zip(weights(straight.path), weights(resumed.path)):
        np.testing.assert_array_equal(a, b)
    by_step = {r["global_step"]: r["val_loss"] for r in resumed.history}
    assert sorted(by_step) == [3, 4, 6, 7, 9, 12, 14]
    for row in straight.history:
        assert by_step[row["global_step"]] == pytest.approx(row["val_loss"], abs=1e-6)


def test_validation_in_mid_epoch_leaves_a_stateful_carry_alone(tmp_path, cyclic):
    plain = run_train(tmp_path, cyclic, "carry", stateful=True, eval_every=1000)
    often = run_train(tmp_path, cyclic, "carry-often", stateful=True, eval_every=2)
    assert len(often.history) > len(plain.history)
    for a, b in zip(weights(plain.path), weights(often.path)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_run_that_is_still_training_says_so(tmp_path, cyclic):
    from seqmodels.errors import SeqmodelsError

    run = run_train(tmp_path, cyclic, "busy", epochs=1)
    (run.path / "model.keras").unlink()
    with RunDir(run.path).locked(), pytest.raises(SeqmodelsError, match="is still training"):
        seqmodels.load(run.path)
    with pytest.raises(SeqmodelsError, match="has no trained model yet"):
        seqmodels.load(run.path)


def test_eval_tokens_validates_a_slice_and_the_best_model_on_the_whole_split(tmp_path, cyclic):
    from seqmodels.data.prepare import prepare_corpus
    from seqmodels.lm.evaluate import evaluate_ids

    run = run_train(tmp_path, cyclic, "slice", eval_tokens=40, epochs=1)
    val = prepare_corpus(DataConfig(corpus=[str(cyclic)]), cache_dir=tmp_path / "cache"
                         ).splits.val
    assert len(val) > 200
    best = seqmodels.load(run.path)
    assert run.full_val_loss == pytest.approx(
        evaluate_ids(best, val, context=16).cross_entropy, rel=1e-6)
    whole = run_train(tmp_path, cyclic, "whole", epochs=1)  # the same training, all validated
    assert [r["global_step"] for r in run.history] == [r["global_step"] for r in whole.history]
    for sliced, full in zip(run.history, whole.history):
        assert sliced["loss"] == pytest.approx(full["loss"], abs=1e-6)
        assert sliced["val_loss"] != pytest.approx(full["val_loss"], abs=1e-6)
    assert whole.full_val_loss is None
