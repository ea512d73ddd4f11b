"""Subword tokens: byte-pair merges learnt on the training split, lossless on any text."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqmodels import DataConfig, SeqmodelsError, prepare_corpus
from seqmodels.data.prepare import corpus_text
from seqmodels.data.report import corpus_report, format_corpus_report
from seqmodels.data.tokenizers import SubwordTokenizer, tokenizer_from_config
from seqmodels.data.tokenizers.bytes import BYTES
from seqmodels.data.vocab import Vocabulary

TRAIN = ("The cat sat on the mat.\nThe dog sat on the log.\n"
         "Les chats dorment; les chiens aussi. Ἐν ἀρχῇ ἦν ὁ λόγος\n") * 40


@pytest.fixture(scope="module")
def trained():
    tok = SubwordTokenizer()
    tok.train(TRAIN.splitlines(), 400)
    return tok


def test_training_learns_merges_of_frequent_pairs(trained):
    vocab = trained.vocabulary
    assert vocab.tokens[2:258] == BYTES and len(vocab) == 258 + len(vocab.merges) <= 400
    assert " sat" in vocab and "The" in vocab  # a word keeps the space before it
    assert "\n" not in {a + b for a, b in vocab.merges} - {"\n"}  # a line break stays alone
    ids = trained.encode("The cat sat on the mat.\n")
    assert len(ids) < len("The cat sat on the mat.\n") / 2  # merged, not bytes
    assert trained.decode(ids) == "The cat sat on the mat.\n"


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=80))
def test_any_text_round_trips_without_unknown_tokens(trained, text):
    """Every text fits (all 256 bytes are tokens) and decodes to itself, spaces, line breaks
    and characters never seen in training included."""
    text = trained.normalise(text)
    ids = trained.encode(text)
    assert 1 not in ids.tolist()  # no <unk>
    assert trained.decode(ids) == text
    assert trained.detokenize(trained.tokenize(text)) == text


def test_line_breaks_are_tokens_of_their_own(trained):
    lines = list(trained.tokenize_lines(["the cat\n", "\n", "  x"]))
    assert lines[0][-1] == "\n" and lines[1] == ["\n"] and "".join(lines[2]) == "  x"


def test_vocabulary_with_merges_round_trips_and_is_checked(trained, tmp_path):
    vocab = trained.vocabulary
    vocab.save(tmp_path / "v.json")
    again = Vocabulary.load(tmp_path / "v.json")
    assert again == vocab and again.merges == vocab.merges
    rebuilt = tokenizer_from_config(trained.to_config(), again)
    assert rebuilt.encode(TRAIN).tolist() == trained.encode(TRAIN).tolist()
    raw = json.loads((tmp_path / "v.json").read_text())
    raw["merges"] = raw["merges"][1:]  # tokens no longer follow from the merges
    (tmp_path / "v.json").write_text(json.dumps(raw))
    with pytest.raises(SeqmodelsError, match="do not follow from its merges"):
        tokenizer_from_config(trained.to_config(), Vocabulary.load(tmp_path / "v.json"))
    raw["merges"] = "ab"
    (tmp_path / "v.json").write_text(json.dumps(raw))
    with pytest.raises(SeqmodelsError, match="'merges' must be a list of pairs"):
        Vocabulary.load(tmp_path / "v.json")
    with pytest.raises(SeqmodelsError, match="lists its merges"):
        SubwordTokenizer(vocabulary=Vocabulary(vocab.tokens))


def test_settings_that_do_not_apply_are_refused():
    with pytest.raises(SeqmodelsError, match="must be above 258"):
        SubwordTokenizer().train(["abc"], 258)
    tok = SubwordTokenizer()
    tok.train(["abab abab"], 300)
    with pytest.raises(SeqmodelsError, match="min_freq does not apply"):
        tok.fit({}, min_freq=2)


def test_fingerprint_names_the_library_version():
    import tokenizers

    assert SubwordTokenizer().fingerprint()["tokenizers"] == tokenizers.__version__


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("subword")
    train_part = "alpha beta gamma delta\n" * 300
    held_out = "omega psi chi phi " * 30 + "\n"  # pairs seen only past the training split
    (root / "c.txt").write_text(train_part + held_out)
    rng = np.random.default_rng(0)
    noise = "".join(rng.choice(list("bcdfgklmnprstvz \n"), 4000))
    # the held-out tail merges far better than the noise before it, so the training split in
    # tokens ends before its share of the bytes: the merges are learnt again, on less
    (root / "tail.txt").write_text("the " * 1000 + noise + "the " * 250)
    return root


def test_prepare_learns_on_the_training_split_only(corpus):
    config = DataConfig(corpus=[str(corpus / "c.txt")], level="subword", max_vocab=300)
    one = prepare_corpus(config, cache_dir=corpus / "cache", workers=1)
    tok = one.tokenizer()
    assert one.stats["tokenizer_bytes"] <= len(tok.decode(one.splits.train).encode())
    assert "omega" in tok.decode(one.splits.test)
    assert "omeg" not in "".join(tok.vocabulary.tokens)  # held-out text taught nothing
    text = corpus_text(config, config.corpus)
    assert tok.decode(one.ids) == text  # the whole corpus, losslessly
    two = prepare_corpus(config, use_cache=False, workers=2, chunk_bytes=512)
    assert np.array_equal(two.ids, one.ids) and two.vocab == one.vocab
    again = prepare_corpus(config, cache_dir=corpus / "cache")
    assert again.cache_hit and again.vocab == one.vocab  # merges read back from the cache
    report = format_corpus_report(corpus_report(again))
    assert "characters per token" in report and "merges learnt on the training split" in report
    assert corpus_report(again)["characters_per_token"] > 2


def test_merges_are_learnt_again_where_the_token_split_ends_early(corpus):
    config = DataConfig(corpus=[str(corpus / "tail.txt")], level="subword", max_vocab=300)
    prepared = prepare_corpus(config, use_cache=False, workers=1)
    text = corpus_text(config, config.corpus)
    first_share = int(len(text.encode()) * 0.9)
    learnt = prepared.stats["tokenizer_bytes"]
    assert learnt < first_share - 100  # learnt again on less than the first share
    assert learnt <= len(prepared.tokenizer().decode(prepared.splits.train).encode())


def test_a_char_vocabulary_of_many_rare_characters_lists_the_rarest(tmp_path):
    """837 distinct characters and not a word about the rare ones: the report lists the rarest
    and how to leave them out."""
    rare = "".join(chr(0x4E00 + i) * (1 + i % 3) for i in range(240))  # 240 rare CJK characters
    path = tmp_path / "many.txt"
    path.write_text(rare + "\n" + ("the cat sat on the mat.\n" * 400))  # the rare in training
    prepared = prepare_corpus(DataConfig(corpus=[str(path)]), use_cache=False, workers=1)
    report = corpus_report(prepared)
    assert len(report["rarest"]) == 10
    counts = [count for _, count in report["rarest"]]
    assert counts == sorted(counts) and counts[0] <= 1
    text = format_corpus_report(report)
    line = next(line for line in text.splitlines() if line.startswith("rarest"))
    assert "--min-freq 5 or --max-vocab" in line and repr(report["rarest"][0][0]) in line
    few = prepare_corpus(DataConfig(corpus=[str(tmp_path / "few.txt")]), use_cache=False,
                         workers=1) if (tmp_path / "few.txt").write_text("abc\n" * 50) else None
    assert corpus_report(few)["rarest"] is None
