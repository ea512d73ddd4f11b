"""seqmodels.training.checkpoint: atomic write, read, and restore by variable name."""

import json
import re

import numpy as np
import pytest

from seqmodels.errors import SeqmodelsError
from seqmodels.models.builders import build_language_model
from seqmodels.models.config import ModelConfig
from seqmodels.training import checkpoint
from seqmodels.training.checkpoint import NON_NEGATIVE_SLOTS
from seqmodels.training.config import TrainConfig
from seqmodels.training.progress import Progress
from seqmodels.training.rundir import RunDir
from seqmodels.training.step import make_optimizer

V = 11


def built(layers: int = 2, units: int = 8, dropout: float = 0.1, seed: int = 0):
    """A tiny language model with dropout (so it has RNG seed states) and a built Adam whose
    every variable, the model's too, holds random numbers drawn from seed (positive where a
    checkpoint refuses a negative one: the rate and Adam's velocities; the step count at most
    the 17 steps the tests' progress records)."""
    net = build_language_model(V, ModelConfig(cell="gru", layers=layers, units=units,
                                              embedding_dim=4, dropout=dropout))
    optimizer = make_optimizer(TrainConfig())
    optimizer.build(net.trainable_variables)
    rng = np.random.default_rng(seed)
    for v in [*net.variables, *optimizer.variables]:
        integer = "int" in str(v.dtype)
        top = 18 if v.name == "iteration" else 1000
        value = rng.integers(0, top, v.shape) if integer else rng.normal(size=v.shape)
        if v.name.endswith(NON_NEGATIVE_SLOTS):
            value = np.abs(value)
        v.assign(value.astype(str(v.dtype)))
    return net, optimizer


def values(variables) -> list[np.ndarray]:
    return [np.asarray(v) for v in variables]


def test_a_checkpoint_restores_into_a_model_built_later_in_the_process(tmp_path):
    net, optimizer = built(seed=1)
    checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(epoch=2, step=5, global_step=17))
    built(seed=2)  # Keras numbers seed generators and optimizers per process: names move on
    fresh, fresh_optimizer = built(seed=3)
    progress = checkpoint.restore(checkpoint.load_latest(RunDir(tmp_path)), fresh, fresh_optimizer)
    assert (progress.epoch, progress.step, progress.global_step) == (2, 5, 17)
    for a, b in zip(values(net.variables), values(fresh.variables)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(values(optimizer.variables), values(fresh_optimizer.variables)):
        np.testing.assert_array_equal(a, b)


def test_the_names_are_stored_with_the_arrays(tmp_path):
    net, optimizer = built()
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))
    ckpt = checkpoint.read(path)
    assert ckpt.version == checkpoint.VERSION
    assert "rnn_0/kernel" in ckpt.names["weights"] and "logits/bias" in ckpt.names["weights"]
    assert "embedding_dropout/seed_generator_state" in ckpt.names["weights"]
    assert not any(re.search(r"seed_generator_\d", name) for name in ckpt.names["weights"])
    assert "iteration" in ckpt.names["optimizer"]
    assert len(ckpt.names["weights"]) == len(ckpt.arrays["weights"]) == len(net.variables)


def _rewrite(path, mutate) -> None:
    """Apply mutate(arrays by key, state) to a checkpoint file and write it back."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(bytes(arrays.pop("state.json")).decode())
    mutate(arrays, state)
    arrays["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_restore_goes_by_name_not_by_position(tmp_path):
    net, optimizer = built(seed=4)
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))

    def reverse_weights(arrays, state):
        n = len(state["names"]["weights"])
        old = [arrays[f"weights/{i}"] for i in range(n)]
        for i in range(n):
            arrays[f"weights/{i}"] = old[n - 1 - i]
        state["names"]["weights"].reverse()

    _rewrite(path, reverse_weights)
    fresh, fresh_optimizer = built(seed=5)
    checkpoint.restore(checkpoint.read(path), fresh, fresh_optimizer)
    for a, b in zip(values(net.variables), values(fresh.variables)):
        np.testing.assert_array_equal(a, b)


def test_same_shapes_under_other_names_are_refused(tmp_path):
    net, optimizer = built()
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))

    def rename(arrays, state):  # rnn_0 and rnn_1 have equal shapes: by order they would load
        state["names"]["weights"] = [n.replace("rnn_1/", "rnn_9/")
                                     for n in state["names"]["weights"]]

    _rewrite(path, rename)
    fresh, fresh_optimizer = built()
    before = values(fresh.variables)
    with pytest.raises(SeqmodelsError, match="do not match this model's variables by name") as e:
        checkpoint.restore(checkpoint.read(path), fresh, fresh_optimizer)
    assert "rnn_1/kernel" in str(e.value) and "rnn_9/kernel" in str(e.value)
    assert "\n" not in str(e.value)
    for a, b in zip(before, values(fresh.variables)):  # nothing was assigned
        np.testing.assert_array_equal(a, b)


def test_another_model_is_refused_with_one_line(tmp_path):
    net, optimizer = built(layers=1)
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))
    with pytest.raises(SeqmodelsError, match="not in the checkpoint"):
        checkpoint.restore(checkpoint.read(path), *built(layers=2))
    wide, wide_optimizer = built(layers=1, units=16)
    with pytest.raises(SeqmodelsError, match=r"rnn_0/kernel has shape \(4, 24\)"):
        checkpoint.restore(checkpoint.read(path), wide, wide_optimizer)


def test_names_that_do_not_fit_the_arrays_are_damage(tmp_path):
    net, optimizer = built()
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))
    _rewrite(path, lambda arrays, state: state["names"]["weights"].pop())
    with pytest.raises(SeqmodelsError, match="damaged checkpoint"):
        checkpoint.read(path)


def test_a_version_1_checkpoint_restores_by_position(tmp_path):
    net, optimizer = built(seed=6)
    path = checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=3))

    def as_version_1(arrays, state):
        state["checkpoint_version"] = 1
        del state["names"]

    _rewrite(path, as_version_1)
    fresh, fresh_optimizer = built(seed=7)
    progress = checkpoint.restore(checkpoint.read(path), fresh, fresh_optimizer)
    assert progress.global_step == 3
    for a, b in zip(values(net.variables), values(fresh.variables)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SeqmodelsError, match="do not fit this model"):
        checkpoint.restore(checkpoint.read(path), *built(layers=1))


def test_writing_keeps_the_previous_checkpoint(tmp_path):
    net, optimizer = built()
    checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=17))
    checkpoint.write(RunDir(tmp_path), net, optimizer, Progress(global_step=18))
    folder = RunDir(tmp_path).checkpoints
    assert sorted(p.name for p in folder.iterdir()) == [RunDir.LATEST, RunDir.PREVIOUS]
    assert checkpoint.read(folder / RunDir.PREVIOUS).progress["global_step"] == 17
    assert checkpoint.load_latest(RunDir(tmp_path)).progress["global_step"] == 18
