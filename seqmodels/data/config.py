"""How text becomes token ids: the settings stored in every run (no TensorFlow)."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

from seqmodels import settings
from seqmodels.data.tokenizers import LEVELS, TOKENIZER_CHOICES
from seqmodels.data.tokenizers import NORMAL_FORMS as NORMALIZATIONS
from seqmodels.errors import SeqmodelsError

__all__ = ["DECODE_ERRORS", "DEFAULT_SPLITS", "LEVELS", "NORMALIZATIONS", "TOKENIZER_CHOICES",
           "DataConfig", "check_fractions"]
DEFAULT_SPLITS = (0.90, 0.05, 0.05)
DECODE_ERRORS = ("strict", "replace", "ignore")


def check_fractions(fractions: tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """Validate train/val/test fractions: three non-negative numbers summing to 1, train > 0."""
    if len(fractions) != 3:
        raise SeqmodelsError("splits need three fractions: train,val,test (e.g. 0.9,0.05,0.05)")
    train, val, test = (float(f) for f in fractions)
    if not all(math.isfinite(f) for f in (train, val, test)):
        raise SeqmodelsError(f"split fractions {train},{val},{test} must be finite numbers")
    if min(train, val, test) < 0 or train <= 0 or abs(train + val + test - 1.0) > 1e-6:
        raise SeqmodelsError(
            f"split fractions {train},{val},{test} must be non-negative, train > 0, and sum to 1"
        )
    return train, val, test


# codecs whose incremental decoder decodes each block on its own, so a file read a block at a
# time would be refused or decoded wrongly
BLOCKWISE_UNDECODABLE = {
    "punycode": "punycode encodes single domain-name labels and cannot be decoded a block at a "
                "time; convert the file to UTF-8 first",
}


@dataclass
class DataConfig:
    """Everything that decides how text becomes token ids (stored in every run)."""

    corpus: list[str] = field(default_factory=list)  # files, dirs, globs or "kjv"; empty: kjv
    # texts in memory: written once to files named by their content (prepare.write_texts), which
    # join the corpus, so a run stores paths as for any file
    texts: list[str] = field(default_factory=list)
    level: str = "char"  # a kind of token (tokenizers.KINDS): char, word, byte, subword
    tokenizer: str | None = None  # word level: nltk (default), treebank, wordpunct, whitespace
    lowercase: bool = False
    normalize: str = "NFC"
    encoding: str = "utf-8"
    errors: str = "strict"
    stopwords: str | None = None  # path of a file with one word a line
    min_freq: int = 1
    max_vocab: int | None = None  # including <pad> and <unk>
    splits: tuple[float, float, float] = DEFAULT_SPLITS

    def __post_init__(self) -> None:
        """One path given alone (a string walked letter by letter from '/') is a list of one;
        paths become strings."""
        if isinstance(self.corpus, (str, os.PathLike)):
            self.corpus = [self.corpus]
        if isinstance(self.texts, str):  # one text, not one text per letter
            self.texts = [self.texts]
        if isinstance(self.corpus, (list, tuple)):
            self.corpus = [os.fspath(c) if isinstance(c, os.PathLike) else c
                           for c in self.corpus]

    def in_run(self, run: str | os.PathLike | None) -> DataConfig:
        """The settings a run stored, its corpus paths that are relative (files the run holds)
        resolved against the run's folder."""
        if run is None or not self.corpus:
            return self
        from dataclasses import replace

        from seqmodels.data.corpus import BUILTIN_CORPORA

        corpus = [spec if os.path.isabs(spec) or spec in BUILTIN_CORPORA
                  else os.path.join(os.fspath(run), spec) for spec in self.corpus]
        return replace(self, corpus=corpus)

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        d = asdict(self)
        d["splits"] = list(self.splits)
        return d

    @classmethod
    def from_json(cls, d: dict) -> DataConfig:
        """Rebuild from to_json()'s dict; unknown keys are refused."""
        config = settings.from_json(cls, d, "data")
        config.splits = check_fractions(tuple(config.splits))
        for name, choices in (("level", LEVELS), ("normalize", NORMALIZATIONS),
                              ("errors", DECODE_ERRORS)):
            if getattr(config, name) not in choices:
                raise SeqmodelsError(f"the data setting {name} must be one of "
                                     f"{', '.join(choices)}, not {getattr(config, name)!r}")
        if config.min_freq < 1 or (config.max_vocab is not None and config.max_vocab < 3):
            raise SeqmodelsError("the data settings min_freq must be at least 1 and max_vocab "
                                 "at least 3")
        return config
