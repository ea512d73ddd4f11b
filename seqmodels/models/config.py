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
# float32 weights, gradients, Adam's two slots, and the NumPy copy of all three a checkpoint
# writes; the embedding's gradient is also made dense once
BYTES_PER_PARAMETER = 28
FLOATS_PER_UNIT_STEP = {"lstm": 16, "gru": 13, "rnn": 7}  # gates, states, activations kept


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

    def check_size(self, inputs: int, outputs: int, batch_size: int = 0, steps: int = 0,
                   output_steps: int = 0, steps_option: str = "seq_len") -> None:
        """Refuse a model whose training would not fit in this machine's memory: its weights
        and optimizer state, and the activations of one batch of batch_size x steps (outputs
        computed at output_steps of them)."""
        params = self.parameter_estimate(inputs, outputs)
        need = params * BYTES_PER_PARAMETER
        if inputs > 0:
            need += 4 * inputs * self.embedding_dim  # the dense embedding gradient
        width = 2 * self.embedding_dim if inputs > 0 else -inputs  # embedded inputs, gradient
        width += FLOATS_PER_UNIT_STEP.get(self.cell, 16) * self.units * self.layers
        need += 4 * batch_size * (steps * width + 3 * output_steps * outputs)
        batch = (f" and a batch of {settings.large_number(batch_size)} x "
                 f"{settings.large_number(steps)} steps" if batch_size else "")
        settings.require_memory(
            need, f"training the model of {settings.large_number(params)} parameters{batch}",
            "use fewer `units`, `layers` or `embedding_dim`"
            + (f", or a smaller `batch_size` or `{steps_option}`" if batch_size else ""))

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
