"""The shape of a recurrent stack: settings stored in every run (no TensorFlow)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from seqmodels import settings
from seqmodels.errors import SeqmodelsError

CELL_NAMES = ("lstm", "gru", "rnn")  # rnn: SimpleRNN
EMBEDDING_INITS = ("uniform", "normal")
STATES_PER_LAYER = {"lstm": 2, "gru": 1, "rnn": 1}  # LSTM carries [h, c]; GRU and SimpleRNN [h]


@dataclass
class ModelConfig:
    """Shape and regularisation of the recurrent stack; defaults keep Keras' cuDNN path."""

    cell: str = "lstm"  # "lstm" | "gru" | "rnn" (SimpleRNN)
    layers: int = 2
    units: int = 256
    embedding_dim: int = 64
    embedding_init: str = "normal"  # N(0, 1), as PyTorch starts; "uniform": Keras' +-0.05
    dropout: float = 0.0  # Dropout layers after the embedding and after every recurrent layer
    recurrent_dropout: float = 0.0  # anything but 0 turns the cuDNN kernel off
    l1: float = 0.0  # on kernel and recurrent_kernel of every recurrent layer
    l2: float = 0.0

    def validate(self) -> ModelConfig:
        """Raise SeqmodelsError naming the first bad setting; return self when all are fine."""
        if self.cell not in CELL_NAMES:
            raise SeqmodelsError(
                f"unknown cell {self.cell!r}: choose one of {', '.join(sorted(CELL_NAMES))}"
            )
        if self.embedding_init not in EMBEDDING_INITS:
            raise SeqmodelsError(f"unknown embedding initialiser {self.embedding_init!r}: choose "
                                 f"one of {', '.join(EMBEDDING_INITS)}")
        for name in ("layers", "units", "embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SeqmodelsError(f"{name} must be a whole number of at least 1, not {value!r}")
        for name in ("dropout", "recurrent_dropout"):
            value = getattr(self, name)
            if not settings.is_number(value) or not 0.0 <= value < 1.0:
                raise SeqmodelsError(f"{name} must be at least 0 and below 1, not {value!r}")
        for name in ("l1", "l2"):
            value = getattr(self, name)
            if not settings.is_number(value) or value < 0.0:
                raise SeqmodelsError(f"{name} must be a number of at least 0, not {value!r}")
            settings.check_float32(name, value)
        return self

    def to_json(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate a config from to_json's dict; unknown keys are refused."""
        return settings.from_json(cls, data, "model").validate()

