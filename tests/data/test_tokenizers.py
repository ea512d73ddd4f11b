"""Char and NLTK word tokenizers, line breaks as tokens, detokenization, stopwords."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmodels.data.tokenizers import NEWLINE, Tokenizer, read_stopwords
from seqmodels.errors import SeqmodelsError

LINE = 'She said, "Don\'t go -- it\'s 3.5 miles."'


@given(st.text())
@settings(max_examples=200)
def test_char_round_trip_any_unicode(text):
    tok = Tokenizer("char")
    tokens = tok.tokenize(text)
    assert len(tokens) == len(text)
    assert tok.detokenize(tokens) == text


def test_nltk_default_matches_word_tokenize():
    from nltk.tokenize import word_tokenize

    tok = Tokenizer("word")
    assert tok.name == "nltk"
    assert tok.tokenize(LINE) == word_tokenize(LINE, preserve_line=True)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nltk", ["She", "said", ",", "``", "Do", "n't", "go", "--", "it", "'s", "3.5", "miles",
                  ".", "''"]),
        ("treebank", ["She", "said", ",", "``", "Do", "n't", "go", "--", "it", "'s", "3.5",
                      "miles", ".", "''"]),
        ("wordpunct", ["She", "said", ",", '"', "Don", "'", "t", "go", "--", "it", "'", "s",
                       "3", ".", "5", "miles", '."']),
        ("whitespace", ["She", "said,", '"Don\'t', "go", "--", "it's", "3.5", 'miles."']),
    ],
)
def test_each_word_tokenizer(name, expected):
    assert Tokenizer("word", name).tokenize(LINE) == expected


def test_line_breaks_survive_word_tokenization():
    text = "In the beginning.\n\nAnd God said, Let there be light.\nAmen"
    tok = Tokenizer("word")
    tokens = tok.tokenize(text)
    assert tokens.count(NEWLINE) == 3
    assert tokens[:4] == ["In", "the", "beginning", "."]
    assert tokens[4:6] == [NEWLINE, NEWLINE]
    assert tok.detokenize(tokens) == text


def test_treebank_detokenizer_rejoins_punctuation():
    tok = Tokenizer("word")
    assert tok.detokenize(tok.tokenize('He said, "Don\'t go."\nThey (all) went.')) == (
        'He said, "Don\'t go."\nThey (all) went.'
    )


def test_stopwords_removed_case_insensitively(tmp_path):
    path = tmp_path / "stop.txt"
    path.write_text("# common words\nthe\n\nAND\n", encoding="utf-8")
    words = read_stopwords(path)
    assert words == ["the", "AND"]
    tok = Tokenizer("word", stopwords=words)
    assert tok.tokenize("The cat and the hat\nAnd so") == ["cat", "hat", NEWLINE, "so"]


def test_bad_settings():
    with pytest.raises(SeqmodelsError, match="unknown level"):
        Tokenizer("byte")
    with pytest.raises(SeqmodelsError, match="unknown tokenizer"):
        Tokenizer("word", "spacy")
    with pytest.raises(SeqmodelsError, match="--level word only"):
        Tokenizer("char", "nltk")
    with pytest.raises(SeqmodelsError, match="--stopwords applies"):
        Tokenizer("char", stopwords=["the"])
    with pytest.raises(SeqmodelsError, match="cannot read stopwords file"):
        read_stopwords("/no/such/file")


def test_never_downloads(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("nltk.download was called")

    monkeypatch.setattr(nltk, "download", refuse)
    for name in ("nltk", "treebank", "wordpunct", "whitespace"):
        tok = Tokenizer("word", name)
        tok.detokenize(tok.tokenize(LINE + "\nsecond line"))
