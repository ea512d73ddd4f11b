"""Streaming preparation gives exactly the whole-text path's ids, in bounded memory."""

import tempfile
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodels.data.config import DataConfig
from seqmodels.data.corpus import read_corpus, resolve_sources
from seqmodels.data.prepare import make_tokenizer, prepare_corpus
from seqmodels.data.vocab import UNK_ID, Vocabulary
from seqmodels.data.windows import split_bounds
from seqmodels.errors import SeqmodelsError


def in_memory(config: DataConfig) -> tuple[np.ndarray, Vocabulary, dict]:
    """The whole-text path seqmodels used before streaming: the reference."""
    corpus = read_corpus(resolve_sources(config.corpus), config.encoding, config.errors,
                         config.normalize, config.lowercase)
    tokens = make_tokenizer(config).tokenize(corpus.text)
    if not tokens:
        raise SeqmodelsError("the corpus has no tokens left after tokenization")
    a, _ = split_bounds(len(tokens), config.splits)
    counts = Counter(tokens[:a])
    vocab = Vocabulary.from_counts(counts, config.min_freq, config.max_vocab)
    ids = vocab.encode(tokens)
    stats = {"file_chars": corpus.file_chars, "characters": len(corpus.text),
             "tokens": len(tokens), "distinct_train_tokens": len(counts),
             "held_out_oov": int(np.count_nonzero(ids[a:] == UNK_ID)),
             "train_coverage": vocab.coverage(counts), "content_digest": corpus.digest}
    return ids, vocab, stats


def outcome(fn):
    """fn()'s value, or the message of the SeqmodelsError it raised."""
    try:
        return fn()
    except SeqmodelsError as exc:
        return str(exc)


def assert_same(config: DataConfig, chunk_bytes: int, workers: int = 1) -> None:
    """Streaming with this chunk size == the reference: ids, vocabulary, statistics, errors."""
    want = outcome(lambda: in_memory(config))
    got = outcome(lambda: prepare_corpus(config, use_cache=False, workers=workers,
                                         chunk_bytes=chunk_bytes))
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
        return
    ids, vocab, stats = want
    assert got.vocab == vocab
    assert got.ids.dtype == vocab.id_dtype()
    assert np.array_equal(np.asarray(got.ids), ids)
    assert {k: got.stats[k] for k in stats} == stats


# line breaks of every kind, combining marks, final sigma, case, spaces, punctuation
ALPHABET = st.sampled_from(list("ab Z.,'\"-\n\n\r\t\u2028\x85\u0301\u00e9e\u03a3\u03c3\u0130x"
                                "\u00a0\u212b\ufb01(").copy())
TEXT = st.text(ALPHABET, max_size=60)
SLOW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def write_files(folder: Path, blobs: list[bytes]) -> list[str]:
    paths = []
    for i, blob in enumerate(blobs):
        path = folder / f"{i:02d}.txt"
        path.write_bytes(blob)
        paths.append(str(path))
    return paths


@SLOW
@given(texts=st.lists(TEXT, min_size=1, max_size=3), chunk=st.integers(1, 40),
       level=st.sampled_from(["char", "word"]), lowercase=st.booleans(),
       form=st.sampled_from(["NFC", "NFKC", "NFD", "none"]),
       codec=st.sampled_from([("utf-8", "utf-8"), ("utf-16", "utf-16"), ("utf-16-le", "utf-16"),
                              ("utf-8-sig", "utf-8-sig"), ("latin-1", "latin-1"),
                              ("utf-32-be", "utf-32"), ("utf-8", "rot13")]))
def test_streaming_ids_equal_in_memory_ids(texts, chunk, level, lowercase, form, codec):
    written, encoding = codec
    blobs = [t.encode(written, "replace") for t in texts]
    with tempfile.TemporaryDirectory() as d:
        config = DataConfig(corpus=write_files(Path(d), blobs), level=level, lowercase=lowercase,
                            normalize=form, encoding=encoding, splits=(0.6, 0.2, 0.2))
        assert_same(config, chunk)


@SLOW
@given(blobs=st.lists(st.binary(max_size=40), min_size=1, max_size=2), chunk=st.integers(1, 9),
       errors=st.sampled_from(["strict", "replace", "ignore"]))
def test_bad_bytes_give_the_same_ids_or_the_same_error(blobs, chunk, errors):
    with tempfile.TemporaryDirectory() as d:
        assert_same(DataConfig(corpus=write_files(Path(d), blobs), errors=errors), chunk)


def test_word_level_with_min_freq_max_vocab_and_stopwords(text_dir, tmp_path):
    (tmp_path / "stop.txt").write_text("the\nit\n")
    for chunk in (7, 100, 5000):
        assert_same(DataConfig(corpus=[str(text_dir)], level="word", min_freq=2, max_vocab=12,
                               stopwords=str(tmp_path / "stop.txt")), chunk)


def test_two_worker_processes_give_the_same_ids(text_dir):
    config = DataConfig(corpus=[str(text_dir)], level="word")
    assert_same(config, chunk_bytes=300, workers=2)
    assert_same(DataConfig(corpus=[str(text_dir)]), chunk_bytes=300, workers=2)


def test_decoding_errors_with_workers_name_the_byte(tmp_path):
    (tmp_path / "a.txt").write_text("fine line\n" * 100)
    (tmp_path / "b.txt").write_bytes(b"ok\n" * 200 + b"bad \xff byte\n")
    with pytest.raises(SeqmodelsError, match=r"b.txt: byte 0xff at offset 604 is not valid"):
        prepare_corpus(DataConfig(corpus=[str(tmp_path)]), use_cache=False, workers=2,
                       chunk_bytes=64)


def test_cached_ids_are_memory_mapped_in_the_smallest_type(text_dir, tmp_path):
    config = DataConfig(corpus=[str(text_dir)], level="word")
    first = prepare_corpus(config, cache_dir=tmp_path / "c", chunk_bytes=64)
    second = prepare_corpus(config, cache_dir=tmp_path / "c")
    for prepared in (first, second):
        assert isinstance(prepared.ids, np.memmap) and prepared.ids.mode == "r"
        assert prepared.ids.dtype == np.uint8  # 30-odd words fit in a byte
    assert second.cache_hit and np.array_equal(first.ids, second.ids)
    assert sorted(p.name for p in first.cache_path.iterdir()) == [
        "ids.npy", "meta.json", "vocabulary.json"]  # the provisional file is gone
    wide = tmp_path / "wide.txt"
    wide.write_text("\n".join(f"w{i}" for i in range(300)) + "\n")
    big = prepare_corpus(DataConfig(corpus=[str(wide)], level="word", splits=(1.0, 0, 0)),
                         cache_dir=tmp_path / "c")
    assert len(big.vocab) == 303 and big.ids.dtype == np.uint16


def test_no_cache_leaves_no_file(text_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        prepared = prepare_corpus(DataConfig(corpus=[str(text_dir)]), use_cache=False)
        assert list((tmp_path / "tmp").iterdir()) == []
        assert int(prepared.ids[:50].sum()) > 0  # still readable: the mapping outlives the file
    finally:
        tempfile.tempdir = None


PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus

    corpus, small, level, chunk, cache = sys.argv[1:6]
    prepare_corpus(DataConfig(corpus=[small], level=level), cache_dir=cache, workers=1)
    reset_peak()
    before = status("VmRSS")
    p = prepare_corpus(DataConfig(corpus=[corpus], level=level), cache_dir=cache, workers=1,
                       chunk_bytes=int(chunk))
    print(json.dumps({"growth": status("VmHWM") - before, "tokens": p.stats["tokens"],
                      "vocab": len(p.vocab), "ids_bytes": int(p.ids.nbytes)}))
    """
)


def generated_corpus(path: Path, mb: int, seed: int = 0, words: int = 3000) -> Path:
    """mb MiB of lines of words drawn from a fixed list of `words` invented words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(words)]
    vocab += [",", ".", "'s", "!"]
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < mb * 2**20:
            picks = rng.integers(0, len(vocab), 20_000)
            ends = rng.random(20_000) < 0.08
            text = "".join(vocab[p] + ("\n" if e else " ") for p, e in zip(picks, ends))
            f.write(text)
            written += len(text)
    return path


@pytest.mark.parametrize("level, mb, chunk_kib, bound_mb", [("char", 24, 256, 12),
                                                             ("word", 3, 128, 12)])
def test_peak_memory_is_bounded_by_the_chunk_not_the_corpus(tmp_path, level, mb, chunk_kib,
                                                            bound_mb, measure_rss):
    corpus = generated_corpus(tmp_path / "big.txt", mb)
    (tmp_path / "small.txt").write_text("warm up the imports\n" * 50)
    assert corpus.stat().st_size >= 20 * chunk_kib * 1024
    result = measure_rss(PEAK_SCRIPT, str(corpus), str(tmp_path / "small.txt"), level,
                         str(chunk_kib * 1024), str(tmp_path / "cache"))
    print(level, result)
    # the whole-text path held the text plus a Python list of every token: > 10x the corpus
    assert result["tokens"] > corpus.stat().st_size / (1 if level == "char" else 8)
    assert result["growth"] < bound_mb * 2**20, result
