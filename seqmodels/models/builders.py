"""Recurrent networks: Embedding -> N x {LSTM|GRU|SimpleRNN} -> Dense logits for language models,
N x recurrent -> Dense for forecasts; and the check that a loaded file is one of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqmodels.backend import import_keras
from seqmodels.errors import SeqmodelsError
from seqmodels.models.config import ModelConfig

keras = import_keras()  # TensorFlow first, so its start-up logs stay muted


CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


def _regularizer(config: ModelConfig) -> keras.regularizers.Regularizer | None:
    """A fresh L1L2 regulariser, or None when both strengths are 0."""
    if config.l1 == 0 and config.l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=config.l1, l2=config.l2)


def _recurrent_stack(
    x: Any, config: ModelConfig, last_sequences: bool = True, stateful: bool = False
) -> Any:
    """Apply config.layers recurrent layers "rnn_i", each followed by Dropout when dropout > 0."""
    kwargs: dict[str, Any] = dict(
        activation="tanh",  # the five settings below are Keras' cuDNN conditions
        recurrent_activation="sigmoid",
        use_bias=True,
        unroll=False,
        recurrent_dropout=config.recurrent_dropout,
    )
    if config.cell == "gru":
        kwargs["reset_after"] = True
    if config.cell == "rnn":
        del kwargs["recurrent_activation"]
    for i in range(config.layers):
        x = CELLS[config.cell](
            config.units,
            return_sequences=last_sequences or i < config.layers - 1,
            stateful=stateful,
            kernel_regularizer=_regularizer(config),
            recurrent_regularizer=_regularizer(config),
            name=f"rnn_{i}",
            **kwargs,
        )(x)  # (B, T, H), or (B, H) for the last layer when last_sequences is False
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    return x


def build_language_model(
    vocab_size: int, config: ModelConfig, batch_size: int | None = None, stateful: bool = False
) -> keras.Model:
    """Token ids (B, T) -> next-token logits (B, T, V); stateful needs a fixed batch_size."""
    config.validate()
    if vocab_size < 1:
        raise SeqmodelsError(f"the vocabulary size must be at least 1, not {vocab_size}")
    config.check_size(vocab_size, vocab_size)
    if stateful and not batch_size:
        raise SeqmodelsError("a stateful model needs a fixed batch size")
    ids = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="ids")  # (B, T)
    init = ("uniform" if config.embedding_init == "uniform"
            else keras.initializers.RandomNormal(0.0, 1.0))
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, embeddings_initializer=init,
                               name="embedding")(ids)  # (B, T, E)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    x = _recurrent_stack(x, config, last_sequences=True, stateful=stateful)  # (B, T, H)
    logits = keras.layers.Dense(vocab_size, name="logits")(x)  # (B, T, V)
    return keras.Model(ids, logits, name=f"{config.cell}_language_model")


def build_regression_model(
    n_features: int, horizon: int, config: ModelConfig, window: int | None = None
) -> keras.Model:
    """Float windows (B, window, F) -> the next `horizon` values (B, horizon)."""
    config.validate()
    if n_features < 1 or horizon < 1:
        raise SeqmodelsError("n_features and horizon must both be at least 1")
    config.check_size(-n_features, horizon)
    series = keras.Input(shape=(window, n_features), dtype="float32", name="series")  # (B, T, F)
    x = _recurrent_stack(series, config, last_sequences=False)  # (B, H)
    forecast = keras.layers.Dense(horizon, name="forecast")(x)  # (B, horizon)
    return keras.Model(series, forecast, name=f"{config.cell}_regression_model")


def check_model(model: keras.Model, where: str, inputs: str, outputs: int,
                config: ModelConfig | None = None) -> None:
    """Refuse a loaded model that seqmodels did not build: one input of token ids ("int") or
    series ("float"), plain layers only, recurrent layers rnn_0..rnn_{N-1} of the three cells,
    `outputs` values in the last axis of its one output, finite weights, and (given the run's
    config) the cell, layers and units the run says it has."""
    allowed = (keras.layers.InputLayer, keras.layers.Embedding, keras.layers.Dropout,
               keras.layers.Dense, *CELLS.values())
    odd = next((layer for layer in model.layers if type(layer) not in allowed), None)
    if odd is not None:
        raise SeqmodelsError(f"{where}: its layer {odd.name!r} is a {type(odd).__name__}, which "
                             f"a seqmodels model does not have; seqmodels uses the models it "
                             f"trains")
    names = sorted(layer.name for layer in model.layers if isinstance(layer, keras.layers.RNN))
    if not names or names != sorted(f"rnn_{i}" for i in range(len(names))):
        raise SeqmodelsError(f"{where}: its recurrent layers are {names or 'none'}, not "
                             f"rnn_0, rnn_1, ... as seqmodels names them; seqmodels uses the "
                             f"models it trains")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise SeqmodelsError(f"{where}: {len(model.inputs)} input(s) and {len(model.outputs)} "
                             f"output(s); a seqmodels model has one of each")
    dtype = str(model.inputs[0].dtype)
    if ("int" in dtype) != (inputs == "int"):
        raise SeqmodelsError(f"{where}: its input is {dtype}, not "
                             f"{'token ids' if inputs == 'int' else 'numbers'}")
    if model.outputs[0].shape[-1] != outputs:
        raise SeqmodelsError(f"{where}: the model predicts {model.outputs[0].shape[-1]} values "
                             f"a step, not {outputs}")
    layers = recurrent_layers(model)
    if config is not None:
        found = (cell_name(layers[0]), len(layers), layers[0].units)
        if any(cell_name(layer) != found[0] or layer.units != found[2] for layer in layers) \
                or found != (config.cell, config.layers, config.units):
            raise SeqmodelsError(f"{where}: the model is {found[1]} x {found[2]} {found[0]}, but "
                                 f"the run's settings say {config.layers} x {config.units} "
                                 f"{config.cell}; the two files come from different runs")
    bad = next((w for w in model.weights if not np.isfinite(np.asarray(w)).all()), None)
    if bad is not None:
        raise SeqmodelsError(f"{where}: its weights hold NaN or infinite values (in {bad.path}); "
                             f"a model that diverged has nothing to report")


def recurrent_layers(model: keras.Model) -> list[keras.layers.RNN]:
    """The recurrent layers "rnn_0".."rnn_{N-1}" of a network built here, in order."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    return sorted(layers, key=lambda layer: int(layer.name.rsplit("_", 1)[1]))


def cell_name(layer: keras.layers.RNN) -> str:
    """The config.cell name for a built recurrent layer."""
    return next(name for name, cls in CELLS.items() if type(layer) is cls)
