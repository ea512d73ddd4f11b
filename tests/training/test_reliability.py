"""Reliability of a training run: one writer, failed writes, NaN handling, resume from anywhere."""

import errno
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli
from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.lm import train as trainer
from seqmodels.lm.config import WindowConfig
from seqmodels.models import builders
from seqmodels.models.config import ModelConfig
from seqmodels.training import checkpoint
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.rundir import RunDir

TINY = dict(layers=1, units=24, embedding_dim=8)


LOCK_NAME = RunDir.LOCK


def run_lock(run):
    """Hold a run's lock, as a training process does."""
    return RunDir(run).locked()


def on_step(function):
    """A Keras callback that hands every step's logs to function."""
    import keras

    return keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: function(logs))


def run_train(tmp_path, corpus, name="run", model=None, callback=None, **settings):
    config = dict(epochs=1, batch_size=8, seed=0, deterministic=True)
    config.update(settings)
    return trainer.train(DataConfig(corpus=[str(corpus)]), ModelConfig(**(model or TINY)),
                         TrainConfig(**config), WindowConfig(seq_len=16), out=tmp_path / name,
                         options=RunOptions(cache_dir=tmp_path / "cache",
                                            callbacks=[on_step(callback)] if callback else []))


def progress_of(run_dir):
    return checkpoint.read(RunDir(run_dir).latest_checkpoint()).progress


def test_a_second_writer_is_refused(tmp_path, cyclic):
    run = run_train(tmp_path, cyclic).path
    with run_lock(run):  # a live holder (flock is per open file, so this process counts)
        result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 1
    assert f"is in use: pid {os.getpid()}" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert progress_of(run)["epoch"] == 1  # nothing was trained or written


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, cyclic):
    run = run_train(tmp_path, cyclic).path
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from seqmodels.training.rundir import RunDir\n"
         "with RunDir(sys.argv[1]).locked():\n    print('locked', flush=True); time.sleep(600)",
         str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(SeqmodelsError, match=f"pid {holder.pid}"):
        trainer.train(resume=run, changes={"epochs": 2})
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with pytest.warns(UserWarning, match=f"left by pid {holder.pid} on .*no longer running"):
        trainer.train(resume=run, changes={"epochs": 2})
    assert progress_of(run)["epoch"] == 2
    assert (run / LOCK_NAME).read_text() == ""  # a clean exit leaves an empty lock file


@pytest.mark.parametrize("code,lead", [(errno.ENOSPC, "make room and continue with"),
                                       (errno.EACCES, "make it writable and continue with")])
def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, cyclic, monkeypatch, code,
                                                          lead):
    """(A permission error was told to "make room", issue 34.)"""
    import seqmodels.training.checkpoint as checkpoint_module

    real_savez, calls = np.savez, []

    def disk_full_on_the_fourth(file, **arrays):
        calls.append(1)
        if len(calls) == 4:
            file.write(b"PK\x03\x04 half a zip")  # part of the file reaches the disk
            raise OSError(code, os.strerror(code))
        real_savez(file, **arrays)

    monkeypatch.setattr(checkpoint_module.np, "savez", disk_full_on_the_fourth)
    with pytest.raises(SeqmodelsError) as info:
        run_train(tmp_path, cyclic, checkpoint_every=1)
    message = str(info.value)
    assert "could not write the checkpoint" in message and os.strerror(code) in message
    assert f"{lead}: seqmodels.train(resume={str(tmp_path / 'run')!r})" in message
    run = tmp_path / "run"
    # calls 1-3: step 0 (start), steps 1 and 2; the write for step 3 failed
    assert progress_of(run)["global_step"] == 2
    assert checkpoint.read(run / "checkpoints" / "previous.npz").progress["global_step"] == 1
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(checkpoint_module.np, "savez", real_savez)
    trainer.train(resume=run)  # and the run continues once there is room again
    assert progress_of(run)["epoch"] == 1


def exploding(monkeypatch):
    """Build SimpleRNNs with a large constant recurrent kernel (spectral radius 12)."""
    build = builders.build_language_model

    def build_big(*args, **kwargs):
        model = build(*args, **kwargs)
        for layer in model.layers:
            kernel = getattr(getattr(layer, "cell", None), "recurrent_kernel", None)
            if kernel is not None:
                kernel.assign(np.full(kernel.shape, 0.5, "float32"))
        return model

    monkeypatch.setattr(builders, "build_language_model", build_big)


def test_nan_stops_by_default_and_names_the_remedies(tmp_path, cyclic, monkeypatch):
    exploding(monkeypatch)
    with pytest.raises(SeqmodelsError) as info:
        run_train(tmp_path, cyclic, model={**TINY, "cell": "rnn"}, optimizer="sgd", lr=1e30,
                  momentum=0.0, clipnorm=None)
    message = str(info.value)
    assert "NaN/Inf at epoch 1, step 2" in message
    assert "lower lr" in message and "clipnorm" in message and "on_nan rollback" in message


def test_rollback_reloads_the_checkpoint_and_halves_the_rate(tmp_path, cyclic, monkeypatch):
    # sgd at 1.28e20 overflows the gradient norm at step 2 (measured: 3.2e19 stays finite,
    # 6.4e19 does not, with Keras' uniform embedding init), so two rollbacks bring the rate to
    # 3.2e19 and training goes on
    exploding(monkeypatch)
    seen = []
    rnn = {**TINY, "cell": "rnn", "embedding_init": "uniform"}
    with pytest.warns(UserWarning, match="rolled back to epoch 1, step 0") as caught:
        run = run_train(tmp_path, cyclic, model=rnn, optimizer="sgd",
                        lr=1.28e20, momentum=0.0, clipnorm=None, on_nan="rollback",
                        callback=lambda i: seen.append((i["global_step"], i["lr"])))
    rollbacks = [str(w.message) for w in caught if "rolled back" in str(w.message)]
    assert len(rollbacks) == 2 and "(rollback 2 of 3)" in rollbacks[-1]
    # step 1 ran three times (at 1.28e20, 6.4e19, 3.2e19); every later step at 3.2e19
    assert [lr for step, lr in seen if step == 1] == [1.28e20, 6.4e19, 3.2e19]
    assert {lr for step, lr in seen if step > 1} == {3.2e19}
    assert run.stop_reason == "completed"
    progress = progress_of(run.path)
    assert progress["rollbacks"] == 2 and progress["lr_scale"] == 0.25
    assert [row["epoch"] for row in progress["history"]] == [1]


def test_rollback_gives_up_after_three(tmp_path, cyclic, monkeypatch):
    exploding(monkeypatch)
    with pytest.raises(SeqmodelsError, match="again after 3 rollbacks"):
        run_train(tmp_path, cyclic, model={**TINY, "cell": "rnn"}, optimizer="sgd", lr=1e30,
                  momentum=0.0, clipnorm=None, on_nan="rollback")
    assert progress_of(tmp_path / "run")["rollbacks"] == 3


def timeless(run_dir):
    """history.csv without the columns that measure time."""
    rows = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()]
    kept = [i for i, name in enumerate(rows[0]) if not name.endswith(("seconds", "_per_s"))]
    return [[row[i] for i in kept] for row in rows]


def test_resume_works_from_a_run_killed_before_its_first_checkpoint(tmp_path, cyclic):
    straight = run_train(tmp_path, cyclic, "straight").path
    run = run_train(tmp_path, cyclic).path
    for name in ("latest.npz", "previous.npz"):
        (run / "checkpoints" / name).unlink(missing_ok=True)
    (run / "history.csv").unlink()
    (run / "model.keras").unlink()
    killed_write = run / "checkpoints" / ".seqmodels-tmp-latest.npz-x1y2.npz.tmp"
    killed_write.write_bytes(b"half")
    trainer.train(resume=run)
    a, b = (checkpoint.read(RunDir(r).latest_checkpoint()).arrays["weights"]
            for r in (straight, run))
    assert all(np.allclose(x, y, atol=1e-6, rtol=0) for x, y in zip(a, b))
    assert timeless(run) == timeless(straight)
    assert not killed_write.exists()


def test_resume_rewrites_a_history_lost_to_a_kill(tmp_path, cyclic):
    run = run_train(tmp_path, cyclic, epochs=2).path
    expected = (run / "history.csv").read_text()
    (run / "history.csv").write_text(expected.splitlines()[0] + "\n")  # killed before the CSV
    trainer.train(resume=run)  # nothing left to train, but the records catch up
    assert (run / "history.csv").read_text() == expected


def test_log_every_prints_progress_lines(tmp_path, cyclic):
    result = CliRunner().invoke(cli, [
        "train", str(cyclic), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size",
        "8", "-T", "16", "--layers", "1", "--units", "8", "--steps-per-epoch", "4",
        "--log-every", "2", "-q"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch 1/1 step")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/1 step 2/4", "epoch 1/1 step 4/4"]


def test_off_a_terminal_a_progress_line_comes_every_so_often(tmp_path, cyclic, monkeypatch):
    """A run writing to a log file printed nothing for minutes (the bar needs a terminal): a
    line every LOG_SECONDS (30) stands in for it; --log-every still wins."""
    from seqmodels.training import trainer

    monkeypatch.setattr(trainer, "LOG_SECONDS", 1e-9)  # every step, here
    args = ["train", str(cyclic), "--epochs", "1", "--batch-size", "8", "-T", "16",
            "--layers", "1", "--units", "8", "--steps-per-epoch", "4", "--sample-every", "0"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch 1/1 step")]
    assert [line.split(" (")[0] for line in lines] == [f"epoch 1/1 step {i}/4" for i in range(1, 5)]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--log-every", "3"])
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch 1/1 step")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/1 step 3/4"]


def test_a_signal_during_validation_stops_at_once_and_the_resume_validates(tmp_path, cyclic):
    """H4 (issue 34): SIGTERM waited for the whole validation split (the final validation of a
    budget has no budget); a service manager kills a run that takes that long. The validation
    is now dropped at its next batch, the weights checkpointed, and a resume validates them."""
    import keras

    batches = []

    class TermWhenValidating(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler sets the stop flag

        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)

    with pytest.raises(SeqmodelsError, match="interrupted; checkpoint saved") as caught:
        trainer.train(DataConfig(corpus=[str(cyclic)]), ModelConfig(**TINY),
                      TrainConfig(epochs=1, batch_size=8, steps_per_epoch=4),
                      WindowConfig(seq_len=16), out=tmp_path / "run",
                      options=RunOptions(cache_dir=tmp_path / "cache",
                                         callbacks=[TermWhenValidating()]))
    assert caught.value.exit_code == 143 and len(batches) == 4
    run = RunDir(tmp_path / "run")
    assert not run.history.exists()  # no validation finished
    assert checkpoint.read(run.latest).progress["global_step"] == 4
    resumed = trainer.train(resume=run.path, options=RunOptions(cache_dir=tmp_path / "cache"))
    assert [(r["epoch"], r["global_step"]) for r in resumed.history] == [(1, 4)]


def test_a_signal_during_training_still_validates_the_weights_it_stops_at(tmp_path, cyclic):
    """The validation a stop asks for runs (a run stopped before its first validation must
    still leave a model); only a signal during a validation drops it."""
    import keras

    class TermAtStepTwo(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if logs["global_step"] == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SeqmodelsError, match="interrupted; checkpoint saved"):
        trainer.train(DataConfig(corpus=[str(cyclic)]), ModelConfig(**TINY),
                      TrainConfig(epochs=1, batch_size=8, steps_per_epoch=4),
                      WindowConfig(seq_len=16), out=tmp_path / "run",
                      options=RunOptions(cache_dir=tmp_path / "cache",
                                         callbacks=[TermAtStepTwo()]))
    run = RunDir(tmp_path / "run")
    assert run.model.is_file()
    assert [(r["epoch"], r["global_step"]) for r in run.read_history()] == [(1, 2)]


def test_a_full_disk_under_tensorboard_is_a_full_disk_not_out_of_memory(tmp_path, cyclic,
                                                                        monkeypatch):
    """TensorFlow reports a full disk under its writers as ResourceExhaustedError, which the
    command line called "out of memory ... use fewer --units", with no way to go on."""
    pytest.importorskip("tensorboard")
    import tensorflow as tf

    def disk_full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, "tensorboard/events.out.tfevents; No space left on device")

    monkeypatch.setattr(tf.summary, "scalar", disk_full)
    with pytest.raises(SeqmodelsError) as info:
        run_train(tmp_path, cyclic, tensorboard=True, steps_per_epoch=2)
    message = str(info.value)
    assert "could not write the TensorBoard log" in message and "No space left" in message
    assert "make room and continue with: seqmodels.train(resume=" in message
