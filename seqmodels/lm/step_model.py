"""One token at a time through a language model's own layers (for generation and export)."""

from __future__ import annotations

from typing import Any

from seqmodels.backend import import_keras

keras = import_keras()


class StepModel(keras.Model):
    """(ids (B,), flat states) -> (logits (B, V), new flat states).

    Calls the language model's embedding, recurrent cells and logits layer (no copy), so it always
    sees the current weights; dropout is left out: this is for inference only.
    """

    def __init__(self, embedding: Any, cells: list[Any], state_counts: list[int], head: Any,
                 **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", "step_model"), **kwargs)
        self.embedding, self.cells, self.head = embedding, list(cells), head
        self.state_counts = list(state_counts)

    def call(self, ids: Any, states: list[Any]) -> tuple[Any, list[Any]]:
        """Advance every layer one step from `states`; return logits and the new states."""
        x = self.embedding(ids)  # (B, E)
        new_states, start = [], 0
        for cell, n in zip(self.cells, self.state_counts, strict=True):
            x, layer_states = cell(x, list(states[start : start + n]), training=False)  # (B, H)
            new_states.extend(layer_states)
            start += n
        return self.head(x), new_states  # (B, V), flat list of (B, H)
