"""The fused CPU recurrence computes what keras.layers.LSTM/GRU compute: outputs, gradients,
and a whole training run; it applies only where it can, and the saved model stays Keras'."""

import numpy as np
import pytest

from seqmodels.backend import import_keras, import_tf
from seqmodels.data.config import DataConfig
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.task import cross_entropy, language_steps
from seqmodels.lm.train import train
from seqmodels.models import fused
from seqmodels.models.builders import build_language_model, build_regression_model
from seqmodels.models.config import ModelConfig
from seqmodels.training import checkpoint
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.rundir import RunDir
from seqmodels.training.step import make_optimizer

tf, keras = import_tf(), import_keras()
pytestmark = pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")),
                                reason="the fused path is for CPUs; a GPU keeps cuDNN")


def perturbed_model(cell: str, **kw):
    """A 2-layer model whose weights and biases are far from their initial values."""
    keras.utils.set_random_seed(1)
    net = build_language_model(30, ModelConfig(cell=cell, layers=2, units=12, embedding_dim=6,
                                               **kw))
    for v in net.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, stddev=0.4))
    return net


def outputs_and_grads(net, x, y, fast: bool):
    with tf.GradientTape() as tape:
        out = fused.logits(net, x, training=True) if fast else net(x, training=True)
        loss = tf.reduce_mean(cross_entropy(y, out)) + tf.add_n(net.losses or [0.0])
    grads = tape.gradient(loss, net.trainable_variables)
    return out.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("extra", [{}, {"l2": 0.01}])
def test_outputs_and_gradients_equal_keras_layers(cell, extra):
    net = perturbed_model(cell, **extra)
    x = tf.constant(np.random.default_rng(0).integers(0, 30, (5, 9)), tf.int32)
    y = tf.roll(x, -1, 1)
    out_k, grads_k = outputs_and_grads(net, x, y, fast=False)
    out_f, grads_f = outputs_and_grads(net, x, y, fast=True)
    # measured: outputs within 3.6e-7 (LSTM's tanh taken as 2 sigmoid(2a) - 1), gradients 2e-8
    assert np.abs(out_k - out_f).max() < 2e-6
    for gk, gf in zip(grads_k, grads_f, strict=True):
        assert np.abs(gk - gf).max() < 1e-6 + 1e-5 * np.abs(gk).max()
    forward_only = fused.logits(net, x, training=False).numpy()
    assert np.abs(forward_only - out_f).max() < 1e-6


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_compiled_with_xla_it_still_equals_keras_layers(cell):
    net = perturbed_model(cell)
    x = tf.constant(np.random.default_rng(2).integers(0, 30, (4, 11)), tf.int32)
    y = tf.roll(x, -1, 1)
    out_k, grads_k = outputs_and_grads(net, x, y, fast=False)
    xla = tf.function(lambda x, y: outputs_and_grads_graph(net, x, y), jit_compile=True)
    out_f, grads_f = xla(x, y)
    assert np.abs(out_k - out_f.numpy()).max() < 2e-6
    for gk, gf in zip(grads_k, grads_f, strict=True):
        assert np.abs(gk - gf.numpy()).max() < 1e-6 + 1e-5 * np.abs(gk).max()


def outputs_and_grads_graph(net, x, y):
    with tf.GradientTape() as tape:
        out = fused.logits(net, x, training=True)
        loss = tf.reduce_mean(cross_entropy(y, out))
    return out, [tf.convert_to_tensor(g) for g in tape.gradient(loss, net.trainable_variables)]


def test_masked_or_low_precision_models_keep_the_keras_layers():
    ids = keras.Input((None,), dtype="int32")
    masked = keras.layers.Embedding(20, 4, mask_zero=True)(ids)
    masked = keras.Model(ids, keras.layers.Dense(20)(keras.layers.LSTM(8, return_sequences=True)(
        masked)))
    assert not fused.supported(masked)
    half = keras.layers.GRU(8, return_sequences=True, dtype="float16")
    x = keras.layers.Embedding(20, 4)(ids)
    assert not fused.supported(keras.Model(ids, keras.layers.Dense(20)(half(x))))


def test_only_models_it_reproduces_take_the_fused_path():
    assert fused.supported(build_language_model(20, ModelConfig(cell="lstm", layers=1, units=8)))
    assert fused.supported(build_language_model(20, ModelConfig(cell="gru", dropout=0.2)))
    for config in (ModelConfig(cell="rnn"), ModelConfig(recurrent_dropout=0.1)):
        assert not fused.supported(build_language_model(20, config))
    stateful = build_language_model(20, ModelConfig(units=8), batch_size=2, stateful=True)
    assert not fused.supported(stateful)
    assert not fused.supported(build_regression_model(2, 1, ModelConfig(units=8)))


def test_xla_only_where_it_pays_off():
    small = build_language_model(20, ModelConfig(units=32))
    wide = build_language_model(20, ModelConfig(units=64, layers=1))
    assert not fused.xla_pays_off(small) and fused.xla_pays_off(wide)
    optimizer = make_optimizer(TrainConfig())
    train_step, _ = language_steps(wide, optimizer, TrainConfig())
    assert train_step._jit_compile is True
    train_step, _ = language_steps(wide, optimizer, TrainConfig(xla=False))
    assert not train_step._jit_compile


def weights(run_dir):
    return checkpoint.read(RunDir(run_dir).latest_checkpoint()).arrays["weights"]


@pytest.mark.parametrize("cell, units", [("lstm", 24), ("gru", 24), ("lstm", 64)])
def test_training_reaches_the_same_loss_as_with_keras_layers(tmp_path, cyclic, cell, units,
                                                             monkeypatch):
    """Same seed, same batches: the fused run and the keras-layers run stay together.

    At 64 units the fused step is compiled with XLA, so the keras-layers run is too: XLA
    draws other dropout masks from the same seeds than TensorFlow's kernels.
    """
    runs = {}
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(fused, "supported", lambda model: False)
        runs[fast] = train(
            DataConfig(corpus=[str(cyclic)]),
            ModelConfig(cell=cell, layers=2, units=units, embedding_dim=8, dropout=0.1),
            TrainConfig(epochs=2, batch_size=8, seed=0, steps_per_epoch=15, lr=0.01,
                        xla=units >= 64), WindowConfig(seq_len=16),
            out=tmp_path / str(fast), options=RunOptions(cache_dir=tmp_path / "cache"))
    fast, slow = runs[True].history, runs[False].history
    assert fast[-1]["val_loss"] < 0.8 * np.log(13)  # it learned (13 tokens: 12 chars, <unk>)
    for a, b in zip(fast, slow, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-3)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=2e-3)
    # the saved model is plain Keras: it reloads and predicts like the trained weights
    model = runs[True].model.network
    assert {type(layer).__name__ for layer in model.layers} >= {cell.upper()}
