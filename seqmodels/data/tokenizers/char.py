"""Characters (code points) as tokens."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from seqmodels.data.tokenizers.base import Tokenizer
from seqmodels.data.vocab import UNK, Vocabulary
from seqmodels.errors import SeqmodelsError


class CharTokenizer(Tokenizer):
    """Every character is a token; text is the tokens joined."""

    level = "char"
    unit, unit_short = "character", "char"
    token_by_token = True
    graph_split = "chars"
    how_to_apply = "each character (NFC-normalised, lowercased if set) is a token"

    def tokenize_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """The characters of each line."""
        for line in lines:
            yield list(line)

    def tokenize(self, text: str) -> list[str]:
        """The characters of a text."""
        return list(text)

    def detokenize(self, tokens: Iterable[str]) -> str:
        """The tokens joined."""
        return "".join(tokens)

    def chunk_ids(self, text: str) -> tuple[np.ndarray, list[str] | None]:
        """A character's code point is its provisional id."""
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4"), None

    def check_vocabulary(self, vocabulary: Vocabulary, where: str) -> None:
        """Every token but <pad> and <unk> is one character."""
        odd = next((t for t in vocabulary.tokens[2:] if len(t) != 1), None)
        if odd is not None:
            raise SeqmodelsError(f"{where}: the token {odd!r} is not one character, in the "
                                 f"vocabulary of a character-level run")

    def encode_prompt(self, text: str, skip_unknown: bool = False) -> tuple[list[int], list[str]]:
        """Characters outside the vocabulary are refused, or dropped with skip_unknown."""
        tokens = self._prompt_tokens(text)
        unknown = [t for t in tokens if t not in self.vocabulary or t == UNK]
        warnings = []
        if unknown:
            if not skip_unknown:
                shown = ", ".join(repr(c) for c in dict.fromkeys(unknown))
                raise SeqmodelsError(f"the prompt has characters outside the vocabulary: "
                                     f"{shown} (set `skip_unknown` to drop them)")
            tokens = [t for t in tokens if t in self.vocabulary and t != UNK]
            warnings.append(f"dropped {len(unknown)} unknown character(s) from the prompt")
        return self._ids(tokens, bool(unknown)), warnings

    def missing_characters(self, text: str) -> list[str]:
        """The characters of text outside the vocabulary."""
        return sorted({c for c in text if c not in self.vocabulary})

    def continuation(self, prompt: str, text: str) -> str:
        """Characters follow their prompt as they are."""
        return text

    def first_token(self, line: str) -> str:
        """The line's first character."""
        return line[0]
