"""Byte-pair subwords of the UTF-8 bytes, learnt on the training split with Hugging Face
`tokenizers` (Rust, no download at run time)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from itertools import chain
from typing import Any

import numpy as np

from seqmodels.data.tokenizers.base import NEWLINE, Tokenizer
from seqmodels.data.tokenizers.bytes import BYTES
from seqmodels.data.vocab import PAD, UNK, Vocabulary
from seqmodels.errors import SeqmodelsError

DEFAULT_VOCAB_SIZE = 512  # ids, <pad> and <unk> included (see the README's subword recipe)
FIRST_MERGED = 2 + len(BYTES)  # ids below are <pad>, <unk> and the 256 bytes
MIN_FREQUENCY = 2  # a pair seen once in the training split is not merged
BATCH_LINES = 4096  # lines handed to `tokenizers` in one call


@cache
def _to_gpt2() -> dict[str, str]:
    """GPT-2's printable stand-in for each byte (what the byte-level pre-tokenizer works on),
    keyed by our token for that byte (chr of the byte value)."""
    shown = [*range(33, 127), *range(161, 173), *range(174, 256)]
    stand_in = dict(zip(shown, shown))
    extra = 256
    for b in range(256):
        if b not in stand_in:
            stand_in[b] = extra
            extra += 1
    return {chr(b): chr(c) for b, c in stand_in.items()}


@cache
def _from_gpt2() -> dict[str, str]:
    return {v: k for k, v in _to_gpt2().items()}


def _gpt2(token: str) -> str:
    table = _to_gpt2()
    return "".join(table[c] for c in token)


def _ours(token: str) -> str:
    table = _from_gpt2()
    return "".join(table[c] for c in token)


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


class SubwordTokenizer(Tokenizer):
    """Byte-level BPE as GPT-2 does it: a line's UTF-8 bytes are split into words by GPT-2's
    pattern (a word keeps the space before it), and merges learnt on the training split join
    frequent byte pairs within a word. All 256 bytes are in the vocabulary, so every text
    encodes without <unk> and decodes to itself; a line break is always a token of its own.
    A token is its bytes, each as the character of that value (as at byte level)."""

    level = "subword"
    trained = True  # the merges are learnt from the training text before it is encoded
    ranked = False  # bytes in byte order, then merged tokens in the order they were learnt
    how_to_apply = ("GPT-2's byte-level BPE: split the UTF-8 bytes of each line by GPT-2's "
                    "pattern, apply the merges in order within each piece; a line break is a "
                    "token of its own (seqmodels.data.tokenizers.tokenizer_from_config, or "
                    "Hugging Face tokenizers' BPE with these merges)")

    def __init__(self, **settings: Any) -> None:
        self._bpe = None
        super().__init__(**settings)

    def fingerprint(self) -> dict[str, Any]:
        """The settings, the version of `tokenizers`, which learns and applies the merges, and
        the size they grow to when `max_vocab` leaves it to the default."""
        import tokenizers

        return {**self.to_config(), "tokenizers": tokenizers.__version__,
                "default_vocab_size": DEFAULT_VOCAB_SIZE}

    # -------------------------------------------------------------- learning the merges

    def train(self, lines: Iterable[str], vocab_size: int | None = None) -> Vocabulary:
        """Learn merges on normalised training lines until the vocabulary holds vocab_size ids
        (<pad> and <unk> included) or no pair is seen twice; returns that vocabulary."""
        from tokenizers import Tokenizer as BPE
        from tokenizers import models, pre_tokenizers, trainers

        size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
        if size <= FIRST_MERGED:
            raise SeqmodelsError(f"`max_vocab` (the vocabulary size) must be above "
                                 f"{FIRST_MERGED} at `level` subword: <pad>, <unk> and the 256 "
                                 f"bytes come first")
        bpe = BPE(models.BPE())
        bpe.pre_tokenizer = _pre_tokenizer()
        trainer = trainers.BpeTrainer(vocab_size=size - 2, min_frequency=MIN_FREQUENCY,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False, special_tokens=[])
        bpe.train_from_iterator(lines, trainer)
        import json

        merges = json.loads(bpe.to_str())["model"]["merges"]
        pairs = [(_ours(a), _ours(b)) for a, b in merges]
        self.set_vocabulary(Vocabulary(_tokens(pairs), pairs))
        return self.vocabulary

    def fit(self, counts: Mapping[str, int], min_freq: int = 1,
            max_size: int | None = None) -> Vocabulary:
        """The vocabulary train() learnt (the counts of its tokens change nothing)."""
        if min_freq != 1:
            raise SeqmodelsError("`min_freq` does not apply to `level` subword: every byte is in "
                                 "its vocabulary, and `max_vocab` sets its size")
        return self.vocabulary

    def check_vocabulary(self, vocabulary: Vocabulary, where: str) -> None:
        """The 256 bytes in order, then one token per merge, each the join of its pair."""
        merges = vocabulary.merges
        if merges is None:
            raise SeqmodelsError(f"{where}: a subword vocabulary lists its merges")
        if (vocabulary.tokens != _tokens(merges)
                or any(a not in vocabulary or b not in vocabulary for a, b in merges)):
            raise SeqmodelsError(f"{where}: its subword tokens do not follow from its merges")

    def set_vocabulary(self, vocabulary: Vocabulary, where: str = "the vocabulary") -> None:
        """Use a vocabulary; the BPE model that applies its merges is built on first use."""
        super().set_vocabulary(vocabulary, where)
        self._bpe = None

    def _model(self):
        """The `tokenizers` BPE model of the vocabulary's merges, giving our ids."""
        if self._bpe is None:
            from tokenizers import Tokenizer as BPE
            from tokenizers import models

            vocab = self.vocabulary
            ids = {_gpt2(t): i for i, t in enumerate(vocab.tokens) if i >= 2}
            merges = [(_gpt2(a), _gpt2(b)) for a, b in vocab.merges]
            bpe = BPE(models.BPE(vocab=ids, merges=merges))
            bpe.pre_tokenizer = _pre_tokenizer()
            self._bpe = bpe
        return self._bpe

    def __getstate__(self) -> dict:
        """Pickled without the `tokenizers` model (rebuilt on first use)."""
        return {**self.__dict__, "_bpe": None}

    # -------------------------------------------------------------- text <-> tokens

    def _line_ids(self, lines: list[str]) -> list[list[int]]:
        encodings = self._model().encode_batch(lines, add_special_tokens=False)
        return [e.ids for e in encodings]

    def tokenize_lines(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """The subwords of each line (its line break the last, on its own)."""
        tokens = self.vocabulary.tokens
        return ([tokens[i] for i in ids] for ids in self._split(lines))

    def _split(self, lines: Iterable[str]) -> Iterator[list[int]]:
        """Ids of each line: its body, then the line break as its own token (lines encoded
        BATCH_LINES at a time)."""
        newline = self.vocabulary.index[NEWLINE]
        batch: list[str] = []
        for line in chain(lines, [None]):  # None: the end, which sends the last batch
            if line is not None:
                batch.append(line)
            if batch and (line is None or len(batch) == BATCH_LINES):
                bodies = [b[:-1] if b.endswith(NEWLINE) else b for b in batch]
                yield from (ids + [newline] if b.endswith(NEWLINE) else ids
                            for b, ids in zip(batch, self._line_ids(bodies)))
                batch = []

    def detokenize(self, tokens: Iterable[str]) -> str:
        """The tokens' bytes decoded (U+FFFD where they are not UTF-8)."""
        return "".join(tokens).encode("latin-1").decode("utf-8", "replace")

    def chunk_ids(self, text: str) -> tuple[np.ndarray, list[str] | None]:
        """The vocabulary's ids themselves, with the whole vocabulary as the distinct tokens."""
        ids = [i for line_ids in self._split(text.splitlines(keepends=True)) for i in line_ids]
        return np.asarray(ids, dtype="<u4"), list(self.vocabulary.tokens)

    # -------------------------------------------------------------- prompts and samples

    def continuation(self, prompt: str, text: str) -> str:
        """Subwords follow their prompt as they are."""
        return text

    def first_token(self, line: str) -> str:
        """The line's first subword."""
        return self.tokenize(line)[0]


def _tokens(merges: Iterable[tuple[str, str]]) -> list[str]:
    """<pad>, <unk>, the bytes, then the token each merge makes (once, in merge order)."""
    return [PAD, UNK, *BYTES, *dict.fromkeys(a + b for a, b in merges)]
