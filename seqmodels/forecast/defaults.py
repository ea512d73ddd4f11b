"""The forecaster's own defaults (the tutorial's model), apart from the language model's."""

from __future__ import annotations

from seqmodels.models.config import ModelConfig
from seqmodels.training.config import TrainConfig


def default_model() -> ModelConfig:
    """1 x 50 LSTM."""
    return ModelConfig(layers=1, units=50)


def default_train_config() -> TrainConfig:
    """20 epochs of batches of 32 windows."""
    return TrainConfig(epochs=20, batch_size=32)
