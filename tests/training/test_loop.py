"""Training through the Python API: learning, seeds, resume, clipping, penalties, budgets, NaN."""

import time

import numpy as np
import pytest

import seqmodels
from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.training import checkpoint
from seqmodels.training.config import RunOptions, TrainConfig, parse_duration
from seqmodels.training.rundir import RunDir
from seqmodels.training.schedule import schedule_lr

TINY = dict(layers=1, units=24, embedding_dim=8)


def on_step(function):
    """A Keras callback that hands every step's logs (epoch, step, global_step, loss, lr...)
    to function."""
    import keras

    return keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: function(logs))


def options(tmp_path, callback=None):
    return RunOptions(cache_dir=tmp_path / "cache",
                      callbacks=[on_step(callback)] if callback else [])


def run_train(tmp_path, corpus, name, model=None, callback=None, **train_kwargs):
    settings = dict(epochs=1, batch_size=8, seed=0, deterministic=True)
    settings.update(train_kwargs)
    return train(DataConfig(corpus=[str(corpus)]), ModelConfig(**(model or TINY)),
                 TrainConfig(**settings), WindowConfig(seq_len=16), out=tmp_path / name,
                 options=options(tmp_path, callback))


def weights(run_dir):
    return checkpoint.read(RunDir(run_dir).latest_checkpoint()).arrays["weights"]


def same(a, b, tol=1e-6):
    return len(a) == len(b) and all(np.allclose(x, y, atol=tol, rtol=0) for x, y in zip(a, b))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_each_cell_learns_a_learnable_sequence(tmp_path, cyclic, cell):
    run = run_train(tmp_path, cyclic, cell, model={**TINY, "cell": cell}, epochs=4, lr=0.01)
    # uniform guessing over 14 ids costs ln 14 = 2.64 nats; the sequence is deterministic
    assert run.history[0]["val_loss"] < 2.64
    assert run.best_val_loss < 0.3, run.history
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "vocab.json", "model.keras", "checkpoints", "history.csv",
            "training.png"} <= files


def test_same_seed_same_weights(tmp_path, cyclic):
    a = run_train(tmp_path, cyclic, "a", epochs=2)
    b = run_train(tmp_path, cyclic, "b", epochs=2)
    c = run_train(tmp_path, cyclic, "c", epochs=2, seed=1)
    assert same(weights(a.path), weights(b.path), tol=0)
    assert not same(weights(a.path), weights(c.path))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_equals_straight_run(tmp_path, cyclic, dropout):
    model = {**TINY, "dropout": dropout}  # dropout masks must replay too
    straight = run_train(tmp_path, cyclic, "straight", model=model, epochs=2)
    first = run_train(tmp_path, cyclic, "resumed", model=model, epochs=1)
    assert len(first.history) == 1
    resumed = train(resume=first.path, changes={"epochs": 2}, options=options(tmp_path))
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert same(weights(straight.path), weights(resumed.path))
    assert resumed.history[1]["loss"] == pytest.approx(straight.history[1]["loss"], abs=1e-6)


def test_interrupted_mid_epoch_resumes_at_the_right_step(tmp_path, cyclic):
    straight = run_train(tmp_path, cyclic, "straight", epochs=1)
    steps = []

    def crash(info):
        steps.append(int(info["step"]))
        if info["global_step"] == 7:
            raise RuntimeError("simulated crash")

    with pytest.raises(SeqmodelsError, match="RuntimeError: simulated crash"):
        train(DataConfig(corpus=[str(cyclic)]), ModelConfig(**TINY),
              TrainConfig(epochs=1, batch_size=8, deterministic=True, checkpoint_every=3),
              WindowConfig(seq_len=16), out=tmp_path / "crashed",
              options=options(tmp_path, crash))
    progress = checkpoint.read(RunDir(tmp_path / "crashed").latest_checkpoint()).progress
    assert progress["epoch"] == 0 and progress["step"] == 6
    resumed_steps = []
    run = train(resume=tmp_path / "crashed",
                options=options(tmp_path, lambda info: resumed_steps.append(int(info["step"]))))
    assert resumed_steps[0] == 7  # continues with the 7th step of epoch 1, not from 0
    assert steps == list(range(1, 8))  # step 7 ran, then crashed; steps 1-6 are checkpointed
    assert resumed_steps == list(range(7, resumed_steps[-1] + 1))
    assert same(weights(straight.path), weights(run.path))
    assert run.history[0]["loss"] == pytest.approx(straight.history[0]["loss"], abs=1e-6)


def test_clipping_bounds_the_applied_update(tmp_path, cyclic):
    from seqmodels.backend import import_tf
    from seqmodels.lm.task import language_steps
    from seqmodels.models.builders import build_language_model
    from seqmodels.training.step import make_optimizer

    tf = import_tf()
    config = TrainConfig(optimizer="sgd", lr=1.0, momentum=0.0, clipnorm=1e-3)
    net = build_language_model(14, ModelConfig(**TINY))
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    train_step, _ = language_steps(net, optimizer, config)
    x = tf.constant(np.random.default_rng(0).integers(0, 14, (4, 10)), tf.int32)
    before = [w.numpy().copy() for w in net.trainable_variables]
    _, norm, finite = train_step(x, x)
    step = np.sqrt(sum(np.sum((w.numpy() - b) ** 2)
                       for w, b in zip(net.trainable_variables, before)))
    assert bool(finite) and float(norm) > 1e-3  # the raw gradient is larger than the clip
    assert step == pytest.approx(1e-3, rel=1e-3)  # plain SGD with lr 1 moves by the clipped norm


def test_l2_raises_the_loss_by_the_expected_amount():
    import keras

    from seqmodels.backend import import_tf
    from seqmodels.lm.task import cross_entropy
    from seqmodels.models.builders import build_language_model
    from seqmodels.training.step import loss_terms

    tf = import_tf()
    keras.utils.set_random_seed(0)
    plain = build_language_model(14, ModelConfig(**TINY))
    l2 = build_language_model(14, ModelConfig(**TINY, l2=0.01))
    l2.set_weights(plain.get_weights())
    x = tf.constant(np.random.default_rng(0).integers(0, 14, (4, 10)), tf.int32)
    ce0, pen0 = loss_terms(plain, x, x, cross_entropy)
    ce1, pen1 = loss_terms(l2, x, x, cross_entropy)
    rnn = l2.get_layer("rnn_0")
    expected = 0.01 * sum(float(np.sum(np.square(w))) for w in
                          (rnn.cell.kernel.numpy(), rnn.cell.recurrent_kernel.numpy()))
    assert float(pen0) == 0 and float(ce1) == pytest.approx(float(ce0), abs=1e-6)
    assert float(pen1) == pytest.approx(expected, rel=1e-5)


def test_max_time_is_the_wall_time_of_the_call(tmp_path, cyclic):
    stamps = []
    called = time.monotonic()
    run = train(DataConfig(corpus=[str(cyclic)]), ModelConfig(**TINY),
                TrainConfig(epochs=10_000, batch_size=8, max_time=6.0),
                WindowConfig(seq_len=16), out=tmp_path / "budget",
                options=options(tmp_path, lambda info: stamps.append(time.monotonic())))
    took = time.monotonic() - called
    assert run.stop_reason == "max-time" and len(stamps) > 10
    longest_step = float(np.max(np.diff(stamps)))
    # the budget counts the call's start-up, the final validation and the writes too
    assert took <= 6.0 + longest_step + 1.0
    assert (run.path / "model.keras").is_file() and RunDir(run.path).latest_checkpoint() is not None


def test_nan_stops_within_one_step_and_keeps_the_last_good_checkpoint(tmp_path, cyclic):
    seen = []
    # a SimpleRNN: the fused LSTM stays finite even at this rate (loss 3e30, gradient norm 1.8
    # after 5 steps), while Keras' own LSTM turned NaN at step 2
    rnn = {**TINY, "cell": "rnn"}
    with pytest.raises(SeqmodelsError, match="NaN/Inf at epoch 1, step 2") as info:
        run_train(tmp_path, cyclic, "nan", model=rnn, epochs=3, optimizer="sgd", lr=1e30,
                  clipnorm=None, checkpoint_every=1, callback=lambda i: seen.append(i["step"]))
    assert "were not updated" in str(info.value)
    assert seen == [1]  # step 1 applied a huge but finite update; step 2 was refused
    ckpt = checkpoint.read(RunDir(tmp_path / "nan").latest_checkpoint())
    assert ckpt.progress["step"] == 1
    assert all(np.isfinite(w).all() for w in ckpt.arrays["weights"])


def test_load_gives_the_same_predictions(tmp_path, cyclic):
    from seqmodels.models.builders import build_language_model

    run = run_train(tmp_path, cyclic, "reload", epochs=1)
    again = seqmodels.load(run.path)
    net = build_language_model(again.vocab_size, ModelConfig(**TINY))
    for var, value in zip(net.variables, weights(run.path)):  # the last epoch is the best
        var.assign(value)
    x = np.array([again.tokenizer.encode("abcdefghijk\nabc")], dtype=np.int32)
    assert np.allclose(again(x), net(x), atol=1e-6)
    assert again.settings["model"]["units"] == 24 and again.settings["versions"]["keras"]


def test_refuses_to_overwrite_an_existing_run(tmp_path, cyclic):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(SeqmodelsError, match="already exists and is not empty"):
        run_train(tmp_path, cyclic, "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_schedules_and_durations():
    c = TrainConfig(lr=1.0, schedule="step", decay_after=2, decay_factor=0.5, epochs=5)
    # Zaremba et al.: full rate for the first k epochs, then multiplied by the factor each epoch
    assert [schedule_lr(c, e, 0, 10) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]
    c = TrainConfig(lr=1.0, schedule="cosine", epochs=2)
    assert schedule_lr(c, 0, 0, 10) == 1.0 and schedule_lr(c, 1, 0, 10) == pytest.approx(0.5)
    assert schedule_lr(TrainConfig(lr=1.0, schedule="plateau"), 3, 0, 10, 0.25) == 0.25
    assert [parse_duration(s) for s in ("90", "90s", "10m", "2h", "1h30m")] == [
        90, 90, 600, 7200, 5400]
    with pytest.raises(SeqmodelsError, match="cannot read the duration"):
        parse_duration("soon")


def test_patience_and_plateau_follow_the_validation_loss(tmp_path, cyclic, monkeypatch):
    from seqmodels.training.trainer import Trainer

    losses = iter([2.0, 1.5, 1.6, 1.7, 1.4, 1.8, 1.9])
    monkeypatch.setattr(Trainer, "_validation_loss", lambda self, *signals: next(losses))
    run = run_train(tmp_path, cyclic, "plateau", epochs=10, patience=2, lr=0.01,
                    schedule="plateau", decay_factor=0.5, steps_per_epoch=2)
    assert run.stop_reason == "early-stopping"
    assert [r["val_loss"] for r in run.history] == [2.0, 1.5, 1.6, 1.7]  # 2 epochs no better
    # the rate halves after each epoch without improvement (plateau patience 1)
    assert [r["lr"] for r in run.history] == pytest.approx([0.01, 0.01, 0.01, 0.005])
    assert run.best_val_loss == 1.5


def test_the_training_plot_of_zero_gradients_warns_nothing(tmp_path):
    """A constant series trains with gradient norms of 0: no log-scale warning from matplotlib."""
    import warnings

    from seqmodels.training.history import plot_history

    rows = [{"tokens": t, "epoch": 1, "loss": 0.0, "val_loss": 0.0, "grad_norm_mean": 0.0,
             "grad_norm_max": 0.0} for t in (100, 200)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_history(tmp_path / "training.png", rows)
    assert (tmp_path / "training.png").stat().st_size > 0


def test_trainings_in_two_threads_both_plot_and_leave_pyplot_alone(tmp_path):
    """Two seqmodels.train() calls in two threads of one process both died: the plots went
    through pyplot's global state; and `matplotlib.use("Agg")` switched a notebook's backend."""
    import threading

    import matplotlib

    from seqmodels.training.history import plot_history

    backend = matplotlib.get_backend()
    rows = [{"tokens": t, "epoch": 1, "loss": 3.0 - t / 1000, "val_loss": 3.1 - t / 1000,
             "grad_norm_mean": 1.0, "grad_norm_max": 2.0} for t in range(100, 2100, 100)]
    failures = []

    def plots(i):
        try:
            for j in range(8):
                plot_history(tmp_path / f"t{i}-{j}.png", rows[: 2 + j])
        except Exception as exc:  # the thread's failure, reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=plots, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(list(tmp_path.glob("*.png"))) == 48
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in tmp_path.glob("*.png"))
    assert matplotlib.get_backend() == backend
