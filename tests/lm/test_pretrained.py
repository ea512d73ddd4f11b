"""The model that ships with seqmodels: found by name, loaded with a run's checks, sampled,
fine-tuned on any UTF-8 text without unknown tokens, never written to."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import seqmodels
from seqmodels.cli.main import cli
from seqmodels.lm.pretrained import PRETRAINED

BUILTIN = PRETRAINED["builtin"]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def builtin():
    return seqmodels.load("builtin")


def test_the_builtin_model_is_a_byte_model_small_enough_to_ship(builtin):
    assert builtin.name == "builtin" and builtin.data.level == "byte"
    assert len(builtin.vocabulary) == 258  # <pad>, <unk> and every byte
    assert (BUILTIN / "model.keras").stat().st_size < 5_000_000
    settings = json.loads((BUILTIN / "config.json").read_text())
    assert settings["data"]["corpus"] == ["data/pretrain/corpus.txt"]  # made by data/pretrain.py


def test_the_builtin_model_writes_english_and_any_utf8(builtin):
    [sample] = builtin.generate("The ", 60, seqmodels.SamplingConfig(temperature=0.5, seed=1))
    words = sample["text"].split()
    assert sum(w.strip(".,;:").isalpha() for w in words) >= len(words) // 2, sample["text"]
    assert builtin.evaluate(text="Grüße, 東京! ✓\n").oov == 0
    # far better than uniform over bytes (log 256 = 5.5 nats) on English it never saw
    assert builtin.evaluate(text="The weather was fine and the children played in the garden "
                                 "until their mother called them in for supper.\n"
                            ).cross_entropy < 2.0


def test_generate_and_init_from_take_the_name_and_never_write_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(BUILTIN)
    result = CliRunner().invoke(cli, ["generate", "builtin", "--prompt", "In the", "--length",
                                      "20", "--seed", "1"])
    assert result.exit_code == 0, result.output
    corpus = tmp_path / "mine.txt"
    corpus.write_text("Grüße aus Köln, und ein Gedicht über den Rhein.\n" * 60)
    result = CliRunner().invoke(cli, [
        "train", str(corpus), "--init-from", "builtin", "--epochs", "1", "--steps-per-epoch",
        "2", "-T", "32", "--batch-size", "4", "-q", "--out", str(tmp_path / "tuned")])
    assert result.exit_code == 0, result.output
    began = json.loads((tmp_path / "tuned" / "config.json").read_text())["init_from"]
    assert began["name"] == "builtin" and began["new_tokens"] == 0
    result = CliRunner().invoke(cli, ["train", "--resume", "builtin", "--epochs", "99"])
    assert result.exit_code != 0 and "builtin" in result.output
    result = CliRunner().invoke(cli, ["export", "builtin"])
    assert result.exit_code == 1 and "is not written to; give --out" in result.output
    assert _snapshot(BUILTIN) == before


def test_the_wheel_ships_every_file_of_the_builtin_model():
    """setup.cfg's package data names each file (a wheel built without them loads nothing)."""
    import configparser
    import fnmatch

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    globs = [g.strip() for g in setup["options.package_data"]["seqmodels"].split(",")]
    for path in BUILTIN.iterdir():
        assert any(fnmatch.fnmatch(f"pretrained/builtin/{path.name}", g) for g in globs), path
    assert "py.typed" in globs
