"""Character and word tokenizers (NLTK, no data download) and their detokenizers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from seqmodels.data.config import WORD_TOKENIZERS
from seqmodels.errors import SeqmodelsError
from seqmodels.files import read_regular

LEVELS = ("char", "word")
NEWLINE = "\n"


def _nltk_tokenizer(name: str):
    """The NLTK tokenizer object for a name; none of these needs downloaded data."""
    from nltk.tokenize import (
        NLTKWordTokenizer,
        TreebankWordTokenizer,
        WhitespaceTokenizer,
        WordPunctTokenizer,
    )

    return {
        "nltk": NLTKWordTokenizer,  # what word_tokenize(text, preserve_line=True) uses
        "treebank": TreebankWordTokenizer,
        "wordpunct": WordPunctTokenizer,
        "whitespace": WhitespaceTokenizer,
    }[name]()


class Tokenizer:
    """Splits text into tokens and joins tokens back into text for one level."""

    def __init__(
        self, level: str = "char", name: str | None = None, stopwords: Iterable[str] = ()
    ) -> None:
        if level not in LEVELS:
            raise SeqmodelsError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
        stopwords = frozenset(w.lower() for w in stopwords)
        if level == "char":
            if name not in (None, "char"):
                raise SeqmodelsError("--tokenizer applies to --level word only")
            if stopwords:
                raise SeqmodelsError("--stopwords applies to --level word only")
            name = "char"
        else:
            name = name or "nltk"
            if name not in WORD_TOKENIZERS:
                raise SeqmodelsError(
                    f"unknown tokenizer {name!r}; choose from {', '.join(WORD_TOKENIZERS)}"
                )
        self.level, self.name, self.stopwords = level, name, stopwords
        self._word = _nltk_tokenizer(name) if level == "word" else None

    def tokenize_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """Tokens of each line in turn; a word-level line ends with the newline token."""
        for line in lines:
            if self._word is None:
                yield list(line)
                continue
            body = line[:-1] if line.endswith(NEWLINE) else line
            tokens = self._word.tokenize(body)
            if self.stopwords:
                tokens = [t for t in tokens if t.lower() not in self.stopwords]
            if line.endswith(NEWLINE):
                tokens.append(NEWLINE)
            yield tokens

    def tokenize(self, text: str) -> list[str]:
        """All tokens of a text; line breaks survive as tokens at both levels."""
        if self._word is None:
            return list(text)
        out: list[str] = []
        for tokens in self.tokenize_lines(text.splitlines(keepends=True)):
            out.extend(tokens)
        return out

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Text for tokens: concatenation for chars, NLTK's Treebank detokenizer per line."""
        if self._word is None:
            return "".join(tokens)
        from nltk.tokenize.treebank import TreebankWordDetokenizer

        detok = TreebankWordDetokenizer()
        lines, current = [], []
        for token in tokens:
            if token == NEWLINE:
                lines.append(detok.detokenize(current))
                current = []
            else:
                current.append(token)
        lines.append(detok.detokenize(current))
        return NEWLINE.join(lines)


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
