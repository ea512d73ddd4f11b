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
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
MAX_LAYERS = 100  # Keras builds layers one by one: a million would take hours, not fail
BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two slots


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
        if self.layers > MAX_LAYERS:
            raise SeqmodelsError(f"layers must be at most {MAX_LAYERS}, not {self.layers}")
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

    def check_size(self, inputs: int, outputs: int) -> None:
        """Refuse a model whose training state would not fit in this machine's memory."""
        params = self.parameter_estimate(inputs, outputs)
        need = params * BYTES_PER_PARAMETER
        memory = settings.physical_memory()
        if need > memory:
            count, size = settings.large_number(params), settings.large_number(need / 2**30)
            raise SeqmodelsError(
                f"the model would have {count} parameters, {size} GiB to train, more than this "
                f"machine's {memory / 2**30:,.0f} GiB of memory; use fewer --units, --layers or "
                f"--embedding-dim")

    def parameter_estimate(self, inputs: int, outputs: int) -> int:
        """Parameters of the model: inputs > 0 is a vocabulary, inputs < 0 that many features."""
        gates = GATES.get(self.cell, 4)
        embedded = inputs > 0
        params = inputs * self.embedding_dim if embedded else 0
        width = self.embedding_dim if embedded else -inputs
        params += gates * self.units * (width + self.units + 2)  # kernel, recurrent kernel, biases
        params += (self.layers - 1) * gates * self.units * (2 * self.units + 2)
        return params + (self.units + 1) * outputs

    def to_json(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate a config from to_json's dict; unknown keys are refused."""
        return settings.from_json(cls, data, "model").validate()
