"""Tokenizers, one class per kind of token, found by the DataConfig level that names them.

Adding a kind is a new module with a Tokenizer subclass, its test, and one line in KINDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqmodels.data.tokenizers.base import NEWLINE, NORMAL_FORMS, Tokenizer, normalise
from seqmodels.data.tokenizers.bytes import ByteTokenizer
from seqmodels.data.tokenizers.char import CharTokenizer
from seqmodels.data.tokenizers.subword import SubwordTokenizer
from seqmodels.data.tokenizers.words import WordTokenizer
from seqmodels.data.vocab import Vocabulary
from seqmodels.errors import SeqmodelsError
from seqmodels.files import read_regular

KINDS: dict[str, type[Tokenizer]] = {cls.level: cls for cls in (CharTokenizer, WordTokenizer,
                                                                 ByteTokenizer, SubwordTokenizer)}
LEVELS = tuple(KINDS)
TOKENIZER_CHOICES = tuple(name for kind in KINDS.values() for name in kind.choices)

__all__ = ["KINDS", "LEVELS", "NEWLINE", "NORMAL_FORMS", "TOKENIZER_CHOICES", "ByteTokenizer",
           "CharTokenizer", "SubwordTokenizer", "Tokenizer", "WordTokenizer", "make_tokenizer",
           "normalise", "read_stopwords", "tokenizer_from_config"]


def _kind(level: str) -> type[Tokenizer]:
    if level not in KINDS:
        raise SeqmodelsError(f"unknown `level` {level!r}; choose from {', '.join(LEVELS)}")
    return KINDS[level]


def make_tokenizer(config: Any, vocabulary: Vocabulary | None = None) -> Tokenizer:
    """The tokenizer a DataConfig describes (its stopwords file read), with a vocabulary if
    given."""
    kind = _kind(config.level)
    stopwords = read_stopwords(config.stopwords) if config.stopwords else ()
    return kind.from_settings(config.tokenizer, stopwords, normalize=config.normalize,
                              lowercase=config.lowercase, vocabulary=vocabulary)


def tokenizer_from_config(config: dict[str, Any], vocabulary: Vocabulary | None = None
                          ) -> Tokenizer:
    """A tokenizer rebuilt from its to_config()."""
    settings = dict(config)
    kind = _kind(settings.pop("level"))
    return kind.from_settings(settings.pop("name", None), settings.pop("stopwords", ()),
                              vocabulary=vocabulary, **settings)


MAX_STOPWORDS_BYTES = 64 * 2**20


def read_stopwords(path: str | Path) -> list[str]:
    """Words listed one a line in a UTF-8 file (blank lines and '#' comments skipped)."""
    try:
        text = read_regular(path, MAX_STOPWORDS_BYTES).decode("utf-8")
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"cannot read stopwords file {exc}") from None
    except UnicodeDecodeError:
        raise SeqmodelsError(f"stopwords file {path} is not UTF-8 text") from None
    words = [w.strip() for w in text.splitlines()]
    return [w for w in words if w and not w.startswith("#")]
