"""Fuzz the corpus -> tokenizer -> vocabulary -> windows path with random Unicode and settings.

Whatever the text and settings, the library either gives consistent ids and windows or raises
SeqmodelsError (a clean one-line error); any other exception is a bug.
"""

import re
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import corpus_text, prepare_corpus
from seqmodels.data.tokenizers import NORMAL_FORMS, WordTokenizer
from seqmodels.data.vocab import PAD, UNK, UNK_ID
from seqmodels.data.windows import num_windows, require_windows, window_dataset
from seqmodels.errors import SeqmodelsError

# Unicode text of every category (NUL, controls, combining marks, emoji, RTL, line and
# paragraph separators), plus words and line breaks so word tokenizers see real structure
text = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(
    ["the", "cat", "Don't", "3.5", "--", "\n", "\r\n", " ", "\u2028", "e\u0301", "ﬁ", "ß", "İ",
     "😀", "\u200d", "\ufeff", "\t"])), min_size=3, max_size=150).map("".join)


@st.composite
def splits(draw):
    """Mostly valid fractions; sometimes arbitrary ones (which must be refused cleanly)."""
    if draw(st.integers(0, 19)) == 7:  # not 0: hypothesis favours boundary values
        return tuple(draw(st.lists(st.floats(-1, 2), min_size=1, max_size=4)))
    train = draw(st.floats(0.3, 1.0))
    val = draw(st.floats(0.0, 1.0 - train))
    return (train, val, max(0.0, 1.0 - train - val))


@st.composite
def data_settings(draw):
    level = draw(st.sampled_from(["char", "word"]))
    tokenizer = draw(st.sampled_from([None, *WordTokenizer.choices])) if level == "word" else None
    return dict(
        level=level, tokenizer=tokenizer, lowercase=draw(st.booleans()),
        normalize=draw(st.sampled_from(NORMAL_FORMS)),
        errors=draw(st.sampled_from(["strict", "replace", "ignore"])),
        encoding=draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])),
        min_freq=draw(st.integers(1, 4)),
        max_vocab=draw(st.one_of(st.none(), st.integers(1, 40))),
        splits=draw(splits()),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(st.one_of(text, text, text, st.binary(max_size=200)), min_size=1,
                     max_size=3),
       data=data_settings(), seq_len=st.integers(1, 12),
       stride=st.one_of(st.none(), st.integers(1, 12)), batch_size=st.integers(1, 9),
       use_cache=st.booleans())
def test_corpus_to_windows_never_crashes(files, data, seq_len, stride, batch_size, use_cache):
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for i, content in enumerate(files):
            path = Path(tmp) / f"f{i}.txt"
            if isinstance(content, str):
                content = content.encode("utf-8", "surrogatepass")
            path.write_bytes(content)
            specs.append(str(path))
        config = DataConfig(corpus=specs, **data)
        try:
            prepared = prepare_corpus(config, cache_dir=Path(tmp) / "cache", use_cache=use_cache)
        except SeqmodelsError as exc:
            assert str(exc) and "\n" not in str(exc)
            event("refused: " + re.sub(r"\S*/\S*|\d\S*", "_", str(exc))[:50])
            return
        ids, vocab = np.asarray(prepared.ids), prepared.vocab
        assert vocab.tokens[:2] == [PAD, UNK] and len(set(vocab.tokens)) == len(vocab)
        assert len(ids) == prepared.stats["tokens"] > 0
        assert ids.min() >= UNK_ID and ids.max() < len(vocab)  # <pad> never appears in text
        if data["max_vocab"] is not None:
            assert len(vocab) <= max(data["max_vocab"], 2)
        parts = prepared.splits
        assert len(parts.train) + len(parts.val) + len(parts.test) == len(ids)
        if data["level"] == "char" and data["min_freq"] == 1 and data["max_vocab"] is None:
            # every training character is in the vocabulary: the ids spell the text back
            assert "".join(vocab.decode(parts.train)) == corpus_text(config, specs)[
                : len(parts.train)]
        try:
            count = require_windows(len(parts.train), seq_len, stride, "training split")
        except SeqmodelsError:
            assert num_windows(len(parts.train), seq_len, stride) == 0
            event("too short for a window")
            return
        assert count == num_windows(len(parts.train), seq_len, stride) >= 1
        x, y = next(iter(window_dataset(np.asarray(parts.train), seq_len, batch_size, stride)))
        x, y = x.numpy(), y.numpy()
        event(f"windows ({data['level']})")
        assert x.shape == y.shape == (min(batch_size, count), seq_len)
        step = stride or seq_len
        np.testing.assert_array_equal(x[0], parts.train[:seq_len])
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
        if len(x) > 1:
            np.testing.assert_array_equal(x[1], parts.train[step : step + seq_len])
