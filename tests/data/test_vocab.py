"""Vocabulary: ordering, min-freq, max size, encode/decode, JSON with a format version."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmodels.data.tokenizers import CharTokenizer
from seqmodels.data.vocab import PAD, UNK, UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError


def test_order_is_count_descending_then_token():
    vocab = Vocabulary.from_tokens(list("banana cab"))
    # counts: a=4, b=2, n=2, ' '=1, c=1
    assert vocab.tokens == [PAD, UNK, "a", "b", "n", " ", "c"]


def test_min_freq_and_max_size():
    counts = {"a": 5, "b": 3, "c": 2, "d": 1}
    assert Vocabulary.from_counts(counts, min_freq=2).tokens == [PAD, UNK, "a", "b", "c"]
    assert Vocabulary.from_counts(counts, max_size=4).tokens == [PAD, UNK, "a", "b"]
    with pytest.raises(SeqmodelsError, match="min_freq must"):
        Vocabulary.from_counts(counts, min_freq=0)
    with pytest.raises(SeqmodelsError, match="max_vocab must"):
        Vocabulary.from_counts(counts, max_size=2)


def test_encode_maps_unknown_to_unk_and_decode_inverts():
    vocab = Vocabulary.from_tokens("abc")
    ids = vocab.encode("abz")
    assert ids.tolist() == [vocab.index["a"], vocab.index["b"], UNK_ID]
    assert vocab.decode(ids) == ["a", "b", UNK]
    with pytest.raises(SeqmodelsError, match="outside the vocabulary"):
        vocab.decode([99])


def test_id_dtype_is_smallest_that_fits():
    assert Vocabulary.from_tokens("ab").id_dtype() == np.uint8
    assert Vocabulary.from_counts({str(i): 1 for i in range(300)}).id_dtype() == np.uint16
    assert Vocabulary.from_counts({str(i): 1 for i in range(70_000)}).id_dtype() == np.uint32


def test_coverage():
    vocab = Vocabulary.from_counts({"a": 6, "b": 3, "c": 1}, min_freq=2)
    assert vocab.coverage({"a": 6, "b": 3, "c": 1}) == pytest.approx(0.9)


@given(st.text(min_size=1))
@settings(max_examples=200)
def test_char_encode_decode_round_trip(text):
    tok = CharTokenizer()
    vocab = Vocabulary.from_tokens(tok.tokenize(text))
    ids = vocab.encode(tok.tokenize(text))
    assert UNK_ID not in ids.tolist() or text.count(UNK) > 0
    assert tok.detokenize(vocab.decode(ids)) == text


def test_json_round_trip(tmp_path):
    vocab = Vocabulary.from_tokens("hello\nworld ü")
    path = tmp_path / "vocab.json"
    vocab.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "seqmodels.vocab" and data["version"] == 1
    assert Vocabulary.load(path) == vocab
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "seqmodels.vocab", "version": 99, "tokens": []}', "newer than"),
        ('{"format": "other"}', "not a seqmodels vocabulary"),
        ('{"format": "seqmodels.vocab", "version": 1, "tokens": ["a"]}', "<pad> and <unk>"),
        ('{"format": "seqmodels.vocab", "version": 1, "tokens": "abc"}', "list of strings"),
        ('{"format": "seqmodels.vocab", "vers', "damaged JSON"),
    ],
)
def test_damaged_or_future_files(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SeqmodelsError, match=message) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SeqmodelsError, match="file not found"):
        Vocabulary.load(tmp_path / "nope.json")
