"""Tests for seqmodels.models.builders: cuDNN defaults, layers, regularisation, config."""

import json

import numpy as np
import pytest

from seqmodels.backend import import_tf
from seqmodels.errors import SeqmodelsError
from seqmodels.models import builders as models
from seqmodels.models.builders import (
    build_language_model,
    build_regression_model,
    recurrent_layers,
)
from seqmodels.models.config import ModelConfig

tf = import_tf()
import keras  # noqa: E402

V, B, T, H, E = 20, 3, 10, 16, 8
CELLS = ["lstm", "gru", "rnn"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


def tiny(cell: str = "lstm", **kwargs) -> ModelConfig:
    """A test-sized config."""
    return ModelConfig(cell=cell, **{"layers": 2, "units": H, "embedding_dim": E, **kwargs})


def randomise(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every trainable weight (biases included) non-zero random values."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        v.assign(rng.normal(0.0, 0.4, v.shape).astype("float32"))
    return model


def token_ids(batch: int = B, length: int = T, seed: int = 0) -> np.ndarray:
    """Random int32 token ids (B, T)."""
    return np.random.default_rng(seed).integers(0, V, (batch, length)).astype("int32")


@pytest.mark.parametrize("cell", CELLS)
def test_defaults_keep_cudnn_conditions(cell):
    model = build_language_model(V, ModelConfig(cell=cell, units=H, embedding_dim=E))
    layers = recurrent_layers(model)
    assert [layer.name for layer in layers] == ["rnn_0", "rnn_1"]
    for layer in layers:
        assert layer.activation.__name__ == "tanh"
        assert layer.recurrent_dropout == 0
        assert layer.unroll is False
        assert layer.use_bias is True
        assert layer.return_sequences is True
        if cell != "rnn":
            assert layer.recurrent_activation.__name__ == "sigmoid"
            assert layer.use_cudnn == "auto"
        if cell == "gru":
            assert layer.reset_after is True
    assert type(layers[0]) is models.CELLS[cell]


def test_layer_names_and_dropout_layers():
    model = build_language_model(V, tiny(dropout=0.2))
    names = [layer.name for layer in model.layers]
    assert names == [
        "ids", "embedding", "embedding_dropout", "rnn_0", "dropout_0", "rnn_1", "dropout_1",
        "logits",
    ]  # fmt: skip
    assert all(model.get_layer(n).rate == 0.2 for n in names if "dropout" in n)
    assert not any("dropout" in n for n in (x.name for x in build_language_model(V, tiny()).layers))


@pytest.mark.parametrize("cell", CELLS)
def test_outputs_are_logits_of_the_right_shape(cell):
    model = randomise(build_language_model(V, tiny(cell)))
    logits = model(token_ids(), training=False).numpy()  # (B, T, V)
    assert logits.shape == (B, T, V)
    assert model(token_ids(length=4), training=False).shape == (B, 4, V)  # T is not fixed
    assert (logits < 0).any()
    assert not np.allclose(logits.sum(-1), 1.0)
    probs = keras.ops.softmax(logits, axis=-1).numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_stateful_needs_a_batch_size():
    with pytest.raises(SeqmodelsError, match="batch size"):
        build_language_model(V, tiny(), stateful=True)


@pytest.mark.parametrize("l1, l2", [(0.0, 0.01), (0.003, 0.0), (0.003, 0.01)])
@pytest.mark.parametrize("cell", CELLS)
def test_regularisation_losses_cover_kernel_and_recurrent_kernel(cell, l1, l2):
    model = randomise(build_language_model(V, tiny(cell, l1=l1, l2=l2)))
    assert len(model.losses) == 2 * 2  # kernel + recurrent kernel, per layer; nothing else
    expected = 0.0
    for layer in recurrent_layers(model):
        for w in (layer.cell.kernel, layer.cell.recurrent_kernel):
            w = keras.ops.convert_to_numpy(w).astype("float64")
            expected += l1 * np.abs(w).sum() + l2 * np.square(w).sum()
    total = sum(float(loss) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)
    assert build_language_model(V, tiny(cell)).losses == []


@pytest.mark.parametrize("window", [None, 7])
@pytest.mark.parametrize("cell", CELLS)
def test_regression_model_shape(cell, window):
    model = build_regression_model(n_features=3, horizon=4, config=tiny(cell), window=window)
    x = np.random.default_rng(0).normal(size=(5, 7, 3)).astype("float32")  # (B, T, F)
    assert model(x, training=False).shape == (5, 4)
    layers = recurrent_layers(model)
    assert [layer.name for layer in layers] == ["rnn_0", "rnn_1"]
    assert [layer.return_sequences for layer in layers] == [True, False]
    assert model.get_layer("forecast").units == 4


def test_both_builders_share_the_stack_helper(monkeypatch):
    calls = []
    original = models._recurrent_stack

    def spy(x, config, **kwargs):
        calls.append(kwargs.get("last_sequences"))
        return original(x, config, **kwargs)

    monkeypatch.setattr(models, "_recurrent_stack", spy)
    build_language_model(V, tiny())
    build_regression_model(2, 1, tiny())
    assert calls == [True, False]


def test_config_json_round_trip():
    config = ModelConfig(cell="gru", layers=3, units=32, dropout=0.25, l1=1e-5, l2=1e-4)
    data = json.loads(json.dumps(config.to_json()))
    assert data["cell"] == "gru" and data["units"] == 32
    assert ModelConfig.from_json(data) == config
    assert ModelConfig.from_json(ModelConfig().to_json()) == ModelConfig()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cell": "transformer"}, "unknown cell"),
        ({"layers": 0}, "layers"),
        ({"layers": 2.5}, "layers"),
        ({"units": 0}, "units"),
        ({"embedding_dim": -1}, "embedding_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"recurrent_dropout": 1.5}, "recurrent_dropout"),
        ({"l1": -1e-3}, "l1"),
        ({"l2": -1.0}, "l2"),
    ],
)
def test_config_validation_errors(changes, message):
    with pytest.raises(SeqmodelsError, match=message):
        ModelConfig(**changes).validate()
    with pytest.raises(SeqmodelsError, match=message):
        ModelConfig.from_json({**ModelConfig().to_json(), **changes})
    with pytest.raises(SeqmodelsError, match=message):
        build_language_model(V, ModelConfig(**changes))


def test_config_rejects_unknown_keys():
    with pytest.raises(SeqmodelsError, match="unknown model setting.*colour"):
        ModelConfig.from_json({"cell": "lstm", "colour": "red"})
    with pytest.raises(SeqmodelsError, match="JSON object"):
        ModelConfig.from_json(["lstm"])


def test_embedding_initialisers():
    def embeddings(init):
        net = build_language_model(200, ModelConfig(embedding_dim=64, embedding_init=init))
        return np.asarray(net.get_layer("embedding").embeddings)

    keras_default = embeddings("uniform")
    assert np.abs(keras_default).max() <= 0.05
    normal = embeddings("normal")  # N(0, 1), as PyTorch's nn.Embedding starts
    assert 0.9 < normal.std() < 1.1 and abs(normal.mean()) < 0.05
    with pytest.raises(SeqmodelsError, match="unknown embedding initialiser"):
        ModelConfig(embedding_init="zeros").validate()
