"""How a language model reads its text while training: windows, their stride, carried state,
and how much of the validation split to read (no TensorFlow)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from seqmodels import settings
from seqmodels.errors import SeqmodelsError


@dataclass
class WindowConfig:
    """Windows of the token stream that a language model trains on."""

    seq_len: int = 100  # tokens per window (the truncated BPTT length)
    stride: int | None = None  # between window starts (None: seq_len)
    stateful: bool = False  # carry the hidden state across consecutive windows
    eval_tokens: int | None = None  # validate on this many tokens of the split (None: all)

    def validate(self) -> WindowConfig:
        """Raise SeqmodelsError for settings that cannot work."""
        for name in ("seq_len", "stride", "eval_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise SeqmodelsError(f"`{name}` must be a whole number of at least 1")
        if self.stateful and self.stride is not None:
            raise SeqmodelsError("`stateful` reads consecutive windows; `stride` does not apply")
        if self.eval_tokens is not None and self.eval_tokens < self.seq_len:
            raise SeqmodelsError(f"`eval_tokens` {self.eval_tokens:,} is fewer than one window "
                                 f"of `seq_len` {self.seq_len:,}; validate on at least "
                                 f"{self.seq_len:,} tokens")
        return self

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowConfig:
        """Rebuild and validate from to_json()'s dict; unknown keys are refused."""
        return settings.from_json(cls, data, "windows").validate()
