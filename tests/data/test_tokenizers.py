"""Tokenizer kinds behind one interface: characters and NLTK words, line breaks as tokens,
detokenization, stopwords, vocabulary, prompts, and a settings round trip for every kind."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmodels.data.config import DataConfig
from seqmodels.data.tokenizers import (
    KINDS,
    NEWLINE,
    ByteTokenizer,
    CharTokenizer,
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    make_tokenizer,
    read_stopwords,
    tokenizer_from_config,
)
from seqmodels.data.vocab import UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError

LINE = 'She said, "Don\'t go -- it\'s 3.5 miles."'
TEXT = "In the beginning.\nAnd God said, Let there be light.\n"


@given(st.text())
@settings(max_examples=200)
def test_char_round_trip_any_unicode(text):
    tok = CharTokenizer()
    tokens = tok.tokenize(text)
    assert len(tokens) == len(text)
    assert tok.detokenize(tokens) == text


def test_nltk_default_matches_word_tokenize():
    from nltk.tokenize import word_tokenize

    tok = WordTokenizer()
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
    assert WordTokenizer(name).tokenize(LINE) == expected


def test_line_breaks_survive_word_tokenization():
    text = "In the beginning.\n\nAnd God said, Let there be light.\nAmen"
    tok = WordTokenizer()
    tokens = tok.tokenize(text)
    assert tokens.count(NEWLINE) == 3
    assert tokens[:4] == ["In", "the", "beginning", "."]
    assert tokens[4:6] == [NEWLINE, NEWLINE]
    assert tok.detokenize(tokens) == text


def test_treebank_detokenizer_rejoins_punctuation():
    tok = WordTokenizer()
    assert tok.detokenize(tok.tokenize('He said, "Don\'t go."\nThey (all) went.')) == (
        'He said, "Don\'t go."\nThey (all) went.'
    )


def test_stopwords_removed_case_insensitively(tmp_path):
    path = tmp_path / "stop.txt"
    path.write_text("# common words\nthe\n\nAND\n", encoding="utf-8")
    words = read_stopwords(path)
    assert words == ["the", "AND"]
    tok = WordTokenizer(stopwords=words)
    assert tok.tokenize("The cat and the hat\nAnd so") == ["cat", "hat", NEWLINE, "so"]


def test_bad_settings():
    with pytest.raises(SeqmodelsError, match="unknown level"):
        make_tokenizer(DataConfig(level="bits"))
    with pytest.raises(SeqmodelsError, match="unknown tokenizer"):
        WordTokenizer("spacy")
    with pytest.raises(SeqmodelsError, match="tokenizer applies to level word only"):
        make_tokenizer(DataConfig(level="char", tokenizer="nltk"))
    with pytest.raises(SeqmodelsError, match="stopwords applies"):
        CharTokenizer.from_settings(stopwords=["the"])
    with pytest.raises(SeqmodelsError, match="cannot read stopwords file"):
        read_stopwords("/no/such/file")
    with pytest.raises(SeqmodelsError, match="unknown normal form"):
        CharTokenizer(normalize="NFX")


def test_never_downloads(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("nltk.download was called")

    monkeypatch.setattr(nltk, "download", refuse)
    for name in ("nltk", "treebank", "wordpunct", "whitespace"):
        tok = WordTokenizer(name)
        tok.detokenize(tok.tokenize(LINE + "\nsecond line"))


def test_one_registry_names_every_kind():
    assert KINDS == {"char": CharTokenizer, "word": WordTokenizer, "byte": ByteTokenizer,
                     "subword": SubwordTokenizer}
    assert all(issubclass(kind, Tokenizer) and kind.level == level
               for level, kind in KINDS.items())
    assert isinstance(make_tokenizer(DataConfig(level="word", tokenizer="whitespace")),
                      WordTokenizer)


def _trained_subwords() -> SubwordTokenizer:
    tokenizer = SubwordTokenizer(lowercase=True)
    tokenizer.train(tokenizer.normalise(TEXT).splitlines(), 300)
    return tokenizer


@pytest.mark.parametrize("tokenizer", [
    CharTokenizer(), CharTokenizer(normalize="NFKC", lowercase=True), WordTokenizer(),
    WordTokenizer("wordpunct", ["the", "And"], normalize="none", lowercase=True),
    ByteTokenizer(), _trained_subwords(),
], ids=["char", "char-nfkc-lower", "word", "wordpunct-stopwords-lower", "byte", "subword"])
def test_settings_round_trip_for_every_kind(tokenizer):
    """to_config() rebuilds a tokenizer that splits, joins, fits and encodes alike (a kind
    that learns from text, with the vocabulary it learnt: its merges split the text)."""
    again = tokenizer_from_config(tokenizer.to_config(),
                                  tokenizer.vocabulary if tokenizer.trained else None)
    assert type(again) is type(tokenizer) and again.to_config() == tokenizer.to_config()
    assert again.fingerprint() == tokenizer.fingerprint()
    assert again.tokenize(again.normalise(TEXT)) == tokenizer.tokenize(tokenizer.normalise(TEXT))
    counts = {}
    for t in tokenizer.tokenize(tokenizer.normalise(TEXT)):
        counts[t] = counts.get(t, 0) + 1
    vocab = tokenizer.fit(counts)
    again = tokenizer_from_config(tokenizer.to_config(), Vocabulary.from_json(vocab.to_json()))
    assert again.encode(TEXT).tolist() == tokenizer.encode(TEXT).tolist()
    assert again.decode(again.encode(TEXT)) == tokenizer.decode(tokenizer.encode(TEXT))


def test_fingerprints_tell_the_settings_apart():
    prints = [CharTokenizer(), CharTokenizer(lowercase=True), WordTokenizer(),
              WordTokenizer("whitespace"), WordTokenizer(stopwords=["the"])]
    assert len({repr(sorted(p.fingerprint().items())) for p in prints}) == len(prints)
    assert "nltk" in WordTokenizer().fingerprint()  # NLTK's version: a new one may split otherwise


def test_encode_normalises_as_the_corpus_was():
    tok = CharTokenizer(lowercase=True)
    tok.fit({"a": 3, "b": 2})
    assert tok.encode("AbA").tolist() == tok.encode("aba").tolist()
    assert tok.encode("ax").tolist()[-1] == UNK_ID
    assert tok.decode(tok.encode("ab")) == "ab"


def test_a_tokenizer_without_a_vocabulary_says_so():
    with pytest.raises(SeqmodelsError, match="no vocabulary yet"):
        WordTokenizer().encode("the")


def test_a_character_vocabulary_holds_characters_only():
    with pytest.raises(SeqmodelsError, match="is not one character"):
        CharTokenizer(vocabulary=Vocabulary(["<pad>", "<unk>", "a", "ab"]))
    WordTokenizer(vocabulary=Vocabulary(["<pad>", "<unk>", "a", "ab"]))  # words may be longer


def test_continuations_and_first_tokens():
    chars, words = CharTokenizer(), WordTokenizer()
    assert chars.continuation("the", "cat") == "cat"
    assert words.continuation("the", "cat") == " cat"
    assert words.continuation("the", ", cat") == ", cat"
    assert words.continuation("the ", "cat") == "cat"
    assert chars.first_token("And God") == "A" and words.first_token("And God") == "And"
    assert chars.token_by_token and not words.token_by_token
    assert (chars.unit, chars.unit_short, words.unit) == ("character", "char", "token")


@given(st.text())
@settings(max_examples=200)
def test_bytes_fit_any_text_without_unknown_tokens(text):
    tok = ByteTokenizer()
    tok.fit({"a": 3})  # a training split of nothing but "a" still gives all 256 bytes
    ids = tok.encode(text)
    encoded = tok.normalise(text).encode("utf-8", "surrogatepass")
    assert [tok.vocabulary.tokens[i] for i in ids] == [chr(b) for b in encoded]
    assert UNK_ID not in ids.tolist()
    if not any(0xD800 <= ord(c) < 0xE000 for c in text):  # a lone surrogate is not UTF-8
        assert tok.decode(ids) == tok.normalise(text)


def test_the_byte_vocabulary_is_every_byte():
    tok = ByteTokenizer()
    vocab = tok.fit({"e": 5, "\n": 2})
    assert len(vocab) == 258 and vocab.tokens[2:4] == ["e", "\n"]
    with pytest.raises(SeqmodelsError, match="min_freq and max_vocab do not apply"):
        tok.fit({"e": 5}, min_freq=2)
    with pytest.raises(SeqmodelsError, match="each of the 256 bytes"):
        ByteTokenizer(vocabulary=Vocabulary(["<pad>", "<unk>", "a"]))
    assert tok.decode(tok.encode("é")) == "é" and len(tok.encode("é")) == 2
    assert tok.detokenize([chr(0xC3)]) == "\ufffd"  # half a character reads as U+FFFD


@pytest.mark.parametrize("name", ["nltk", "wordpunct"])
def test_a_line_too_long_for_nltk_is_one_plain_line(monkeypatch, name):
    """A 200 MB single-line corpus ended with NLTK's ReDoS-guard text ("Pass timeout=None to
    disable the limit for a trusted pattern"), a hint for NLTK's callers, not ours."""
    import nltk.redos

    monkeypatch.setattr(nltk.redos, "DEFAULT_TIMEOUT", 1e-9)  # as 5 s is to a 200 MB line
    tokenizer = WordTokenizer(name)
    with pytest.raises(SeqmodelsError, match="a line of 200,000 characters takes NLTK's word "
                                             "tokenizer past its time limit; break the text"):
        list(tokenizer.tokenize_lines(["word " * 40_000]))
