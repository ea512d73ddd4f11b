"""Corpus -> ids + vocabulary: training-split vocabulary, honest held-out OOV, and the cache."""

import numpy as np
import pytest

from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import prepare_corpus
from seqmodels.data.tokenizers import Tokenizer
from seqmodels.data.vocab import UNK_ID


def test_char_level_ids_decode_to_the_text(text_dir, tmp_path):
    prepared = prepare_corpus(DataConfig(corpus=[str(text_dir)]), cache_dir=tmp_path / "c")
    text = "".join((text_dir / n).read_text() for n in ("a.txt", "b.txt", "sub/c.txt"))
    assert prepared.stats["characters"] == prepared.stats["tokens"] == len(text)
    train = len(prepared.splits.train)
    assert "".join(prepared.vocab.decode(prepared.splits.train)) == text[:train]
    unseen = [c for c in text[train:] if c not in set(text[:train])]
    assert set(unseen) == {"N"}  # "Nested" lines come after the training split: honest <unk>s
    assert prepared.stats["held_out_oov"] == len(unseen) == 10
    assert isinstance(prepared.ids, np.memmap) or prepared.ids.base is not None  # memory-mapped
    assert prepared.ids.dtype == np.uint8


def test_vocabulary_comes_from_training_split_only(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a" * 89 + "\n" + "b" * 5 + "c" * 4 + "\n")  # 100 chars; split 90/5/5
    prepared = prepare_corpus(DataConfig(corpus=[str(path)]), cache_dir=tmp_path / "c")
    assert prepared.vocab.tokens[2:] == ["a", "\n"]  # b and c appear only in val/test
    assert prepared.stats["held_out_tokens"] == 10
    assert prepared.stats["held_out_oov"] == 9  # all but the final line break
    assert prepared.stats["held_out_oov_rate"] == pytest.approx(0.9)
    assert prepared.stats["train_coverage"] == 1.0
    assert prepared.splits.sizes() == {"train": 90, "val": 5, "test": 5}
    assert (np.asarray(prepared.splits.val) == UNK_ID).all()


def test_word_level_min_freq_and_coverage(text_dir, tmp_path):
    config = DataConfig(corpus=[str(text_dir)], level="word", min_freq=25)
    prepared = prepare_corpus(config, cache_dir=tmp_path / "c")
    assert "\n" in prepared.vocab  # line breaks are tokens
    assert "Alpha" in prepared.vocab and "fox" not in prepared.vocab  # fox: 20 times
    assert 0 < prepared.stats["train_coverage"] < 1


def test_second_run_skips_tokenization(text_dir, tmp_path, monkeypatch):
    config = DataConfig(corpus=[str(text_dir)], level="word")
    first = prepare_corpus(config, cache_dir=tmp_path / "c")
    assert not first.cache_hit and first.cache_path.is_dir()

    def boom(self, lines):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(Tokenizer, "tokenize_lines", boom)
    second = prepare_corpus(config, cache_dir=tmp_path / "c")
    assert second.cache_hit and second.cache_path == first.cache_path
    assert np.array_equal(second.ids, first.ids) and second.vocab == first.vocab
    assert second.stats == first.stats


def test_changed_file_or_setting_invalidates(text_dir, tmp_path):
    cache = tmp_path / "c"
    base = prepare_corpus(DataConfig(corpus=[str(text_dir)]), cache_dir=cache)
    lower = prepare_corpus(DataConfig(corpus=[str(text_dir)], lowercase=True), cache_dir=cache)
    assert lower.cache_path != base.cache_path and not lower.cache_hit
    (text_dir / "a.txt").write_text("Changed!\n" * 30)
    changed = prepare_corpus(DataConfig(corpus=[str(text_dir)]), cache_dir=cache)
    assert not changed.cache_hit and changed.cache_path != base.cache_path
    assert "!" in changed.vocab and "!" not in base.vocab


def test_damaged_cache_entry_is_rebuilt(text_dir, tmp_path):
    config = DataConfig(corpus=[str(text_dir)])
    first = prepare_corpus(config, cache_dir=tmp_path / "c")
    ids = np.array(first.ids)
    (first.cache_path / "ids.npy").write_bytes(b"garbage")
    again = prepare_corpus(config, cache_dir=tmp_path / "c")
    assert not again.cache_hit and np.array_equal(again.ids, ids)


def test_no_cache_writes_nothing(text_dir, tmp_path):
    prepared = prepare_corpus(DataConfig(corpus=[str(text_dir)]), cache_dir=tmp_path / "c",
                              use_cache=False)
    assert prepared.cache_path is None and not (tmp_path / "c").exists()


def test_default_cache_dir_follows_xdg(text_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    prepared = prepare_corpus(DataConfig(corpus=[str(text_dir)]))
    assert prepared.cache_path.parent == tmp_path / "xdg" / "seqmodels"


def test_stopwords_file_removes_words(tmp_path):
    (tmp_path / "t.txt").write_text("the the the")
    (tmp_path / "stop.txt").write_text("the\n")
    config = DataConfig(corpus=[str(tmp_path / "t.txt")], level="word",
                        stopwords=str(tmp_path / "stop.txt"))
    prepared = prepare_corpus(config, cache_dir=tmp_path / "c")
    assert prepared.vocab.tokens == ["<pad>", "<unk>", "\n"]  # only the line break is left


def test_config_json_round_trip():
    config = DataConfig(corpus=["a.txt"], level="word", max_vocab=100, splits=(0.8, 0.1, 0.1))
    assert DataConfig.from_json(config.to_json()) == config


@pytest.mark.slow
def test_builtin_kjv_char_and_word(kjv_cache):
    char = prepare_corpus(DataConfig(), cache_dir=kjv_cache)
    assert char.stats["tokens"] == char.stats["characters"] > 4_000_000
    assert 60 < len(char.vocab) < 90
    word = prepare_corpus(DataConfig(level="word"), cache_dir=kjv_cache)
    assert 900_000 < word.stats["tokens"] < 1_000_000
    assert 10_000 < len(word.vocab) < 15_000
    assert 0 < word.stats["held_out_oov_rate"] < 0.05


def test_an_entry_another_process_finished_first_reports_this_commands_files(tmp_path,
                                                                              monkeypatch):
    """Two commands building the same entry (the same text under other names): the one that
    found it finished reported the other command's file names (issue 34)."""
    import seqmodels.data.prepare as prepare

    text = "the same text under two names\n" * 50
    (tmp_path / "a.txt").write_text(text)
    (tmp_path / "b.txt").write_text(text)
    prepare_corpus(DataConfig(corpus=[str(tmp_path / "a.txt")]), cache_dir=tmp_path / "c")
    load = prepare._load_entry

    def not_there_yet(config, entry, hit=True):  # as when this command looked, before the
        if hit:  # other finished: it builds, then finds the entry made
            raise prepare.SeqmodelsError("not there yet")
        return load(config, entry, hit)

    monkeypatch.setattr(prepare, "_load_entry", not_there_yet)
    with pytest.warns(UserWarning, match="not there yet"):
        got = prepare_corpus(DataConfig(corpus=[str(tmp_path / "b.txt")]),
                             cache_dir=tmp_path / "c")
    assert got.stats["files"] == [str(tmp_path / "b.txt")]


def test_another_users_cache_entry_is_passed_by_not_fatal(tmp_path, monkeypatch):
    """A shared cache_dir: an entry another user made (0700) stopped the command with
    "Permission denied" (root reads any folder, so the refusal is simulated)."""
    from pathlib import Path

    (tmp_path / "a.txt").write_text("some text of mine\n" * 50)
    is_file = Path.is_file

    def theirs(path):
        if path.name == "meta.json":
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", theirs)
    got = prepare_corpus(DataConfig(corpus=[str(tmp_path / "a.txt")]), cache_dir=tmp_path / "c")
    assert "another user's entry?" in got.stats["cache_error"]
    assert not (tmp_path / "c").exists()  # nothing written beside their entry
    assert len(got.splits.train) > 0


def test_texts_in_memory_are_files_named_by_their_content(tmp_path):
    """DataConfig(texts=...): no file to write first; the same text is one cache entry, the
    same as the file holding it, and a run stores the file's path as for any corpus."""
    import json

    from seqmodels.data.prepare import write_texts
    from seqmodels.errors import SeqmodelsError
    from seqmodels.lm.train import train
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig

    text = "the cat sat on the mat.\nthe dog sat on the log.\n" * 40
    cache = tmp_path / "c"
    first = prepare_corpus(DataConfig(texts=[text]), cache_dir=cache)
    again = prepare_corpus(DataConfig(texts=[text]), cache_dir=cache)
    assert not first.cache_hit and again.cache_hit
    path = tmp_path / "t.txt"
    path.write_text(text)
    as_file = prepare_corpus(DataConfig(corpus=[str(path)]), cache_dir=cache)
    assert as_file.cache_hit and as_file.stats["content_digest"] == first.stats["content_digest"]
    assert DataConfig(texts="one text\n").texts == ["one text\n"]  # not one per letter
    written = write_texts(DataConfig(texts=[text, "another\n"]), cache)
    assert written.texts == [] and len(written.corpus) == 2
    assert open(written.corpus[0], encoding="utf-8").read() == text
    run = train(DataConfig(texts=[text]), ModelConfig(layers=1, units=8, embedding_dim=4),
                TrainConfig(epochs=1, batch_size=4, steps_per_epoch=2),
                __import__("seqmodels").WindowConfig(seq_len=16), out=tmp_path / "run",
                options=__import__("seqmodels").RunOptions(cache_dir=cache))
    stored = json.loads((run.path / "config.json").read_text())["data"]
    assert stored["texts"] == [] and stored["corpus"] == [written.corpus[0]]
    assert run.model.evaluate().tokens > 0  # the run's test split, read from that file
    with pytest.raises(SeqmodelsError, match="texts holds strings; item 0 is a bytes"):
        write_texts(DataConfig(texts=[b"bytes"]), cache)
    with pytest.raises(SeqmodelsError, match="leave encoding at utf-8"):
        write_texts(DataConfig(texts=[text], encoding="latin-1"), cache)
