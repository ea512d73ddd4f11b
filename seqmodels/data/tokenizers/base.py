"""The Tokenizer interface: text to tokens to ids and back, for one kind of token."""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from seqmodels.data.vocab import PAD, UNK, UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError

NEWLINE = "\n"
NORMAL_FORMS = ("NFC", "NFKC", "NFD", "NFKD", "none")
MAX_PROMPT_CHARS = 100_000  # priming reads a prompt a token at a time (~25 us each on 2 cores)


def normalise(text: str, form: str = "NFC", lowercase: bool = False) -> str:
    """Apply Unicode normalisation (or none) and optional lowercasing."""
    if form not in NORMAL_FORMS:
        raise SeqmodelsError(f"unknown normal form {form!r}; choose from "
                             f"{', '.join(NORMAL_FORMS)}")
    if form != "none":
        text = unicodedata.normalize(form, text)
    return text.lower() if lowercase else text


class Tokenizer(ABC):
    """Splits normalised text into tokens and joins them back; maps tokens to ids through the
    vocabulary fitted on a training split. One subclass per kind, registered by its `level` in
    seqmodels.data.tokenizers; keyword settings round-trip through to_config()/from_config()."""

    level: ClassVar[str]  # the DataConfig level that names this kind
    unit: ClassVar[str] = "token"  # what one token is, in reports: "bits per token"
    unit_short: ClassVar[str] = "token"  # the same in figures: "nats/token"
    choices: ClassVar[tuple[str, ...]] = ()  # values of the tokenizer setting (first: default)
    # True when a token's text never depends on its neighbours, so generated text can be
    # shown a token at a time (a word detokenizer joins "do" "n't"; characters are just text)
    token_by_token: ClassVar[bool] = False
    # True when the tokenizer learns from the training text before encoding it (train())
    trained: ClassVar[bool] = False
    # True when its vocabulary ranks ids by frequency, most frequent first (what a sampled
    # softmax's log-uniform draws assume)
    ranked: ClassVar[bool] = True
    # how TensorFlow ops split a text into its tokens ("chars": code points, "bytes"), or None
    graph_split: ClassVar[str | None] = None
    how_to_apply: ClassVar[str] = ""  # in words, for a server that has no seqmodels (exports)

    def __init__(self, normalize: str = "NFC", lowercase: bool = False,
                 vocabulary: Vocabulary | None = None) -> None:
        normalise("", normalize)  # an unknown form fails here, before any work
        self.normalize, self.lowercase = normalize, lowercase
        self._vocabulary = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -------------------------------------------------------------- settings

    @classmethod
    def from_settings(cls, name: str | None = None, stopwords: Iterable[str] = (),
                      **settings: Any) -> Tokenizer:
        """This kind from a DataConfig's settings; the word-level ones (`tokenizer`,
        `stopwords`) are refused unless a kind that takes them overrides this."""
        if name not in (None, cls.level):
            raise SeqmodelsError("`tokenizer` applies to `level` word only")
        if list(stopwords):
            raise SeqmodelsError("`stopwords` applies to `level` word only")
        return cls(**settings)

    @property
    def name(self) -> str:
        """The tokenizer setting's value this kind was built with (its level when it has none)."""
        return self.level

    def to_config(self) -> dict[str, Any]:
        """The settings that rebuild this tokenizer (without its vocabulary), as JSON."""
        return {"level": self.level, "normalize": self.normalize, "lowercase": self.lowercase}

    def fingerprint(self) -> dict[str, Any]:
        """What decides the ids of a text: the settings and the versions of any library that
        splits it (part of the cache key of an encoded corpus)."""
        return self.to_config()

    # -------------------------------------------------------------- text <-> tokens

    def normalise(self, text: str) -> str:
        """The text as the corpus was read: Unicode normal form, lowercased if set."""
        return normalise(text, self.normalize, self.lowercase)

    @abstractmethod
    def tokenize_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """Tokens of each normalised line in turn (a line's break is kept as a token)."""

    def tokenize(self, text: str) -> list[str]:
        """All tokens of a normalised text; line breaks survive as tokens."""
        return [t for line in self.tokenize_lines(text.splitlines(keepends=True)) for t in line]

    @abstractmethod
    def detokenize(self, tokens: Iterable[str]) -> str:
        """Text for tokens."""

    def chunk_ids(self, text: str) -> tuple[np.ndarray, list[str] | None]:
        """A chunk's provisional ids (uint32) for the streaming preparation: numbers into the
        distinct tokens returned, in first-seen order, or code points when that list is None."""
        local: dict[str, int] = {}
        add = local.setdefault
        ids = np.fromiter((add(t, len(local)) for line in self.tokenize_lines(
            text.splitlines(keepends=True)) for t in line), dtype=np.dtype("<u4"))
        return ids, list(local)

    # -------------------------------------------------------------- tokens <-> ids

    @property
    def vocabulary(self) -> Vocabulary:
        """The ids of the tokens (fitted on a training split)."""
        if self._vocabulary is None:
            how = "train() it on" if self.trained else "fit() it on the token counts of"
            raise SeqmodelsError(f"this tokenizer has no vocabulary yet; {how} a training "
                                 f"split first (prepare_corpus does)")
        return self._vocabulary

    def set_vocabulary(self, vocabulary: Vocabulary, where: str = "the vocabulary") -> None:
        """Use a vocabulary (read from where), refused if this kind could not have made it."""
        self.check_vocabulary(vocabulary, where)
        self._vocabulary = vocabulary

    def train(self, lines: Iterable[str], vocab_size: int | None = None) -> Vocabulary:
        """Learn from normalised training lines (kinds with `trained` set); returns the
        vocabulary learnt."""
        raise SeqmodelsError(f"a {self.level}-level tokenizer learns nothing from text; fit "
                             f"its vocabulary on token counts")

    def fit(self, counts: Mapping[str, int], min_freq: int = 1,
            max_size: int | None = None) -> Vocabulary:
        """Build the vocabulary from a training split's token counts; returns it."""
        self.set_vocabulary(Vocabulary.from_counts(counts, min_freq, max_size))
        return self.vocabulary

    def check_vocabulary(self, vocabulary: Vocabulary, where: str) -> None:  # noqa: B027
        """Refuse a vocabulary this kind could not have made (say, a word in a character one);
        any vocabulary will do unless a kind says otherwise."""

    def encode(self, text: str) -> np.ndarray:
        """Ids of a text, normalised as the corpus was; unknown tokens become <unk>."""
        return self.vocabulary.encode(self.tokenize(self.normalise(text)))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids."""
        return self.detokenize(self.vocabulary.decode(ids))

    # -------------------------------------------------------------- prompts and samples

    def encode_prompt(self, text: str, skip_unknown: bool = False) -> tuple[list[int], list[str]]:
        """A prompt's ids and what to warn about; tokens outside the vocabulary become <unk>
        (skip_unknown applies to kinds that refuse them instead)."""
        tokens = self._prompt_tokens(text)
        unknown = [t for t in tokens if t not in self.vocabulary or t == UNK]
        warnings = []
        if unknown:
            shown = ", ".join(repr(w) for w in dict.fromkeys(unknown))
            warnings.append(f"prompt words outside the vocabulary become <unk>: {shown}")
        return self._ids(tokens, bool(unknown)), warnings

    def _prompt_tokens(self, text: str) -> list[str]:
        """A prompt's tokens, normalised as the corpus was; one that is too long is refused."""
        if len(text) > MAX_PROMPT_CHARS:
            raise SeqmodelsError(f"the prompt has {len(text):,} characters; at most "
                                 f"{MAX_PROMPT_CHARS:,} are supported")
        return self.tokenize(self.normalise(text))

    def _ids(self, tokens: list[str], dropped: bool = False) -> list[int]:
        """Ids of a prompt's tokens; an empty prompt is refused."""
        ids = [self.vocabulary.index.get(t, UNK_ID) for t in tokens]
        if not ids:
            raise SeqmodelsError("the prompt is empty" + (" after dropping unknown characters"
                                                          if dropped else ""))
        return ids

    def missing_characters(self, text: str) -> list[str]:
        """Characters of text that no output of this tokenizer can hold (none it can tell)."""
        return []

    def continuation(self, prompt: str, text: str) -> str:
        """Generated text as it follows its prompt: with the space a word needs after a word."""
        if not prompt or not text or prompt[-1].isspace() or text[0].isspace():
            return text
        return text if text[0] in ".,;:!?)]}'\"" else " " + text

    def first_token(self, line: str) -> str:
        """The first token of a line of text (a default prompt)."""
        return line.split()[0]

    def default_prompt(self, lines: list[str] | None = None,
                       rng: np.random.Generator | None = None) -> str:
        """A newline if the vocabulary has one, else the first token of a random line (lines:
        from the training text), else the vocabulary's first token."""
        vocab = self.vocabulary
        if NEWLINE in vocab:
            return NEWLINE
        rng = rng or np.random.default_rng()
        candidates = [line for line in (lines or []) if line.strip()]
        if candidates:
            first = self.first_token(candidates[int(rng.integers(len(candidates)))].lstrip())
            if first in vocab and first not in (PAD, UNK):  # the text may hold "<unk>" itself
                return first
        return vocab.tokens[2] if len(vocab) > 2 else UNK
