"""Vocabulary: token counts to ids with reserved <pad>/<unk>, stored as versioned JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.files import check_format, read_json, write_json_atomic

PAD, UNK = "<pad>", "<unk>"


PAD_ID, UNK_ID = 0, 1


FORMAT = "seqmodels.vocab"
FORMAT_VERSION = 1


class Vocabulary:
    """An ordered token list: id i is tokens[i]; 0 is <pad>, 1 is <unk>. A subword vocabulary
    also holds the merges that make its tokens, in the order they apply."""

    def __init__(self, tokens: Sequence[str],
                 merges: Sequence[tuple[str, str]] | None = None) -> None:
        tokens = list(tokens)
        self.merges = None if merges is None else [(a, b) for a, b in merges]
        if tokens[:2] != [PAD, UNK]:
            raise SeqmodelsError("a vocabulary must start with <pad> and <unk>")
        if len(set(tokens)) != len(tokens):
            raise SeqmodelsError("a vocabulary lists a token twice")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, int], min_freq: int = 1, max_size: int | None = None
    ) -> Vocabulary:
        """Keep tokens seen >= min_freq times, most frequent first (ties by token), capped."""
        if min_freq < 1:
            raise SeqmodelsError("`min_freq` must be at least 1")
        if max_size is not None and max_size < 3:
            raise SeqmodelsError("`max_vocab` must be at least 3 (<pad>, <unk> and one token)")
        kept = [(t, c) for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK)]
        if not kept and counts:  # every text token would be <unk>: nothing to learn
            raise SeqmodelsError(f"no training token is seen `min_freq` {min_freq:,} times (the "
                                 f"most frequent, {max(counts.values()):,}), so the vocabulary "
                                 f"would be <pad> and <unk> alone; lower `min_freq`")
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([PAD, UNK] + [t for t, _ in kept])

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], **kwargs) -> Vocabulary:
        """Count tokens and build a vocabulary from the counts."""
        return cls.from_counts(Counter(tokens), **kwargs)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocabulary) and self.tokens == other.tokens
                and self.merges == other.merges)

    def id_dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id."""
        n = len(self)
        return np.dtype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32)

    def encode(self, tokens: Iterable[str], dtype: np.dtype | None = None) -> np.ndarray:
        """Ids of tokens; tokens outside the vocabulary become <unk>."""
        get = self.index.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), dtype=dtype or self.id_dtype())

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids."""
        n = len(self.tokens)
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise SeqmodelsError(f"id {i} is outside the vocabulary (size {n})")
            out.append(self.tokens[i])
        return out

    def coverage(self, counts: Mapping[str, int]) -> float:
        """Fraction of the counted tokens that the vocabulary holds (not mapped to <unk>)."""
        total = sum(counts.values())
        known = sum(c for t, c in counts.items() if t in self.index and t not in (PAD, UNK))
        return known / total if total else 1.0

    def to_json(self) -> dict:
        """A JSON-ready dict with the format name and version."""
        merges = {} if self.merges is None else {"merges": [list(m) for m in self.merges]}
        return {"format": FORMAT, "version": FORMAT_VERSION, "tokens": self.tokens, **merges}

    @classmethod
    def from_json(cls, obj: object, where: str = "vocabulary") -> Vocabulary:
        """Rebuild from to_json()'s dict, rejecting other formats and future versions."""
        tokens = check_format(obj, FORMAT, FORMAT_VERSION, where, "vocabulary").get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise SeqmodelsError(f"{where}: 'tokens' must be a list of strings")
        if len(tokens) < 3:  # from_counts never writes one: every text token would be <unk>
            raise SeqmodelsError(f"{where}: a vocabulary needs a token besides <pad> and <unk>")
        try:
            "".join(tokens).encode("utf-8")
        except UnicodeEncodeError as exc:  # a decoded corpus never holds a lone surrogate
            raise SeqmodelsError(f"{where}: a token holds {exc.object[exc.start]!r}, a lone "
                                 f"surrogate, which no decoded text has") from None
        merges = obj.get("merges")
        if merges is not None and not (
                isinstance(merges, list) and all(
                    isinstance(m, list) and len(m) == 2 and all(isinstance(t, str) for t in m)
                    for m in merges)):
            raise SeqmodelsError(f"{where}: 'merges' must be a list of pairs of strings")
        try:
            return cls(tokens, merges)
        except SeqmodelsError as exc:
            raise SeqmodelsError(f"{where}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (temporary file, then rename)."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by save()."""
        return cls.from_json(read_json(path), where=str(path))
