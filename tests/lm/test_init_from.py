"""A run that starts from another run's model: its shape and weights, shared tokens' rows copied,
new tokens' rows fresh, what contradicts it refused, where it started recorded, resumable."""

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

import seqmodels
from seqmodels.cli.main import cli
from seqmodels.data.tokenizers import CharTokenizer
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.model import LanguageModel
from seqmodels.training.rundir import RunDir

SOURCE_TEXT = "abcdefghijk\n" * 300
TARGET_TEXT = "abc xyz! abc XYZ?\n" * 200  # a b c and the newline are shared; the rest is new


@pytest.fixture(scope="module")
def source(tmp_path_factory, train_tiny):
    root = tmp_path_factory.mktemp("init")
    corpus = root / "source.txt"
    corpus.write_text(SOURCE_TEXT)
    return train_tiny(corpus, root / "source", epochs=1, batch_size=8, seq_len=16, lr=0.01)


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "target.txt"
    path.write_text(TARGET_TEXT)
    return path


def test_shared_rows_are_copied_and_new_rows_stay_fresh(source):
    old = seqmodels.load(source)
    tokenizer = CharTokenizer()
    tokenizer.fit({c: TARGET_TEXT.count(c) for c in set(TARGET_TEXT)})
    new = LanguageModel.build(old.config, tokenizer)
    fresh_table = new.embedding.embeddings.numpy().copy()
    fresh_kernel = new.head.kernel.numpy().copy()
    counts = new.take_weights(old)
    shared = [t for t in tokenizer.vocabulary.tokens if t in old.vocabulary]
    assert counts == {"shared_tokens": len(shared), "new_tokens": len(tokenizer.vocabulary)
                      - len(shared)}
    assert set(shared) == {"<pad>", "<unk>", "a", "b", "c", "\n"}
    table, kernel = np.asarray(new.embedding.embeddings), np.asarray(new.head.kernel)
    bias, their_bias = np.asarray(new.head.bias), np.asarray(old.head.bias)
    for i, token in enumerate(tokenizer.vocabulary.tokens):
        if token in old.vocabulary:
            j = old.vocabulary.index[token]
            np.testing.assert_array_equal(table[i], np.asarray(old.embedding.embeddings)[j])
            np.testing.assert_array_equal(kernel[:, i], np.asarray(old.head.kernel)[:, j])
            assert bias[i] == their_bias[j]
        else:  # as it was built, and as unlikely as the source's rarest token
            np.testing.assert_array_equal(table[i], fresh_table[i])
            np.testing.assert_array_equal(kernel[:, i], fresh_kernel[:, i])
            assert bias[i] == their_bias.min()
    for mine, theirs in zip(new.recurrent_layers, old.recurrent_layers, strict=True):
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_run_started_from_a_model_records_it_and_resumes(source, target, tmp_path):
    old = seqmodels.load(source)
    run = seqmodels.train(seqmodels.DataConfig(corpus=[str(target)]), old,
                          seqmodels.TrainConfig(epochs=1, batch_size=8, steps_per_epoch=3),
                          seqmodels.WindowConfig(seq_len=16), out=tmp_path / "tuned")
    began = json.loads((run.path / "config.json").read_text())["init_from"]
    digest = hashlib.sha256((source / "model.keras").read_bytes()).hexdigest()
    assert began == {"name": str(source), "digest": digest, "shared_tokens": 6,
                     "new_tokens": len(run.model.vocabulary) - 6}
    assert run.model.config == old.config
    more = seqmodels.train(resume=run.path, changes={"epochs": 2})
    assert [r["epoch"] for r in more.history] == [1, 2]
    assert json.loads((run.path / "config.json").read_text())["init_from"] == began


def test_what_contradicts_the_model_is_refused(source, target, tmp_path):
    with pytest.raises(SeqmodelsError, match="level word contradicts the model the run starts"):
        seqmodels.train(seqmodels.DataConfig(corpus=[str(target)], level="word"),
                        seqmodels.load(source), out=tmp_path / "w")
    result = CliRunner().invoke(cli, ["train", str(target), "--init-from", str(source),
                                      "--units", "64", "--out", str(tmp_path / "u")])
    assert result.exit_code == 2 and "--units 64 contradicts the model of --init-from (16)" \
        in result.output
    result = CliRunner().invoke(cli, ["train", "--resume", str(source), "--init-from",
                                      str(source)])
    assert result.exit_code == 2 and "--init-from starts a new run" in result.output
    assert not (tmp_path / "w").exists() and not (tmp_path / "u").exists()


def test_the_cli_takes_the_source_tokens_and_changes_only_regularisation(source, target,
                                                                           tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, [
        "train", str(target), "--init-from", str(source), "--dropout", "0.1", "--epochs", "1",
        "--steps-per-epoch", "2", "-T", "16", "--batch-size", "8", "--lr", "0.002", "-q",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "config.json").read_text())
    source_settings = json.loads((source / "config.json").read_text())
    assert settings["model"] == {**source_settings["model"], "dropout": 0.1}
    assert settings["data"]["level"] == source_settings["data"]["level"]
    assert settings["train"]["lr"] == 0.002 and settings["init_from"]["name"] == str(source)


def test_a_resume_before_the_first_checkpoint_begins_from_the_same_model(source, target,
                                                                         tmp_path, monkeypatch):
    """A run killed before it checkpointed restarts from step 0: from its source, not from
    random weights, and only if the source's file is the one it recorded."""
    import shutil

    copy = tmp_path / "source"
    shutil.copytree(source, copy)
    run = seqmodels.train(seqmodels.DataConfig(corpus=[str(target)]), seqmodels.load(copy),
                          seqmodels.TrainConfig(epochs=1, batch_size=8, steps_per_epoch=2),
                          seqmodels.WindowConfig(seq_len=16), out=tmp_path / "tuned").path
    keep = {"config.json", "vocab.json"}

    def killed_before_its_first_checkpoint():
        for path in run.iterdir():
            if path.name not in keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    killed_before_its_first_checkpoint()
    taken = []
    original = LanguageModel.take_weights
    monkeypatch.setattr(LanguageModel, "take_weights",
                        lambda self, other: taken.append(other.path) or original(self, other))
    seqmodels.train(resume=run)
    assert taken == [copy]
    killed_before_its_first_checkpoint()
    old = seqmodels.load(copy)
    old.network.set_weights([w + 1 for w in old.network.get_weights()])
    old.save(RunDir(copy))
    with pytest.raises(SeqmodelsError, match="whose model file has changed since"):
        seqmodels.train(resume=run)
