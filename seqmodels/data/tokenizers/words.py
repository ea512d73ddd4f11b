"""Words as tokens, split by one of NLTK's tokenizers (none needs downloaded data)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from seqmodels.data.tokenizers.base import NEWLINE, Tokenizer
from seqmodels.errors import SeqmodelsError


def _nltk_tokenizer(name: str):
    """The NLTK tokenizer object for a name."""
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


class WordTokenizer(Tokenizer):
    """Words and punctuation as NLTK splits them, a line at a time; the line break is a token of
    its own, so generated text keeps its lines; NLTK's Treebank detokenizer joins them back."""

    level = "word"
    choices = ("nltk", "treebank", "wordpunct", "whitespace")  # nltk: word_tokenize
    how_to_apply = ("NLTK's tokenizer named in `tokenizer.name`, a line at a time, the line "
                    "break a token (seqmodels.data.tokenizers.tokenizer_from_config)")

    def __init__(self, name: str | None = None, stopwords: Iterable[str] = (),
                 **settings: Any) -> None:
        name = name or self.choices[0]
        if name not in self.choices:
            raise SeqmodelsError(f"unknown `tokenizer` {name!r}; choose from "
                                 f"{', '.join(self.choices)}")
        self._name = name
        self.stopwords = frozenset(w.lower() for w in stopwords)
        self._split = _nltk_tokenizer(name)
        super().__init__(**settings)

    @classmethod
    def from_settings(cls, name: str | None = None, stopwords: Iterable[str] = (),
                      **settings: Any) -> WordTokenizer:
        """All the settings apply."""
        return cls(name, stopwords, **settings)

    @property
    def name(self) -> str:
        """The NLTK tokenizer used."""
        return self._name

    def to_config(self) -> dict[str, Any]:
        """The settings, the stopwords among them."""
        return {**super().to_config(), "name": self._name, "stopwords": sorted(self.stopwords)}

    def fingerprint(self) -> dict[str, Any]:
        """The settings (stopwords hashed) and NLTK's version."""
        import nltk

        config = self.to_config()
        config["stopwords"] = hashlib.sha256("\n".join(config["stopwords"]).encode()).hexdigest()
        return {**config, "nltk": nltk.__version__}

    def tokenize_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """Tokens of each line in turn, ending with the newline token where the line does."""
        for line in lines:
            body = line[:-1] if line.endswith(NEWLINE) else line
            try:
                tokens = self._split.tokenize(body)
            except TimeoutError:  # NLTK bounds each regex match in time (its ReDoS guard)
                raise SeqmodelsError(f"a line of {len(body):,} characters takes NLTK's word "
                                     f"tokenizer past its time limit; break the text into "
                                     f"shorter lines, or use `level` char or byte") from None
            if self.stopwords:
                tokens = [t for t in tokens if t.lower() not in self.stopwords]
            if line.endswith(NEWLINE):
                tokens.append(NEWLINE)
            yield tokens

    def detokenize(self, tokens: Iterable[str]) -> str:
        """NLTK's Treebank detokenizer, a line at a time."""
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

    def _prompt_tokens(self, text: str) -> list[str]:
        """A prompt of stopwords alone leaves nothing: refused."""
        tokens = super()._prompt_tokens(text)
        if text.strip() and not tokens and self.stopwords:
            raise SeqmodelsError("the prompt holds only the run's stopwords, which its tokenizer "
                                 "removes; give other words")
        return tokens
