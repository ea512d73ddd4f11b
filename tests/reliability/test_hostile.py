"""Hostile run directories, damaged caches, links and FIFOs: each case gives one clear line (or
now works), touches nothing outside seqmodels' own files and never prints NaN as a figure.

The cases come from an adversarial pass over every command (issue 17). One tiny run is trained
per module and copied for each case.
"""

import csv
import io
import json
import os
import re
import shutil
import threading
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import seqmodels
from seqmodels.cli.main import cli
from seqmodels.data.config import DataConfig
from seqmodels.data.corpus import resolve_sources
from seqmodels.data.prepare import prepare_corpus
from seqmodels.errors import SeqmodelsError
from seqmodels.files import TEMP_PREFIX, atomic_path
from seqmodels.models.saving import load_model

RESUME = ["train", "--resume", "{run}", "--epochs", "2", "-q"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_tiny, cat_text):
    """A 1-epoch GRU run with latest.npz and previous.npz."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus.txt"
    corpus.write_text(cat_text)
    return train_tiny(corpus, root / "run", cell="gru", epochs=1, batch_size=8, seq_len=20,
                      steps_per_epoch=5, checkpoint_every=2)


@pytest.fixture
def run(trained, tmp_path, monkeypatch):
    """A fresh copy of the trained run; commands use the module's cache."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(trained.parent / "cache"))
    return copy


def invoke(*args, run=None):
    return CliRunner().invoke(cli, [str(a).format(run=run) for a in args])


def one_line(result, *words) -> str:
    """The single error line of a refused command, which must hold every one of words (a
    'warning: ' line before it, say that a resume falls back to previous.npz, is not an error)."""
    assert "Traceback" not in result.output + result.stderr, result.output
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("warning: ")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != ".lock"}


def bystander(tmp_path):
    """A folder of someone else's files whose names look like temporaries of any program."""
    other = tmp_path / "other"
    other.mkdir()
    for name in (".notes.tmp", ".draft.png", ".old.keras", "latest.npz", "precious.txt"):
        (other / name).write_bytes(b"not seqmodels' " + name.encode())
    return other


# --- data loss ------------------------------------------------------------------------------

def test_a_linked_lock_is_refused_and_its_target_kept(run, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("12345 precious data\n")
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(target)
    one_line(invoke(*RESUME, run=run), ".lock", "symbolic link")
    assert target.read_text() == "12345 precious data\n"


def test_a_new_out_holding_only_a_linked_lock_is_refused(tmp_path, cat_text):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    out = tmp_path / "new"
    out.mkdir()
    (out / ".lock").symlink_to(target)
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    result = invoke("train", corpus, "--out", out, "--layers", "1", "--units", "8", "-T", "16",
                    "--batch-size", "8", "-q")
    one_line(result, ".lock", "symbolic link")
    assert target.read_text() == "keep me\n"


def test_a_linked_checkpoints_folder_is_refused_and_left_alone(run, tmp_path):
    other = bystander(tmp_path)
    before = snapshot(other)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(other, target_is_directory=True)
    one_line(invoke(*RESUME, run=run), "checkpoints", "symbolic link")
    assert snapshot(other) == before


def test_resume_removes_only_its_own_temporaries(run):
    users = {".notes.tmp": b"mine", ".draft.png": b"mine", ".x.keras": b"mine"}
    for name, data in users.items():
        (run / name).write_bytes(data)
        (run / "checkpoints" / name).write_bytes(data)
    ours = [run / f"{TEMP_PREFIX}config.json-abc.tmp",
            run / "checkpoints" / f"{TEMP_PREFIX}latest.npz-abc.npz.tmp"]
    for path in ours:
        path.write_bytes(b"left by a kill")
    result = invoke(*RESUME, run=run)
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in ours)
    for name, data in users.items():
        assert (run / name).read_bytes() == data
        assert (run / "checkpoints" / name).read_bytes() == data


def test_temporaries_carry_the_one_pattern(tmp_path):
    with atomic_path(tmp_path / "model.keras", suffix=".keras") as tmp:
        assert tmp.name.startswith(f"{TEMP_PREFIX}model.keras-") and tmp.suffix == ".keras"
        tmp.write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_a_second_run_into_the_same_out_is_refused_under_the_lock(tmp_path, cat_text,
                                                                    monkeypatch):
    """Two `train --out X` at once: the second passed the early emptiness check while the first
    was starting (simulated by skipping that check); under the lock it is refused."""
    from seqmodels.lm import train as lm_train

    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    out = tmp_path / "x"
    args = ["train", corpus, "--out", out, "--layers", "1", "--units", "8", "-T", "16",
            "--batch-size", "8", "--epochs", "1", "--steps-per-epoch", "3", "-q"]
    assert invoke(*args).exit_code == 0
    before = snapshot(out)
    monkeypatch.setattr(lm_train, "_check_run_dir", lambda out, resume: None)
    one_line(invoke(*args), "already exists and is not empty")
    assert snapshot(out) == before


@pytest.mark.parametrize("field, value, words", [
    ("epoch", -3, "'epoch' must be a whole number >= 0"),
    ("step", "x", "'step' must be a whole number >= 0"),
    ("lr_scale", -1e9, "'lr_scale' must be a number in (0, 1]"),
    ("global_step", 2, "cannot all be true"),
    ("history", "dup", "history row 2"),
    ("history", [[1, 2]], "history row 1 is not an object"),
    ("partial", [], "'partial' must be an object"),
    ("best_val_loss", -1e308, "'best_val_loss' must be a finite number >= 0"),  # pass 10
    ("epoch", 50, "50 epoch(s) done in"),  # resume then did nothing and said it finished
    ("history", [], "but its history is empty"),  # history.csv lost its rows
    ("loss_points", [[1, "x"]], "'loss_points' must be a list of [tokens seen, loss] pairs"),
    ("loss_points", [[10**12, 1.5]], "'loss_points' must be a list"),  # beyond the tokens seen
])
def test_damaged_checkpoint_progress_is_refused_before_anything_is_written(
        run, field, value, words):
    (run / "checkpoints" / "previous.npz").unlink()
    for name in ("latest.npz",):
        path = run / "checkpoints" / name
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        state = json.loads(bytes(arrays["state.json"]).decode())
        progress = state["progress"]
        progress[field] = progress["history"] * 2 if value == "dup" else value
        arrays["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.write_bytes(buf.getvalue())
    before = snapshot(run)
    one_line(invoke(*RESUME, run=run), "latest.npz", words)
    assert snapshot(run) == before


def test_string_typed_weights_are_refused(run):
    path = run / "checkpoints" / "latest.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["weights/0"] = np.array(["a", "b"])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    (run / "checkpoints" / "previous.npz").unlink()
    before = snapshot(run)
    one_line(invoke(*RESUME, run=run), "latest.npz", "holds non-numbers")
    assert snapshot(run) == before


@pytest.mark.parametrize("section, key, value", [
    ("train", "batch_size", 8.5), ("train", "max_time", "abc"), ("train", "epochs", "10"),
    ("train", "lr", "fast"), ("data", "min_freq", "x"), ("data", "corpus", "/"),
    ("data", "corpus", [5]), ("train", "seq_len", None),
])
def test_a_damaged_config_is_refused_before_anything_is_written(run, section, key, value):
    path = run / "config.json"
    config = json.loads(path.read_text())
    config[section][key] = value
    path.write_text(json.dumps(config))
    before = snapshot(run)
    one_line(invoke(*RESUME, run=run), "config.json", key)
    assert snapshot(run) == before


# --- loading what it should refuse ----------------------------------------------------------

def test_a_model_naming_a_foreign_registered_function_is_refused(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="elsewhere")
    def doubled(x):
        return x * 2

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation=doubled)])
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(SeqmodelsError, match="registered function 'elsewhere>doubled'"):
        load_model(path)


def _rezip(path, config: bytes) -> None:
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist() if n != "config.json"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", config)
        for name, data in members.items():
            z.writestr(name, data)


def test_a_model_config_that_unpacks_to_gigabytes_is_refused_unread(run):
    _rezip(run / "model.keras", b" " * (17 * 2**20))  # 17 MB of spaces, a few kB zipped
    assert (run / "model.keras").stat().st_size < 2**20
    one_line(invoke("evaluate", run, "-q", run=run), "model.keras", "would unpack to")


def test_a_model_config_nested_too_deeply_is_refused(run):
    _rezip(run / "model.keras", ("[" * 600 + "]" * 600).encode())
    one_line(invoke("generate", run, "-n", "3", run=run), "model.keras", "nest")


# --- hangs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["evaluate", "{run}", "-q"], ["generate", "{run}", "-n", "3"],
                                     RESUME])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_vocab_that_is_not_a_regular_file_is_refused_at_once(run, command, kind):
    vocab = run / "vocab.json"
    vocab.unlink()
    if kind == "fifo":
        os.mkfifo(vocab)
    else:
        vocab.symlink_to("/dev/zero")
    one_line(invoke(*command, run=run), "vocab.json", "not a regular file")


def test_a_stopwords_fifo_is_refused_at_once(tmp_path, cat_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    os.mkfifo(tmp_path / "stop")
    result = invoke("corpus", corpus, "--level", "word", "--stopwords", tmp_path / "stop")
    one_line(result, "stop", "not a regular file")


def test_a_glob_does_not_follow_link_loops(tmp_path, cat_text):
    root = tmp_path / "d"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "x.txt").write_text(cat_text)
    (root / "a" / "b" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "b" / "again").symlink_to(root / "a", target_is_directory=True)
    sources = resolve_sources([f"{root}/**/*.txt"])
    assert [s.name for s in sources] == [str(root / "a" / "x.txt")]


# --- silently wrong -------------------------------------------------------------------------

def test_a_temperature_below_float32s_range_is_greedy_not_one():
    from seqmodels.lm.sampling import sample_next

    logits = np.log(np.array([[0.2, 0.5, 0.3]] * 400, np.float32))
    for t in (1e-38, 1e-45, 1e-300):
        assert set(np.asarray(sample_next(logits, t, seed=3)).tolist()) == {1}
    assert len(set(np.asarray(sample_next(logits, 1.0, seed=3)).tolist())) == 3


def test_a_temperature_beyond_float32s_range_is_refused(run):
    """1e300 became inf in float32: a numpy overflow warning, then uniform sampling."""
    one_line(invoke("generate", run, "-n", "5", "-t", "1e300"), "too large for float32")
    assert invoke("generate", run, "-n", "5", "-t", "1e30").exit_code == 0  # large, but float32


def test_damaged_cache_ids_are_rebuilt_with_a_warning(tmp_path, cat_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    config = DataConfig(corpus=[str(corpus)])
    good = prepare_corpus(config, cache_dir=tmp_path / "cache")
    expected = np.array(good.ids)
    ids = np.load(good.cache_path / "ids.npy", mmap_mode="r+")
    ids[5] = 250  # outside a vocabulary of ~20 characters
    ids.flush()
    del ids
    with pytest.warns(UserWarning, match="rebuilding a damaged cache entry.*outside its vocab"):
        again = prepare_corpus(config, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(again.ids), expected)


@pytest.mark.parametrize("damage", ["vocab", "ids"])
def test_a_cache_entry_changed_within_its_ranges_is_rebuilt(tmp_path, cat_text, damage):
    """Two tokens swapped in vocab.json (same size), or two in-range ids swapped in ids.npy:
    caught by meta.json's digests, never trained on."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    config = DataConfig(corpus=[str(corpus)])
    good = prepare_corpus(config, cache_dir=tmp_path / "cache")
    expected_ids, expected_tokens = np.array(good.ids), list(good.vocab.tokens)
    entry = good.cache_path
    del good
    if damage == "vocab":
        stored = json.loads((entry / "vocabulary.json").read_text())
        tokens = stored["tokens"]
        tokens[2], tokens[3] = tokens[3], tokens[2]
        (entry / "vocabulary.json").write_text(json.dumps(stored))
    else:
        ids = np.load(entry / "ids.npy", mmap_mode="r+")
        first = int(np.flatnonzero(ids != ids[0])[0])
        ids[0], ids[first] = ids[first], ids[0]
        ids.flush()
        del ids
    with pytest.warns(UserWarning, match=f"{damage}.*changed since it was cached"):
        again = prepare_corpus(config, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(again.ids), expected_ids)
    assert list(again.vocab.tokens) == expected_tokens


def test_a_cache_meta_without_stats_is_rebuilt(tmp_path, cat_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    config = DataConfig(corpus=[str(corpus)])
    entry = prepare_corpus(config, cache_dir=tmp_path / "cache").cache_path
    meta = json.loads((entry / "meta.json").read_text())
    del meta["stats"]
    (entry / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="stats are missing or damaged"):
        again = prepare_corpus(config, cache_dir=tmp_path / "cache")
    assert again.stats["tokens"] == len(cat_text)


def test_folders_of_killed_cache_builds_are_removed(tmp_path, cat_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    cache = tmp_path / "cache"
    cache.mkdir()
    import socket

    dead = cache / f"{TEMP_PREFIX}abc-{socket.gethostname()}-999999999-xyz"
    dead.mkdir()
    alive = cache / f"{TEMP_PREFIX}abc-{socket.gethostname()}-{os.getpid()}-xyz"
    alive.mkdir()
    other = cache / ".KEY.something"
    other.mkdir()
    prepare_corpus(DataConfig(corpus=[str(corpus)]), cache_dir=cache)
    assert not dead.exists() and alive.exists() and other.exists()


def test_nan_weights_are_refused_not_reported(run):
    import keras

    model = keras.models.load_model(run / "model.keras")
    weights = model.get_weights()
    weights[0][:] = np.nan
    model.set_weights(weights)
    model.save(run / "model.keras")
    line = one_line(invoke("evaluate", run, "-q", run=run), "NaN or infinite")
    assert "cross-entropy" not in line and "perplexity" not in line  # no figure printed


# --- options --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["corpus"], ["train", "--epochs", "1"]])
def test_non_finite_splits_are_refused(tmp_path, cat_text, command):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    result = invoke(command[0], corpus, *command[1:], "--splits", "nan,nan,nan")
    assert result.exit_code == 2 and "finite" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_recurrent_scale_is_refused(value):
    result = invoke("diagnose", "--recurrent-scale", value)
    assert result.exit_code == 2 and "not a finite number" in result.output


# --- forecast files -------------------------------------------------------------------------

def test_a_huge_time_gap_is_refused_naming_it(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    times = list(range(30)) + [3_000_000_000]
    csv = tmp_path / "gap.csv"
    csv.write_text("t,y\n" + "".join(f"{t},{i % 7}\n" for i, t in enumerate(times)))
    with pytest.raises(SeqmodelsError, match=r"gap.csv: between lines 31 and 32 the timestamps "
                                             r"jump from 29 to 3000000000.*2,999,999,970 "
                                             r"missing"):
        read_series(SeriesConfig(csv=str(csv), target="y", time_column="t"))


def test_a_target_taken_by_elimination_says_so(tmp_path):
    """--time-column naming the values leaves the dates as the only column: the error says
    why the dates were taken as the target."""
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    csv = tmp_path / "s.csv"
    csv.write_text("date,value\n" + "".join(f"2020-01-{d:02d},{d % 7}\n" for d in range(1, 29)))
    with pytest.raises(SeqmodelsError, match=r"column 'date' is not numeric.*taken as the column "
                                             r"to forecast.*did you mean another time_column"):
        read_series(SeriesConfig(csv=str(csv), time_column="value"))


@pytest.mark.parametrize("change, words", [
    ({"std": [0.0]}, "not positive"), ({"std": ["x"]}, "'std' must hold one finite number"),
    ({"mean": []}, "'mean' must hold one finite number"), ({"columns": "y"}, "'columns'"),
    ({"fill": {"y": "a"}}, "'fill'"),
])
def test_a_damaged_scaler_is_refused(tmp_path, change, words):
    from seqmodels.forecast.run import SCALER_FORMAT, read_scaler

    scaler = {"format": SCALER_FORMAT, "version": 1, "columns": ["y"], "mean": [1.0],
              "std": [2.0], **change}
    (tmp_path / "scaler.json").write_text(json.dumps(scaler))
    with pytest.raises(SeqmodelsError, match="scaler.json: damaged scaler") as info:
        read_scaler(tmp_path)
    assert words in str(info.value)


# --- safe Keras models not shaped like ours -------------------------------------------------

def _foreign(kind: str, vocab_size: int):
    import keras

    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, 8)(ids)
    if kind == "no-recurrent-layer":
        x = keras.layers.Dense(8)(x)
    elif kind == "default-names":
        x = keras.layers.GRU(8, return_sequences=True)(x)
    elif kind == "bidirectional":
        x = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True), name="rnn_0")(x)
    elif kind == "float-input":
        ids = keras.Input((None, 4))
        x = keras.layers.GRU(8, return_sequences=True, name="rnn_0")(ids)
    return keras.Model(ids, keras.layers.Dense(vocab_size)(x))


@pytest.mark.parametrize("command", [["evaluate", "{run}", "-q"], ["generate", "{run}", "-n", "3"],
                                     ["diagnose", "{run}", "--batch-size", "2", "-T", "8"]])
@pytest.mark.parametrize("kind, words", [
    ("no-recurrent-layer", "recurrent layers are none"),
    ("default-names", "recurrent layers are ['gru"),
    ("bidirectional", "is a Bidirectional"),
    ("float-input", "not token ids"),
])
def test_a_model_not_built_by_seqmodels_is_refused(run, command, kind, words):
    vocab_size = len(json.loads((run / "vocab.json").read_text())["tokens"])
    _foreign(kind, vocab_size).save(run / "model.keras")
    one_line(invoke(*command, run=run), "model.keras", words)


def _timed_csv(path, times):
    path.write_text("t,y\n" + "".join(f"{t},{i % 7}\n" for i, t in enumerate(times)))
    return path


@pytest.mark.parametrize("offsets, outcome", [
    (["+02:00"], "left out of the times shown"),  # one offset throughout: read as local time
    (["+01:00", "+02:00"], "irregular timestamps"),  # a change of offset, converted to UTC
])
def test_timestamps_with_utc_offsets_are_read_or_refused_in_one_line(tmp_path, offsets, outcome):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    times = [f"2021-01-{d:02d}T00:00:00{offsets[d % len(offsets)]}" for d in range(1, 29)]
    config = SeriesConfig(csv=str(_timed_csv(tmp_path / "tz.csv", times)), target="y",
                          time_column="t")
    if len(offsets) == 1:
        series = read_series(config)
        assert str(series.times.iloc[0]) == "2021-01-01 00:00:00" and outcome in series.notes[0]
    else:
        with pytest.raises(SeqmodelsError, match=outcome):
            read_series(config)


def test_a_non_finite_numeric_time_is_refused_naming_its_line(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    csv = _timed_csv(tmp_path / "inf.csv", [*range(40), "inf", *range(41, 60)])
    with pytest.raises(SeqmodelsError, match="line 42: the time 'inf' .* not a finite number"):
        read_series(SeriesConfig(csv=str(csv), target="y", time_column="t"))


def test_an_infinite_value_is_refused_naming_its_line_not_blamed_on_the_rate(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    csv = tmp_path / "inf.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{'inf' if i == 30 else i % 7}\n" for i in range(60)))
    with pytest.raises(SeqmodelsError, match="line 32: column 'y' holds 'inf', not a finite"):
        read_series(SeriesConfig(csv=str(csv), target="y", time_column="t"))


def test_the_default_prompt_of_a_tiny_vocabulary_is_one_of_its_tokens():
    from seqmodels.data.tokenizers import CharTokenizer
    from seqmodels.data.vocab import Vocabulary

    vocab = Vocabulary(["<pad>", "<unk>", " "])
    lines = ["<unk><unk> <unk>", "<unk> <unk>"]  # what decoding a 3-token vocabulary gives
    tokenizer = CharTokenizer(vocabulary=vocab)
    assert tokenizer.default_prompt(lines, np.random.default_rng(0)) == " "


# --- misleading messages --------------------------------------------------------------------

def test_a_disk_full_at_the_start_names_the_file_and_leaves_nothing(tmp_path, cat_text,
                                                                      monkeypatch):
    import errno

    from seqmodels.training.rundir import RunDir

    def full(run, settings):
        raise OSError(errno.ENOSPC, "No space left on device", str(run.config))

    monkeypatch.setattr(RunDir, "write_config", full)
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    out = tmp_path / "new"
    line = one_line(invoke("train", corpus, "--out", out, "--layers", "1", "--units", "8",
                           "-T", "16", "--batch-size", "8", "-q"),
                    "could not start the run", "config.json: No space left on device",
                    "nothing was kept")
    assert "a file" not in line
    assert not out.exists()


def test_a_run_directory_deleted_while_training_is_not_called_intact(tmp_path, cat_text):
    import keras

    from seqmodels import DataConfig, ModelConfig, RunOptions, TrainConfig, WindowConfig, train

    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    out = tmp_path / "gone"

    def delete(batch, logs):
        if logs["global_step"] == 2:
            shutil.rmtree(out)

    with pytest.raises(SeqmodelsError, match="no longer exists") as info:
        train(DataConfig(corpus=[str(corpus)]), ModelConfig(layers=1, units=8, embedding_dim=4),
              TrainConfig(epochs=1, batch_size=8, steps_per_epoch=4, checkpoint_every=1),
              WindowConfig(seq_len=16), out=out, options=RunOptions(callbacks=[
                  keras.callbacks.LambdaCallback(on_train_batch_end=delete)]))
    assert "intact" not in str(info.value)


# --- a second adversarial pass --------------------------------------------------------------

def test_a_plot_never_replaces_an_existing_file_unasked(tmp_path, cat_text):
    corpus, mine = tmp_path / "a.txt", tmp_path / "mine.png"
    corpus.write_text(cat_text)
    mine.write_text("mine")
    args = ["diagnose", "--batch-size", "2", "-T", "8", "--units", "8", "--cells", "rnn",
            "--corpus", corpus, "--plot", mine]
    one_line(invoke(*args), "mine.png exists; pass --force")
    assert mine.read_text() == "mine"


@pytest.mark.parametrize("command", [["corpus", "{corpus}", "--export", "{target}", "--force"],
                                     ["forecast", "data", "nile", "--out", "{target}", "--force"]])
def test_force_replaces_files_only_never_a_fifo(tmp_path, cat_text, command):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    args = [str(a).format(corpus=corpus, target=fifo) for a in command]
    one_line(invoke(*args), "pipe exists and is not a regular file")
    assert stat_is_fifo(fifo)


def stat_is_fifo(path) -> bool:
    import stat

    return stat.S_ISFIFO(path.lstat().st_mode)


def test_a_recurrent_scale_that_overflows_is_one_line(cat_text, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    one_line(invoke("diagnose", "--batch-size", "2", "-T", "8", "--units", "8", "--cells", "rnn",
                    "--recurrent-scale", "1e300", "--corpus", corpus),
             "overflow float32")


def test_vanishing_beyond_measuring_gives_advice_that_fits_the_scale(cat_text, tmp_path):
    """A huge scale saturates tanh (norms vanish too): the advice is not 'a larger scale'."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    line = one_line(invoke("diagnose", "--batch-size", "2", "-T", "50", "--units", "8", "--cells",
                           "rnn", "--recurrent-scale", "1e6", "--corpus", corpus),
                    "vanish beyond measuring", "--recurrent-scale nearer 1")
    assert "larger" not in line


def _set_weights(path, change):
    import keras

    model = keras.models.load_model(path)
    weights = model.get_weights()
    change(weights)
    model.set_weights(weights)
    model.save(path)


@pytest.mark.parametrize("command", [["generate", "{run}", "-n", "5"],
                                     ["diagnose", "{run}", "--batch-size", "2", "-T", "8"]])
def test_nan_weights_are_refused_by_every_command(run, command):
    _set_weights(run / "model.keras", lambda w: w[-1].__setitem__(slice(None), np.nan))
    one_line(invoke(*command, run=run), "model.keras", "NaN or infinite")


def test_a_model_from_another_run_shape_is_refused(run, trained, tmp_path, cat_text,
                                                   train_tiny):
    other = train_tiny(trained.parent / "corpus.txt", tmp_path / "lstm", cell="lstm", epochs=1,
                       batch_size=8, seq_len=20, steps_per_epoch=2)
    shutil.copy(other / "model.keras", run / "model.keras")
    one_line(invoke("evaluate", run, "-q", run=run), "model.keras",
             "1 x 16 lstm, but the run's settings say 1 x 16 gru")


def test_nan_weights_in_a_checkpoint_are_damage_not_a_learning_rate(run):
    for name in ("latest.npz", "previous.npz"):
        path = run / "checkpoints" / name
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["weights/1"] = np.full_like(arrays["weights/1"], np.nan)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.write_bytes(buf.getvalue())
    line = one_line(invoke(*RESUME, run=run), "damaged checkpoint", "NaN or infinite")
    assert "--lr" not in line


def test_a_checkpoint_without_progress_is_damaged(run):
    (run / "checkpoints" / "previous.npz").unlink()
    path = run / "checkpoints" / "latest.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(bytes(arrays["state.json"]).decode())
    del state["progress"]
    arrays["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    one_line(invoke(*RESUME, run=run), "latest.npz", "progress is not an object")


def test_an_empty_corpus_path_is_not_the_current_folder(run):
    one_line(invoke("evaluate", run, "--corpus", "", "-q", run=run), "empty corpus path")


def test_a_char_vocabulary_with_a_longer_token_is_refused(run):
    vocab = json.loads((run / "vocab.json").read_text())
    vocab["tokens"][3] = "ab"
    (run / "vocab.json").write_text(json.dumps(vocab))
    one_line(invoke("generate", run, "-n", "3", run=run), "vocab.json", "'ab' is not one")


def test_generation_never_writes_pad_or_unk(run):
    from seqmodels.lm.generate import Generator, SamplingConfig

    def favour_specials(weights):
        weights[-1][:2] = 50.0  # the logits' bias: <pad> and <unk> far ahead of any token

    _set_weights(run / "model.keras", favour_specials)
    model = seqmodels.load(run)
    for t in (0.0, 1.0):
        ids = Generator(model, SamplingConfig(t, seed=1)).generate(np.array([[3]], np.int32), 300)
        assert ids.min() >= 2


def test_predict_from_a_device_names_it_not_a_regular_file(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import resolve_csv

    with pytest.raises(SeqmodelsError, match="/dev/zero: not a regular file"):
        resolve_csv("/dev/zero")


def test_values_too_large_to_scale_are_refused(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.prepare import prepare
    from seqmodels.forecast.series import SeriesConfig

    csv = tmp_path / "big.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{(-1) ** i * 1e308}\n" for i in range(60)))
    import warnings

    with warnings.catch_warnings():  # the one-line refusal only: no numpy overflow warning
        warnings.simplefilter("error")
        with pytest.raises(SeqmodelsError, match="'y': its values are too large to scale"):
            prepare(SeriesConfig(csv=str(csv), target="y", time_column="t", window=4))


def test_numeric_times_beyond_exact_counting_are_refused(tmp_path):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    csv = _timed_csv(tmp_path / "t.csv", [10**20 + i for i in range(40)])
    with pytest.raises(SeqmodelsError, match="line 2: the time .* too large to count"):
        read_series(SeriesConfig(csv=str(csv), target="y", time_column="t"))


def test_a_plot_path_that_is_a_folder_is_named(tmp_path):
    from seqmodels.files import write_text_atomic

    (tmp_path / "p.png").mkdir()
    with pytest.raises(OSError) as info:
        write_text_atomic(tmp_path / "p.png", "x")
    assert info.value.filename == str(tmp_path / "p.png")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    pytest.importorskip("pandas")
    root = tmp_path_factory.mktemp("forecast-hostile")
    csv = root / "s.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{10 + np.sin(i / 3):.4f}\n" for i in range(200)))
    result = CliRunner().invoke(cli, ["forecast", "train", str(csv), "--time-column", "t",
                                      "--target", "y", "--window", "8", "--units", "8",
                                      "--epochs", "2", "-q", "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def frun(forecast_run, tmp_path):
    copy = tmp_path / "frun"
    shutil.copytree(forecast_run, copy)
    return copy


def _scaler(frun, **change):
    path = frun / "scaler.json"
    scaler = json.loads(path.read_text())
    path.write_text(json.dumps({**scaler, **change}))


def test_forecast_figures_that_overflow_are_refused(frun):
    _scaler(frun, mean=[1e308], std=[1e308])
    line = one_line(invoke("forecast", "evaluate", frun, "--no-plot", "--json"), "not finite")
    assert "Infinity" not in line


def test_a_scaler_for_other_columns_is_refused(frun):
    _scaler(frun, columns=["z"])
    one_line(invoke("forecast", "evaluate", frun, "--no-plot"), "scaler.json",
             "scales the columns z")


def test_an_exact_naive_forecast_gives_no_skill_ratio_not_inf(frun, tmp_path):
    flat = tmp_path / "flat.csv"
    flat.write_text("t,y\n" + "".join(f"{i},5\n" for i in range(200)))
    result = invoke("forecast", "evaluate", frun, flat, "--no-plot")
    assert result.exit_code == 0, result.output
    assert "skill ratio    none: the last value forecast is exact" in result.output
    assert "inf" not in result.output
    data = json.loads(invoke("forecast", "evaluate", frun, flat, "--no-plot", "--json").output)
    assert data["skill"] is None


def test_large_values_keep_their_digits_and_the_skill_note_fits_the_table(tmp_path):
    """Values near 1e15 rising by 1: predict prints every digit (not 1e+15), and a naive RMSE
    of 1 is not called 'exact (RMSE 0)'."""
    data = tmp_path / "big.csv"
    # not quite a line, so that no naive forecast (drift included) is exact
    data.write_text("t,value\n" + "".join(f"{i},{10**15 + i + i % 3}\n" for i in range(300)))
    out = tmp_path / "ft"
    assert invoke("forecast", "train", data, "--time-column", "t", "--target", "value",
                  "--units", "4", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                  "-q", "--out", out).exit_code == 0
    predicted = invoke("forecast", "predict", out, data)
    assert predicted.exit_code == 0, predicted.output
    values = [line.split(",")[1] for line in predicted.stdout.strip().splitlines()[1:]]
    assert values and all("e" not in v and abs(float(v) - 1e15) < 1e9 for v in values), values
    report = invoke("forecast", "evaluate", out, "--no-plot")
    assert report.exit_code == 0, report.output
    assert "RMSE 0" not in report.output and "within the float32 rounding" in report.output


def test_forecast_evaluate_plot_does_not_replace_a_file_unasked(frun, tmp_path):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    one_line(invoke("forecast", "evaluate", frun, "--plot", mine), "exists; pass --force")
    assert mine.read_bytes() == b"my picture"


# --- the third adversarial pass ---------------------------------------------------------------

SAMPLING = ["--sample-every", "1", "--sample-length", "5"]


def test_a_samples_file_that_is_a_fifo_is_refused_not_waited_on(run):
    fifo = run / "samples.txt"
    os.mkfifo(fifo)
    unblock = threading.Timer(60, lambda: open(fifo, "rb").close())  # a hang fails, not hangs
    unblock.start()
    try:
        result = invoke(*RESUME, *SAMPLING, run=run)
    finally:
        unblock.cancel()
    one_line(result, "samples.txt", "not a regular file")


def test_a_samples_file_that_is_a_link_is_refused_and_its_target_kept(run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (run / "samples.txt").symlink_to(victim)
    one_line(invoke(*RESUME, *SAMPLING, run=run), "samples.txt", "not a regular file")
    assert victim.read_text() == "precious\n"


def test_samples_are_appended_to_a_regular_file(run):
    (run / "samples.txt").write_text("earlier\n")
    assert invoke(*RESUME, *SAMPLING, run=run).exit_code == 0
    text = (run / "samples.txt").read_text()
    assert text.startswith("earlier\n--- step ") and text.count("--- step ") >= 2


def test_append_text_never_follows_a_link_or_waits_on_a_fifo(tmp_path):
    from seqmodels.files import append_text

    target = tmp_path / "target"
    target.write_text("x")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    for name, why in (("link", "a link"), ("fifo", "FIFO")):
        with pytest.raises(SeqmodelsError, match=why):
            append_text(tmp_path / name, "more")
    assert target.read_text() == "x"


@pytest.mark.parametrize("options, words", [
    (["--max-time", "9" * 400 + "h"], ["--max-time", "too long"]),
    (["--sample-length", str(2**31)], ["--sample-length", "10000"]),
    (["--encoding", "rot13"], ["--encoding", "not a text encoding"]),
])
def test_options_beyond_what_can_run_are_usage_errors(tmp_path, cat_text, options, words):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    result = invoke("train", corpus, "--out", tmp_path / "r", *options)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert all(w in result.output for w in words), result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("toml, words", [
    ("epochs = inf\n", ["epochs must be a whole number, not inf"]),
    ("epochs = 2.7\n", ["epochs must be a whole number, not 2.7"]),
    ("batch-size = true\n", ["batch-size must be a whole number, not True"]),
    ("lr = true\n", ["lr must be a number"]),
    ("xla = 1\n", ["xla must be true or false"]),
    ("corpus = " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    ("out = 1979-05-27T07:32:00\n", ["out must be a string or number"]),  # was a traceback
    ("callback = \"nomodule\"\n", ["'nomodule': give MODULE:NAME"]),  # one, not its letters
])
def test_config_file_values_are_taken_as_they_are_or_refused(tmp_path, cat_text, toml, words):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    (tmp_path / "c.toml").write_text(toml)
    for command in (["train", corpus], ["forecast", "train", "nile"]):
        result = invoke(*command, "--config", tmp_path / "c.toml", "--out", tmp_path / "r")
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert all(w in result.output for w in words), result.output
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("tf_config, words", [
    ({"cluster": {"worker": [5]}, "task": {"type": "worker", "index": 0}},
     ["host:port strings, not 5"]),
    ({"cluster": {"worker": ["no-such-host.invalid:1"], "chief": ["localhost:2"]},
      "task": {"type": "chief", "index": 0}}, ["no-such-host.invalid", "cannot be found"]),
])
def test_a_cluster_that_cannot_be_joined_is_one_line_at_once(tmp_path, cat_text, monkeypatch,
                                                             tf_config, words):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    result = invoke("train", corpus, "--strategy", "multi-worker", "--out", tmp_path / "r",
                    "-q")
    one_line(result, *words)
    assert not (tmp_path / "r").exists()


def test_export_under_a_file_is_one_line(run, tmp_path):
    (tmp_path / "afile").write_text("hi")
    one_line(invoke("export", run, "--out", tmp_path / "afile" / "model"), "afile",
             "not a folder")
    assert (tmp_path / "afile").read_text() == "hi"


def test_export_never_writes_through_a_link_named_like_its_temporary(run, tmp_path):
    other = bystander(tmp_path)
    before = snapshot(other)
    (tmp_path / "ex").mkdir()
    (tmp_path / "ex" / f"{TEMP_PREFIX}sm-export").symlink_to(other, target_is_directory=True)
    result = invoke("export", run, "--format", "tflite", "--out", tmp_path / "ex" / "sm")
    assert result.exit_code == 0, result.output
    assert snapshot(other) == before and sorted(os.listdir(other)) == sorted(before_names(before))
    assert (tmp_path / "ex" / "sm").is_file() and not (tmp_path / "ex" / "sm").is_symlink()


def before_names(files) -> list[str]:
    return [p.name for p in files]


def test_edited_data_settings_are_not_called_a_changed_corpus(run):
    config = json.loads((run / "config.json").read_text())
    config["data"]["level"] = "word"
    (run / "config.json").write_text(json.dumps(config))
    line = one_line(invoke("evaluate", run, "-q", run=run), "config.json", "vocab.json")
    assert "corpus has changed" not in line


def test_forecast_evaluate_refuses_plot_with_no_plot(frun, tmp_path):
    result = invoke("forecast", "evaluate", frun, "--no-plot", "--plot", tmp_path / "p.png")
    assert result.exit_code == 2 and "--no-plot" in result.output
    assert not (tmp_path / "p.png").exists()


def test_a_linked_tensorboard_folder_is_refused_and_left_alone(run, tmp_path):
    other = bystander(tmp_path)
    before = snapshot(other)
    (run / "tensorboard").symlink_to(other, target_is_directory=True)
    one_line(invoke(*RESUME, run=run), "tensorboard", "symbolic link")
    assert snapshot(other) == before


@pytest.mark.parametrize("command, words", [
    (["generate", "{run}", "--stop-at", ""], ["--stop-at", "empty"]),
    (["diagnose", "--cells", "lstm,lstm"], ["lstm", "twice"]),
    (["corpus", "kjv", "--force"], ["--force", "without --export"]),
    (["diagnose", "--force"], ["--force", "without --plot"]),
    (["forecast", "evaluate", "{run}", "--no-plot", "--force"], ["--force", "without --plot"]),
    (["train", "kjv", "-q", "--sample-prompt", "a"], ["--sample-prompt", "--quiet takes none"]),
    (["train", "kjv", "--sample-every", "0", "--sample-temperature", "0.5"],
     ["--sample-temperature", "--sample-every 0 takes none"]),
    (["train", "kjv", "--sample-temperature", "0.5", "--sample-temperature", "0.5"],
     ["temperature twice"]),
    (["forecast", "train", "nile", "--features", ","], ["names no column"]),
    (["forecast", "train", "nile", "--features", "a,a"], ["names a column twice"]),
    (["train", "kjv", "--out", ""], ["--out", "empty path"]),
    (["export", "{run}", "--out", ""], ["--out", "empty path"]),
    (["corpus", "kjv", "--export", ""], ["--export", "empty path"]),
    (["generate", ""], ["RUN", "empty path"]),
    (["train", "kjv", "--decay-factor", "0.1"], ["--decay-factor", "step or plateau"]),
    (["forecast", "train", "nile", "--schedule", "cosine", "--decay-after", "2"],
     ["--decay-after", "step, not cosine"]),
    (["generate", "{run}", "-t", "0", "--top-k", "3"], ["-t 0", "--top-k"]),
    (["generate", "{run}", "--stop-at", "\u20ac"], ["--stop-at", "vocabulary lacks"]),
])
def test_options_that_would_do_nothing_or_twice_are_refused(run, command, words, tmp_path,
                                                             monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = invoke(*command, run=run)
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    assert all(w in result.output for w in words), result.output
    assert list(work.iterdir()) == []  # refused before anything was made


def test_the_target_listed_in_features_is_refused(tmp_path):
    data = tmp_path / "s.csv"
    data.write_text("t,value,x\n" + "".join(f"{i},{i % 7},{i % 3}\n" for i in range(200)))
    one_line(invoke("forecast", "train", data, "--time-column", "t", "--target", "value",
                    "--features", "value,x", "--out", tmp_path / "r"),
             "--features lists the target 'value'")
    assert not (tmp_path / "r").exists()


# --- the fourth adversarial pass --------------------------------------------------------------

def test_an_export_never_replaces_what_appeared_at_out_while_it_ran(run, tmp_path,
                                                                    monkeypatch):
    from seqmodels.lm import export as lm_export

    out = tmp_path / "m.tflite"
    real = lm_export._tflite

    def user_writes_meanwhile(saved_model):
        out.write_text("user data")
        return real(saved_model)

    monkeypatch.setattr(lm_export, "_tflite", user_writes_meanwhile)
    with pytest.raises(SeqmodelsError, match="exists; pass force"):
        seqmodels.load(run).export("tflite", out)
    assert out.read_text() == "user data"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_force_replaces_only_an_earlier_export(run, tmp_path):
    out = tmp_path / "m.tflite"
    assert invoke("export", run, "--format", "tflite", "--out", out).exit_code == 0
    first = out.read_bytes()
    again = invoke("export", run, "--format", "tflite", "--out", out, "--force")
    assert again.exit_code == 0 and out.read_bytes()[4:8] == b"TFL3" == first[4:8]
    model = (run / "model.keras").read_bytes()
    one_line(invoke("export", run, "--format", "tflite", "--out", run / "model.keras", "--force"),
             "model.keras", "is a file of the run", "never writes an output over it")
    assert (run / "model.keras").read_bytes() == model


def test_force_replaces_a_savedmodel_folder_only_if_seqmodels_exported_it(run, tmp_path):
    """A user's folder holding a saved_model.pb (and their other files) is never deleted; an
    earlier export is replaced, and keeps the umask's permissions, not 700."""
    mine = tmp_path / "mymodels"
    (mine / "sub").mkdir(parents=True)
    (mine / "saved_model.pb").write_bytes(b"mine")
    (mine / "thesis.txt").write_text("draft")
    (mine / "sub" / "other.bin").write_bytes(b"x")
    before = snapshot(mine)
    one_line(invoke("export", run, "--out", mine, "--force"), "not a SavedModel folder that "
             "seqmodels exported")
    assert snapshot(mine) == before
    out = tmp_path / "sm"
    assert invoke("export", run, "--out", out).exit_code == 0
    assert json.loads((out / "assets.extra" / "seqmodels.json").read_text())["exported_by"] \
        == "seqmodels"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    for added in ("notes.txt", "variables/NOTES.txt", "assets/mydata/data.csv",
                  "assets.extra/more.json"):  # no longer only our export: refused, kept
        (out / added).parent.mkdir(parents=True, exist_ok=True)
        (out / added).write_text("added by the user")
        one_line(invoke("export", run, "--out", out, "--force"), "not a SavedModel folder")
        assert (out / added).read_text() == "added by the user"
        (out / added).unlink()
    (out / "assets" / "mydata").rmdir()
    (out / "assets" / "link").symlink_to(tmp_path / "mymodels", target_is_directory=True)
    one_line(invoke("export", run, "--out", out, "--force"), "not a SavedModel folder")
    (out / "assets" / "link").unlink()
    assert invoke("export", run, "--out", out, "--force").exit_code == 0


def test_a_linked_export_folder_is_refused(run, tmp_path):
    other = bystander(tmp_path)
    before = snapshot(other)
    (run / "export").symlink_to(other, target_is_directory=True)
    one_line(invoke("export", run, "--format", "tflite"), "export", "symbolic link")
    assert snapshot(other) == before


def test_no_cache_means_no_cache_when_training(tmp_path, cat_text, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    args = ["--layers", "1", "--units", "8", "--embedding-dim", "4", "-T", "16",
            "--batch-size", "8", "--steps-per-epoch", "2", "--epochs", "1", "-q", "--no-cache"]
    assert invoke("train", corpus, "--out", tmp_path / "r", *args).exit_code == 0
    resumed = invoke("train", "--resume", tmp_path / "r", "--epochs", "2", "--no-cache", "-q")
    assert resumed.exit_code == 0, resumed.output
    cache = tmp_path / "xdg" / "seqmodels"
    assert not cache.exists() or not any(cache.iterdir())


def test_generate_into_a_closed_pipe_stops_quietly(run):
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(run.parent / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "seqmodels", "generate", str(run), "-n",
                             "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.read(10)  # as `| head -c 10` does
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141 and "Error" not in err and "Traceback" not in err, err


# --- seventh pass: codecs, file names, sizes ------------------------------------------------

TINY = ["--layers", "1", "--units", "8", "--embedding-dim", "4", "-T", "16", "--batch-size", "8",
        "--steps-per-epoch", "2", "--epochs", "1", "-q"]


def test_a_codec_that_does_not_say_where_it_failed_gives_one_line(tmp_path):
    """idna raises a bare UnicodeError, not a UnicodeDecodeError with a position."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("xn--abc-.example\n" * 200)  # a label that does not round-trip
    one_line(invoke("train", corpus, "--out", tmp_path / "r", "--encoding", "idna", *TINY),
             "c.txt", "is not valid idna text", "--encoding utf-8")
    assert not (tmp_path / "r").exists()


def test_a_codec_without_other_error_handlers_says_so(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("example.org\n" * 50)
    one_line(invoke("corpus", corpus, "--encoding", "idna", "--errors", "replace"),
             "the idna codec supports only --errors strict")


def test_a_codec_that_cannot_be_decoded_a_block_at_a_time_is_refused(tmp_path):
    """punycode decodes each block on its own: a file over one block was refused as invalid."""
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(("héllo wörld " * 200_000).encode("punycode"))
    for command in (["corpus", corpus], ["train", corpus, "--out", tmp_path / "r", *TINY]):
        result = invoke(*command, "--encoding", "punycode")
        assert result.exit_code == 2 and "cannot be decoded a block at a time" in result.output
    with pytest.raises(SeqmodelsError, match="cannot be decoded a block at a time"):
        prepare_corpus(DataConfig(corpus=[str(corpus)], encoding="punycode"),
                       cache_dir=tmp_path / "cache")


def test_a_corpus_whose_file_name_is_not_utf8_trains_resumes_and_evaluates(
        tmp_path, cat_text, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / os.fsdecode(b"bad\xff\xfe.txt")
    corpus.write_text(cat_text)
    out = tmp_path / "r"
    first = invoke("train", corpus, "--out", out, *TINY)
    assert first.exit_code == 0, first.output
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["data"]["corpus"] == [str(corpus)]  # escaped in the file, the same name read back
    resumed = invoke("train", "--resume", out, "--epochs", "2", "-q")
    assert resumed.exit_code == 0, resumed.output
    evaluated = invoke("evaluate", out)
    assert evaluated.exit_code == 0 and "perplexity" in evaluated.output, evaluated.output


def test_corpus_export_shows_a_name_that_is_not_utf8_as_it_is(tmp_path, cat_text, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus, out = tmp_path / "c.txt", tmp_path / os.fsdecode(b"o\xff.txt")
    corpus.write_text(cat_text)
    result = CliRunner().invoke(cli, ["corpus", str(corpus), "--export", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert out.read_text() and os.fsencode(out) in result.stderr_bytes
    assert b"\\udcff" not in result.stderr_bytes


def test_an_export_path_that_is_not_utf8_is_refused_in_one_line(run, tmp_path):
    out = tmp_path / os.fsdecode(b"m\xff.tflite")
    one_line(invoke("export", run, "--format", "tflite", "--out", out), "not UTF-8", "--out")
    assert not os.path.lexists(out)


HUGE = str(10**23)  # beyond int64


@pytest.mark.parametrize("option", ["--units", "--embedding-dim"])
def test_a_model_too_large_for_memory_is_refused_before_the_run_starts(tmp_path, cat_text,
                                                                        option):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    args = [*TINY, option, HUGE]
    one_line(invoke("train", corpus, "--out", tmp_path / "r", *args), "parameters",
             "GiB of memory", option)
    assert not (tmp_path / "r").exists()


def test_a_forecast_model_too_large_for_memory_is_refused(tmp_path):
    pytest.importorskip("pandas")
    csv = _timed_csv(tmp_path / "s.csv", range(200))
    result = invoke("forecast", "train", csv, "--target", "y", "--time-column", "t",
                    "--out", tmp_path / "r", "--units", HUGE, "--epochs", "1")
    one_line(result, "parameters", "GiB of memory", "--units")
    assert not (tmp_path / "r").exists()


def test_the_parameter_estimate_is_close_to_keras_count():
    """The memory check must not refuse the models people train: its estimate is Keras' own
    count, or a little above it (LSTM and SimpleRNN have one bias vector, not two)."""
    from seqmodels.models.builders import build_language_model, build_regression_model
    from seqmodels.models.config import ModelConfig

    for cell in ("lstm", "gru", "rnn"):
        config = ModelConfig(cell=cell, layers=3, units=12, embedding_dim=5)
        counted = build_language_model(40, config).count_params()
        assert counted <= config.parameter_estimate(40, 40) <= 1.1 * counted
        counted = build_regression_model(3, 2, config, 10).count_params()
        assert counted <= config.parameter_estimate(-3, 2) <= 1.1 * counted


@pytest.mark.parametrize("command", [["train", "{corpus}", "--out", "{out}"],
                                     ["forecast", "train", "{csv}", "--out", "{out}"]])
def test_a_layer_count_beyond_the_limit_is_a_usage_error(tmp_path, command):
    """A million layers used to build for hours; the option names its range instead."""
    args = [a.format(corpus=tmp_path / "c.txt", csv=tmp_path / "s.csv", out=tmp_path / "r")
            for a in command]
    result = invoke(*args, "--layers", "1000000")
    assert result.exit_code == 2 and "1<=x<=100" in result.output, result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option, value, words", [
    ("--units", HUGE, ["parameters", "GiB of memory"]),
    ("--batch-size", HUGE, ["--batch-size", "GiB", "use a smaller --batch-size or --seq-len"]),
    ("--batch-size", "100000000", ["--batch-size 100,000,000", "GiB"]),
])
def test_diagnose_refuses_what_would_not_fit_in_memory(tmp_path, cat_text, monkeypatch, option,
                                                       value, words):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    one_line(invoke("diagnose", "--corpus", corpus, "-T", "10", option, value), *words)


@pytest.mark.parametrize("samples, length", [(HUGE, "5"), ("100000000", "5"),
                                             ("3", "9999999999999")])
def test_generate_refuses_a_batch_that_would_not_fit_in_memory(run, samples, length):
    """A hundred million streams grew to gigabytes before failing; 1e20 was a traceback."""
    one_line(invoke("generate", run, "-s", samples, "-n", length, "--format", "jsonl"),
             "--num-samples", "GiB of memory", "a single sample streams")


def test_one_streamed_sample_may_be_as_long_as_asked(run):
    """One sample is printed as it grows, so its --length is not refused (only batches are)."""
    result = invoke("generate", run, "-n", "9999999999999", "--stop-at", "e")
    assert result.exit_code == 0 and result.output.rstrip().endswith("e"), result.output


@pytest.fixture
def memory_24_gib(monkeypatch):
    """The memory checks judged as on the 24 GiB machine the figures come from."""
    from seqmodels import settings

    monkeypatch.setattr(settings, "physical_memory", lambda: 24 * 2**30)


@pytest.mark.parametrize("args", [
    ["--embedding-dim", "20000000", "--batch-size", "8", "-T", "16"],  # the kernel killed 1e7
    ["--embedding-dim", "2000000", "--batch-size", "64", "-T", "100"],  # activations: 51 GB
])
def test_a_batch_whose_activations_would_not_fit_is_refused(tmp_path, cat_text, memory_24_gib,
                                                            args):
    """The check counts a batch's activations and a checkpoint's copy of the weights too: these
    passed a weights-only estimate, then filled memory, wrote an 11 GB checkpoint and were
    killed."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text * 40)  # enough windows for one batch of 64 x 100
    one_line(invoke("train", corpus, "--out", tmp_path / "r", *TINY, *args), "parameters",
             "a batch of", "GiB of memory", "--batch-size or --seq-len")
    assert not (tmp_path / "r").exists()


def test_a_forecast_batch_beyond_int64_is_one_batch_of_all_windows(tmp_path):
    """--batch-size 2**63 was a traceback from tf.data that left a run blocking its --out."""
    pytest.importorskip("pandas")
    csv = _timed_csv(tmp_path / "s.csv", range(200))
    result = invoke("forecast", "train", csv, "--target", "y", "--time-column", "t", "--out",
                    tmp_path / "r", "--units", "4", "--epochs", "1", "--steps-per-epoch", "2",
                    "-q", "--batch-size", str(2**63))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "model.keras").exists()


@pytest.mark.parametrize("forecast", [False, True])
def test_tensorboard_under_a_name_that_is_not_utf8_is_refused_before_the_run(tmp_path, cat_text,
                                                                              forecast):
    out = tmp_path / os.fsdecode(b"tb\xff")
    if forecast:
        pytest.importorskip("pandas")
        csv = _timed_csv(tmp_path / "s.csv", range(200))
        args = ["forecast", "train", csv, "--target", "y", "--time-column", "t", "--units", "4",
                "--epochs", "1", "-q"]
    else:
        corpus = tmp_path / "c.txt"
        corpus.write_text(cat_text)
        args = ["train", corpus, *TINY]
    one_line(invoke(*args, "--tensorboard", "--out", out), "not UTF-8", "--tensorboard")
    assert not os.path.lexists(out)


def test_tensorboard_under_a_relative_name_in_a_folder_that_is_not_utf8_works(
        tmp_path, cat_text, monkeypatch):
    """TensorFlow is given the name as typed, so only that name has to be UTF-8."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / os.fsdecode(b"d\xff")
    folder.mkdir()
    (folder / "c.txt").write_text(cat_text)
    monkeypatch.chdir(folder)
    result = invoke("train", "c.txt", *TINY, "--tensorboard", "--out", "r")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (folder / "r" / "tensorboard").iterdir()][0].startswith("events.")


# --- tenth adversarial pass ----------------------------------------------------------------------

def _series(path, text, **config):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    path.write_text(text)
    return read_series(SeriesConfig(csv=str(path), **config).with_defaults())


def _series_error(path, text, **config) -> str:
    with pytest.raises(SeqmodelsError) as caught:
        _series(path, text, **config)
    return str(caught.value)


def test_headers_equal_once_stripped_are_refused(tmp_path):
    text = "t,a ,a\n" + "".join(f"{i},{i % 7},{i % 5}\n" for i in range(50))
    assert "column 'a' appears twice" in _series_error(tmp_path / "d.csv", text,
                                                       time_column="t", target="a")


@pytest.mark.parametrize("target, features", [("date", []), ("co2", ["date"])])
def test_the_time_column_is_not_a_target_or_feature(target, features):
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import SeriesConfig, read_series

    with pytest.raises(SeqmodelsError, match="names the time column 'date'"):
        read_series(SeriesConfig(csv="co2", target=target, features=features).with_defaults())


def test_errors_name_the_real_line_after_blank_lines_and_quoted_line_breaks(tmp_path):
    blank = "t,value\n1,1.0\n2,2.0\n\n  \n3,3.0\n4,x\n5,5.0\n6,6.0\n"
    series = _series(tmp_path / "b.csv", blank, time_column="t", target="value")
    assert series.lines == [2, 3, 6, 7, 8, 9] and series.describe_row(3) == "line 7 (4)"
    quoted = 't,value,note\n1,1.0,"a\nb"\n2,2.0,c\n3,,d\n'
    series = _series(tmp_path / "q.csv", quoted, time_column="t", target="value")
    assert series.lines == [2, 4, 5] and series.describe_row(2) == "line 5 (3)"


def test_one_unreadable_cell_of_a_numeric_time_column_is_named(tmp_path):
    rows = [f"{i},{i % 5}" for i in range(300)]
    rows[150] = ",0.5"
    message = _series_error(tmp_path / "t.csv", "t,value\n" + "\n".join(rows) + "\n",
                            time_column="t")
    assert "line 152: cannot read the time ''" in message and "(1 unreadable)" in message


def test_float_times_just_off_the_grid_after_a_long_gap_are_irregular(tmp_path):
    times = [*range(300), *(200000.4 + i for i in range(300))]
    text = "t,value\n" + "".join(f"{t},{i % 5}\n" for i, t in enumerate(times))
    assert "irregular timestamps" in _series_error(tmp_path / "s.csv", text, time_column="t")
    dates = "t,value\n2020-01-01,1\n2020-01-02,2\n2022-09-28 00:05,3\n"  # 1000 days + 5 min
    assert "irregular timestamps" in _series_error(tmp_path / "d.csv", dates, time_column="t")
    tenths = "t,value\n" + "".join(f"{i / 10},{i % 5}\n" for i in range(3000))
    assert _series(tmp_path / "f.csv", tenths, time_column="t").step == pytest.approx(0.1)


def test_predicted_float_times_keep_every_digit():
    pytest.importorskip("pandas")
    from seqmodels.forecast.series import format_time, future_times

    when = [format_time(t) for t in future_times(np.float64(1600000149.5), 0.5, 3)]
    assert when == ["1600000150", "1600000150.5", "1600000151"]


def _fconfig(frun, **data):
    path = frun / "config.json"
    config = json.loads(path.read_text())
    config["data"].update(data)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("command", [["evaluate", "{run}", "--no-plot"],
                                     ["predict", "{run}", "{run}/../s.csv"],
                                     ["train", "--resume", "{run}", "--epochs", "3"]])
def test_a_stored_target_that_is_not_a_column_name_is_refused(frun, forecast_run, command):
    shutil.copy(forecast_run.parent / "s.csv", frun.parent / "s.csv")
    _fconfig(frun, target=None)
    one_line(invoke("forecast", *command, run=frun), "config.json", "'data.target'")


@pytest.mark.parametrize("command", [["evaluate", "{run}", "--no-plot"],
                                     ["predict", "{run}", "{run}/../s.csv"]])
def test_a_window_the_model_does_not_take_is_refused(frun, forecast_run, command):
    shutil.copy(forecast_run.parent / "s.csv", frun.parent / "s.csv")
    _fconfig(frun, window=9)
    one_line(invoke("forecast", *command, run=frun), "model.keras", "shape (8, 1)",
             "--window 9")
    if command[0] == "evaluate":  # resume refuses it before training on the wrong windows
        history = (frun / "history.csv").read_text()
        one_line(invoke("forecast", "train", "--resume", frun, "--epochs", "3"), "model.keras",
                 "shape (8, 1)", "--window 9")
        assert (frun / "history.csv").read_text() == history


def test_forecast_evaluate_refuses_a_run_csv_changed_since_training(frun, forecast_run):
    csv = forecast_run.parent / "s.csv"
    original = csv.read_text()
    try:
        csv.write_text("\n".join(original.splitlines()[:151]) + "\n")  # 150 of its 200 rows
        one_line(invoke("forecast", "evaluate", frun, "--no-plot"), "s.csv",
                 "changed since training", "explicitly as CSV")
        explicit = invoke("forecast", "evaluate", frun, csv, "--no-plot")
        assert explicit.exit_code == 0, explicit.output
    finally:
        csv.write_text(original)


def test_a_run_on_a_builtin_series_reads_the_builtin_wherever_it_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    out = tmp_path / "r"
    assert invoke("forecast", "train", "nile", "--units", "4", "--epochs", "1", "--window", "5",
                  "-q", "--out", out).exit_code == 0
    before = invoke("forecast", "evaluate", out, "--no-plot", "--json")
    assert before.exit_code == 0, before.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nile").write_text("year,volume\n" + "".join(f"{1871 + i},{5000 + i}\n"
                                                             for i in range(100)))
    after = invoke("forecast", "evaluate", out, "--no-plot", "--json")
    assert after.exit_code == 0, after.output
    assert json.loads(after.output)["metrics"] == json.loads(before.output)["metrics"]
    assert json.loads(after.output)["csv"] == "nile"
    assert invoke("forecast", "train", "--resume", out, "--epochs", "2", "-q").exit_code == 0


@pytest.mark.parametrize("args, words", [
    (["--features", "f", "--missing", "drop"],
     ["--missing drop removed all 240 rows of the train part", "column 'f' lacks 240"]),
    (["--splits", "1e-300,0.5,0.5"], ["leaves the train part of 300 rows empty"]),
])
def test_an_empty_forecast_part_is_blamed_on_its_cause(tmp_path, args, words):
    pytest.importorskip("pandas")
    csv = tmp_path / "lf.csv"
    csv.write_text("t,value,f\n" + "".join(f"{i},{i % 7},{'' if i < 250 else i}\n"
                                           for i in range(300)))
    one_line(invoke("forecast", "train", csv, "--time-column", "t", "--target", "value", *args,
                    "--units", "4", "--epochs", "1", "-q", "--out", tmp_path / "r"), *words)


def test_the_forecast_summary_counts_epochs_not_validations(tmp_path):
    pytest.importorskip("pandas")
    csv = _timed_csv(tmp_path / "s.csv", range(200))
    result = invoke("forecast", "train", csv, "--time-column", "t", "--target", "y", "--units",
                    "4", "--epochs", "2", "--eval-every", "2", "--batch-size", "32", "--out",
                    tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) > 3
    assert "Training finished after 2 epoch(s)" in result.output


@pytest.mark.parametrize("name, words", [
    ("checkpoints/latest.npz", "is a folder where the run keeps a file"),
    ("history.csv", "is a folder where the run keeps a file"),
    ("model.keras", "not a regular file"),  # read on resume, and refused there
])
def test_a_folder_where_a_run_keeps_a_file_is_refused_before_training(run, name, words):
    """latest.npz as a folder was skipped: an epoch was trained again, then the checkpoint
    could not replace the folder, on every resume."""
    path = run / name
    path.unlink()
    path.mkdir()
    history = (run / "history.csv").read_text() if name != "history.csv" else None
    one_line(invoke("train", "--resume", run, "--epochs", "2", "-q"), name, words)
    assert history is None or (run / "history.csv").read_text() == history


def test_a_value_beyond_float32_in_a_later_part_is_named_before_training(tmp_path):
    """1e39 in the validation part made the validation loss inf, blamed on --lr."""
    pytest.importorskip("pandas")
    csv = tmp_path / "v.csv"
    csv.write_text("t,value\n" + "".join(f"{i},{1e39 if i == 260 else i % 7}\n"
                                         for i in range(300)))
    one_line(invoke("forecast", "train", csv, "--time-column", "t", "--units", "4", "--epochs",
                    "1", "-q", "--out", tmp_path / "r"), "line 262", "1e+39",
             "beyond float32's range")
    assert not (tmp_path / "r").exists()


def test_corpus_export_never_writes_over_its_own_input(tmp_path, cat_text, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    one_line(invoke("corpus", tmp_path, "--export", corpus, "--force", "--lowercase"),
             "is one of the corpus files", "never writes an output over it")
    assert corpus.read_text() == cat_text


def _rewrite_model(run, change):
    from seqmodels.models.saving import load_model, save_model_atomic

    model = load_model(run / "model.keras")
    change(model)
    save_model_atomic(model, run / "model.keras")


def test_a_perplexity_beyond_a_float_is_refused_not_capped(run):
    """exp(700) was printed (a 305-digit figure) for a cross-entropy of 5e30."""
    def huge_bias(model):
        kernel, bias = model.get_layer("logits").get_weights()
        bias[5] = 1e4  # token 5 is certain: every other target costs 1e4 nats
        model.get_layer("logits").set_weights([kernel, bias])

    _rewrite_model(run, huge_bias)
    one_line(invoke("evaluate", run), "cross-entropy is", "too large for a float")


def test_logits_that_overflow_are_refused_not_sampled_as_an_id_outside_the_vocabulary(run):
    """NaN/inf logits made the sampler draw id V, and the next step failed in TensorFlow."""
    def overflow(model):
        gru = model.get_layer("rnn_0")
        kernel, recurrent, bias = gru.get_weights()
        units = recurrent.shape[0]
        bias[:, :units], bias[:, 2 * units:] = -50.0, 50.0  # update gate 0, candidate 1: h = 1
        gru.set_weights([kernel * 0, recurrent * 0, bias])
        kernel, bias = model.get_layer("logits").get_weights()
        model.get_layer("logits").set_weights([kernel * 0 + 3e38, bias * 0 + 3e38])  # -> inf

    _rewrite_model(run, overflow)
    one_line(invoke("generate", run, "-n", "20", "--seed", "1"), "not finite numbers",
             "nothing to sample")


def test_a_diverged_run_reports_its_figures_without_a_traceback(tmp_path, cat_text, monkeypatch):
    """The summary's exp(best loss) raised OverflowError; history.csv held a capped exp(700)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    out = tmp_path / "r"
    result = invoke("train", corpus, *[a for a in TINY if a != "-q"], "--lr", "1e30", "--out",
                    out)
    assert result.exit_code == 0, result.output
    row = list(csv.DictReader(open(out / "history.csv")))[-1]
    assert float(row["val_loss"]) > 710  # diverged: exp(val_loss) is no float
    assert row["val_perplexity"] == "" and "perplexity beyond any float" in result.output


def test_a_vocabulary_of_only_pad_and_unk_is_refused(tmp_path, cat_text, run):
    """--min-freq above every count trained a model whose every target was <unk>: accuracy 0,
    top-5 100%, and generate complained of the '<unk>' prompt it made itself."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    one_line(invoke("train", corpus, *TINY, "--min-freq", "100000", "--out", tmp_path / "r"),
             "--min-freq 100,000", "<pad> and <unk> alone")
    (run / "vocab.json").write_text(json.dumps(
        {"format": "seqmodels.vocab", "version": 1, "tokens": ["<pad>", "<unk>"]}))
    one_line(invoke("generate", run, "-n", "5"), "vocab.json", "besides <pad> and <unk>")


def test_generate_takes_its_default_prompt_from_a_changed_corpus_in_its_own_ids(
        tmp_path, cat_text, monkeypatch):
    """The run's vocabulary decoded the changed corpus' ids: 'id 81 is outside the vocabulary'."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text.replace("\n", " "))  # no newline: the prompt comes from the text
    out = tmp_path / "r"
    assert invoke("train", corpus, *TINY, "--out", out).exit_code == 0
    corpus.write_text("ÆØÅ§¶ new letters first. " + cat_text.replace("\n", " "))
    result = invoke("generate", out, "-n", "10", "--seed", "1")
    assert result.exit_code == 0, result.output


def test_a_cache_hit_reports_the_files_given_not_those_it_was_built_from(
        tmp_path, cat_text, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first, second = tmp_path / "x1.txt", tmp_path / "x2.txt"
    first.write_text(cat_text)
    assert invoke("corpus", first, "-q").exit_code == 0
    first.rename(second)
    result = invoke("corpus", second, "-q", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files"] == [str(second)] and "hit" in str(report.get("cache", "")), report


def test_no_seasonal_naive_after_missing_drop(tmp_path):
    """Dropped rows shifted the season: its RMSE was 40 times too large."""
    pytest.importorskip("pandas")
    csv = tmp_path / "w.csv"
    start = np.datetime64("2020-01-01")
    csv.write_text("date,value\n" + "".join(
        f"{start + i},{'' if i == 645 else 10 + (i % 7)}\n" for i in range(700)))
    out = tmp_path / "r"
    assert invoke("forecast", "train", csv, "--time-column", "date", "--missing", "drop",
                  "--units", "4", "--epochs", "1", "-q", "--out", out).exit_code == 0
    report = json.loads(invoke("forecast", "evaluate", out, "--no-plot", "--json").stdout)
    assert not any(name.startswith("seasonal naive") for name in report["metrics"])
    assert any("no seasonal naive forecast" in note for note in report["notes"])


def test_predict_notes_times_converted_to_utc(tmp_path):
    pytest.importorskip("pandas")
    csv = tmp_path / "dst.csv"
    start = np.datetime64("2021-03-20T00:00")
    rows = [(start + np.timedelta64(i, "h"), i % 5) for i in range(400)]
    csv.write_text("time,value\n" + "".join(  # Berlin: +01:00, +02:00 from 28 March 01:00 UTC
        f"{t + np.timedelta64(1 if t < np.datetime64('2021-03-28T01:00') else 2, 'h')}"
        f"{'+01:00' if t < np.datetime64('2021-03-28T01:00') else '+02:00'},{v}\n"
        for t, v in rows))
    out = tmp_path / "r"
    assert invoke("forecast", "train", csv, "--time-column", "time", "--units", "4", "--epochs",
                  "1", "-q", "--out", out).exit_code == 0
    result = invoke("forecast", "predict", out, csv)
    assert result.exit_code == 0, result.output
    assert "note: timestamps with different UTC offsets were converted to UTC" in result.stderr


def test_forecast_evaluate_beyond_memory_is_refused(frun, monkeypatch):
    from seqmodels import settings

    monkeypatch.setattr(settings, "physical_memory", lambda: 2**8)  # 12 windows need 960 B
    one_line(invoke("forecast", "evaluate", frun, "--no-plot"), "test windows of --horizon 1",
             "GiB of memory", "shorter CSV")


@pytest.mark.parametrize("text, args, words", [
    ("t,y\n" + "".join(f"{i},{i % 5}\n" for i in range(50)), ["--time-column", ""],
     ["--time-column is empty"]),  # was row order without a word
    ("a,b,c\n", [], ["no data rows"]),  # asked for --target
])
def test_odd_forecast_inputs_are_named(tmp_path, text, args, words):
    pytest.importorskip("pandas")
    csv = tmp_path / "s.csv"
    csv.write_text(text)
    one_line(invoke("forecast", "train", csv, *args, "--out", tmp_path / "r"), *words)


def test_a_stored_empty_csv_name_is_refused(frun):
    _fconfig(frun, csv="")
    one_line(invoke("forecast", "evaluate", frun, "--no-plot"), "config.json", "empty name")


def test_a_linked_latest_checkpoint_is_named_as_a_link(run, tmp_path):
    mine = tmp_path / "user.txt"
    mine.write_text("mine")
    latest = run / "checkpoints" / "latest.npz"
    latest.unlink()
    latest.symlink_to(mine)
    result = invoke("train", "--resume", run, "--epochs", "2", "-q")
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "a link to a file that is not a checkpoint" in \
        result.stderr
    assert mine.read_text() == "mine" and not latest.is_symlink()  # replaced, not written through


# --- eleventh adversarial pass ----------------------------------------------------------------

def _train_series(tmp_path, name, header, times, *args):
    pytest.importorskip("pandas")
    csv = tmp_path / f"{name}.csv"
    csv.write_text(f"{header},value\n" + "".join(f"{t},{5 + np.sin(i / 3):.3f}\n"
                                                 for i, t in enumerate(times)))
    out = tmp_path / name
    result = invoke("forecast", "train", csv, "--time-column", header, "--units", "4",
                    "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "-q",
                    *args, "--out", out)
    assert result.exit_code == 0, result.output
    return csv, out


@pytest.mark.parametrize("times", [
    [f"{9990 + i // 12}-{i % 12 + 1:02d}-01" for i in range(120)],  # monthly into year 10000
    [str(np.datetime64("9999-12-30") - np.timedelta64(119 - i, "D")) for i in range(120)],
])
def test_predicted_dates_after_year_9999_are_one_line(tmp_path, times):
    csv, out = _train_series(tmp_path, "late", "date", times, "--window", "5", "--horizon", "3")
    one_line(invoke("forecast", "predict", out, csv), "pass the year 9999")


def test_a_test_split_matplotlib_cannot_date_is_plotted_by_row(tmp_path):
    csv, out = _train_series(tmp_path, "years", "date", [9880 + i for i in range(120)])
    result = invoke("forecast", "evaluate", out)  # the plot is drawn by default
    assert result.exit_code == 0, result.output
    assert (out / "forecast-test.png").stat().st_size > 0


def test_negative_whole_times_are_numbers_not_years_bc(tmp_path):
    csv, out = _train_series(tmp_path, "neg", "t", [-200 + i for i in range(120)])
    result = invoke("forecast", "predict", out, csv)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("-80,")  # the step after -81
    assert invoke("forecast", "evaluate", out).exit_code == 0


def _set_optimizer_slot(run, slot, change) -> None:
    """Replace the first optimizer array named ...slot in both checkpoints by change(array)."""
    for name in ("latest.npz", "previous.npz"):
        path = run / "checkpoints" / name
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        names = json.loads(bytes(arrays["state.json"]).decode())["names"]["optimizer"]
        i = next(i for i, n in enumerate(names) if n.endswith(slot))
        arrays[f"optimizer/{i}"] = change(arrays[f"optimizer/{i}"])
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("slot", ["iteration", "velocity"])
def test_negative_optimizer_state_is_damage_not_a_nan_blamed_on_the_rate(run, slot):
    """A negative Adam velocity made the first resumed step NaN: 'try a lower --lr'."""
    _set_optimizer_slot(run, slot, lambda a: -np.ones_like(a))
    before = snapshot(run)
    result = invoke(*RESUME, run=run)
    assert re.search(r"^warning: .*latest.npz.*negative value", result.stderr, re.M)  # then
    one_line(result, "previous.npz", "damaged checkpoint", slot, "negative value")  # previous
    assert snapshot(run) == before


# --- twelfth adversarial pass -----------------------------------------------------------------

@pytest.mark.parametrize("first", ["0000-01-02", "-0001-01-02"])
def test_dates_before_the_year_1_are_refused_in_one_line(tmp_path, first):
    """strftime of the year 0 raised in the 'not sorted' message; predict blamed the year 9999."""
    assert "before the year 1" in _series_error(
        tmp_path / "y0.csv", f"t,v\n{first},1\n0001-01-01,2\n0001-01-03,3\n", time_column="t")
    csv = tmp_path / "y0b.csv"
    csv.write_text("t,v\n" + "".join(f"0000-01-{d:02d},{d % 5}\n" for d in range(1, 32)))
    one_line(invoke("forecast", "train", csv, "--time-column", "t", "--window", "3", "--splits",
                    "0.4,0.3,0.3", "-q", "--out", tmp_path / "r"), "line 2", "before the year 1")


def test_the_year_1_prints_with_four_digits():
    pd = pytest.importorskip("pandas")
    from seqmodels.forecast.series import format_time

    assert format_time(pd.Timestamp("0001-02-03")) == "0001-02-03"
    assert format_time(pd.Timestamp("0001-02-03 04:05")) == "0001-02-03 04:05:00"


@pytest.mark.parametrize("command", [("evaluate", "-q"), ("generate", "--length", "3")])
def test_a_history_cell_past_the_csv_field_limit_is_damage(run, command):
    """csv.Error 'field larger than field limit' escaped as a traceback. Evaluating and
    generating no longer read the history at all; reading it is one line."""
    from seqmodels.training.rundir import RunDir

    history = run / "history.csv"
    header, first, *_ = history.read_text().splitlines()
    history.write_text(f"{header}\n\"{'1' * 200_000}\n")
    result = invoke(*command, run)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    with pytest.raises(SeqmodelsError, match="history.csv: damaged .*field") as info:
        RunDir(run).read_history()
    assert "\n" not in str(info.value)


def test_corpus_export_never_writes_over_the_stopwords_file(tmp_path, cat_text, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus, stop = tmp_path / "c.txt", tmp_path / "stop.txt"
    corpus.write_text(cat_text)
    stop.write_text("the\nand\n")
    one_line(invoke("corpus", corpus, "--level", "word", "--stopwords", stop, "--export", stop,
                    "--force"), "is the --stopwords file", "never writes an output over it")
    assert stop.read_text() == "the\nand\n"


@pytest.mark.parametrize("slot, change, words", [
    ("iteration", lambda a: np.full_like(a, 2**63 - 1), ("optimizer counts", "steps, the run")),
    ("iteration", lambda a: np.full(a.shape, 2.0), ("stored as float64", "int64")),
    ("velocity", lambda a: np.full(a.shape, 1e300), ("stored as float64", "float32")),
    ("velocity", lambda a: np.ones(a.shape, bool), ("stored as bool", "float32")),
])
def test_optimizer_state_that_cannot_be_this_run_is_damage(run, slot, change, words):
    """An absurd step count or a velocity beyond float32 became a NaN step blamed on --lr."""
    _set_optimizer_slot(run, slot, change)
    before = snapshot(run)
    if "optimizer counts" in words:  # seen on reading: latest refused, then previous
        result = invoke(*RESUME, run=run)
        assert re.search(r"^warning: .*latest.npz: damaged checkpoint", result.stderr, re.M)
        one_line(result, "previous.npz", "damaged checkpoint", *words)
    else:  # seen against the model's variables, before any is assigned
        one_line(invoke(*RESUME, run=run), "latest.npz", "damaged checkpoint", *words)
    assert snapshot(run) == before


def test_a_training_split_of_no_tokens_is_named_not_blamed_on_the_cache(tmp_path, cat_text,
                                                                         monkeypatch):
    """The empty vocabulary it gave was written to the cache, then refused as a damaged entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    for _ in range(2):  # nothing is left in the cache to be refused the second time
        one_line(invoke("corpus", corpus, "--splits", "1e-320,0.5,0.5"),
                 "training split holds none", "--splits")


def test_a_file_that_cannot_be_made_beside_an_output_is_named_after_the_output(
        tmp_path, cat_text, monkeypatch):
    """'--export /proc/self/mem --force' named seqmodels' own temporary file, not the output."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOENT, "No such file or directory", "/x/.seqmodels-tmp-mem.tmp")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    invoke("corpus", corpus)  # the cache is written before mkstemp fails
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = invoke("corpus", corpus, "--export", tmp_path / "out.txt")
    one_line(result, f"{tmp_path / 'out.txt'}: cannot create a file in {tmp_path}")
    assert "seqmodels-tmp" not in result.stderr


DIAGNOSE_TINY = ("--batch-size", "2", "-T", "8", "--units", "4", "--cells", "rnn")


@pytest.mark.parametrize("victim", ["corpus", "config.json", "vocab.json", "checkpoints"])
def test_diagnose_never_plots_over_its_corpus_or_a_run_file(run, tmp_path, cat_text, victim):
    """--plot c.txt --force (or the run's config.json) was replaced by a PNG."""
    if victim == "corpus":
        corpus = tmp_path / "c.txt"
        corpus.write_text(cat_text)
        args, target = ("diagnose", *DIAGNOSE_TINY, "--corpus", corpus), corpus
    else:
        target = run / (victim if victim != "checkpoints" else "checkpoints/latest.npz")
        args = ("diagnose", run)
    before = target.read_bytes()
    one_line(invoke(*args, "--plot", target, "--force"), str(target),
             "never writes an output over it")
    assert target.read_bytes() == before


def test_forecast_evaluate_never_plots_over_its_csv_or_a_run_file(frun, forecast_run, tmp_path):
    csv = tmp_path / "s.csv"  # a copy the run now names, so a failure spoils no other test
    shutil.copy(forecast_run.parent / "s.csv", csv)
    config = json.loads((frun / "config.json").read_text())
    config["data"]["csv"] = str(csv)
    (frun / "config.json").write_text(json.dumps(config))
    for args, target in (((frun,), csv), ((frun, csv), csv), ((frun,), frun / "config.json"),
                         ((frun,), frun / "scaler.json")):
        before = target.read_bytes()
        one_line(invoke("forecast", "evaluate", *args, "--plot", target, "--force"),
                 str(target), "never writes an output over it")
        assert target.read_bytes() == before


def test_force_never_replaces_a_link_to_something_that_is_not_a_file(tmp_path, cat_text):
    """--export stdoutlink --force replaced a link to /proc/self/fd/1 (think /dev/stdout)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    one_line(invoke("corpus", corpus, "--export", tmp_path / "link", "--force"),
             "not a regular file (through a link)")
    assert (tmp_path / "link").is_symlink()


# --- thirteenth adversarial pass --------------------------------------------------------------

@pytest.mark.parametrize("second, added", [("1e-300", "2e+300"), ("5e-324", "endless")])
def test_a_numeric_time_step_too_small_to_count_is_one_line(tmp_path, second, added):
    """A step of 1e-300 overflowed the int cast of the grid positions: IndexError."""
    error = _series_error(tmp_path / "t.csv", f"t,v\n0,1\n{second},2\n1,3\n2,4\n",
                          time_column="t")
    assert f"would add {added} missing rows" in error and "lines 3 and 4" in error


@pytest.mark.parametrize("command", [("generate", "--length", "3"), ("export",)])
def test_a_vocabulary_token_that_is_a_lone_surrogate_is_damage(run, tmp_path, command):
    """generate printed it: UnicodeEncodeError: surrogates not allowed."""
    vocab = json.loads((run / "vocab.json").read_text())
    vocab["tokens"][3] = "\ud800"
    (run / "vocab.json").write_text(json.dumps(vocab))
    one_line(invoke(*command, run), "vocab.json", "lone surrogate")


@pytest.mark.parametrize("value", ["0", "1000"])
def test_the_last_value_baseline_is_exact_on_a_constant_series(frun, tmp_path, value):
    """The actual values went through float32 scaling: 'last value' RMSE 3.9e-05 on zeros,
    sMAPE 200% and a skill ratio of 25 million."""
    csv = tmp_path / "flat.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{value}\n" for i in range(200)))
    result = invoke("forecast", "evaluate", frun, csv, "--no-plot", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metrics"]["last value"] == {"mae": 0.0, "rmse": 0.0, "smape": 0.0}
    assert report["skill"] is None and "exact" in report["skill_note"]


def test_a_header_naming_a_column_twice_exactly_is_refused(tmp_path):
    """pandas renamed the second 'a' to 'a.1', so the duplicate check never saw it."""
    text = "t,a,a\n" + "".join(f"{i},{i % 7},{i % 5}\n" for i in range(50))
    assert "column 'a' appears twice" in _series_error(tmp_path / "d.csv", text,
                                                       time_column="t", target="a")


def test_predict_quotes_a_column_name_holding_a_comma(tmp_path):
    """The header 'year,vol,ume' had three fields above rows of two."""
    import csv

    data = tmp_path / "q.csv"
    data.write_text('year,"val,ue"\n' + "".join(f"{1900 + i},{5 + np.sin(i / 3):.3f}\n"
                                                 for i in range(120)))
    assert invoke("forecast", "train", data, "--time-column", "year", "--units", "4",
                  "--epochs", "1", "--steps-per-epoch", "2", "-q", "--out",
                  tmp_path / "r").exit_code == 0
    result = invoke("forecast", "predict", tmp_path / "r", data)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:2] == ["year", "val,ue"] and all(len(r) == len(rows[0]) for r in rows)


def test_export_removes_what_a_killed_export_of_the_same_name_left(run, tmp_path):
    """A kill just before the rename left .seqmodels-tmp-model-<host>-<pid>-* for good."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    folder = tmp_path / "ex"
    folder.mkdir()
    host = socket.gethostname()
    left = folder / f"{TEMP_PREFIX}sm-{host}-{gone}-k1ll3d"  # a partial SavedModel
    (left / "variables").mkdir(parents=True)
    (left / "saved_model.pb").write_bytes(b"partial")
    left_file = folder / f"{TEMP_PREFIX}sm-{host}-{gone}-f1le"  # a partial .tflite
    left_file.write_bytes(b"partial")
    alive = folder / f"{TEMP_PREFIX}sm-{host}-{os.getpid()}-a1ive"  # a running export's
    alive.mkdir()
    other = folder / f"{TEMP_PREFIX}sm2-{host}-{gone}-0ther"  # another output's: not ours here
    other.mkdir()
    result = invoke("export", run, "--format", "tflite", "--out", folder / "sm")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(["sm", "sm.tokenizer.json",
                                                               alive.name, other.name])


def test_an_out_that_is_a_file_is_not_called_a_run_to_resume(tmp_path, cat_text):
    """--out /dev/null: 'already exists and is not empty; continue it with --resume'."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    line = one_line(invoke("train", corpus, *TINY, "--out", "/dev/null"), "is not a folder")
    assert "--resume" not in line


def test_eval_tokens_below_one_window_is_refused_before_the_corpus_is_read(tmp_path):
    """It was refused only after the corpus was prepared (10 s on the built-in corpus)."""
    one_line(invoke("train", tmp_path / "absent.txt", "--eval-tokens", "1", "--seq-len", "16",
                    "--out", tmp_path / "r"), "--eval-tokens 1", "--seq-len 16")


def test_predicted_times_past_what_pandas_holds_are_not_blamed_on_the_year_9999(tmp_path):
    pd = pytest.importorskip("pandas")
    last = pd.Timestamp.max  # 2262-04-11 23:47:16.854775807 at nanoseconds
    times = [(last - pd.Timedelta(n, "ns")).isoformat() for n in range(119, -1, -1)]
    csv, out = _train_series(tmp_path, "ns", "t", times, "--window", "5")
    line = one_line(invoke("forecast", "predict", out, csv), "latest time pandas can hold")
    assert "9999" not in line


# --- fourteenth adversarial pass --------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("forecast", "data", "nile", "--out", "{target}", "--force"),
    ("corpus", "{corpus}", "--export", "{target}", "--force"),
    ("diagnose", *DIAGNOSE_TINY, "--corpus", "{corpus}", "--plot", "{target}", "--force"),
])
@pytest.mark.parametrize("name", ["config.json", "model.keras", "checkpoints/latest.npz"])
def test_no_output_replaces_a_file_of_a_run_it_was_not_given(run, tmp_path, cat_text, command,
                                                            name):
    """--force wrote a CSV, text or PNG over another run's config.json or checkpoint."""
    if command[0] == "forecast":
        pytest.importorskip("pandas")
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    before = snapshot(run)
    args = [str(a).format(corpus=corpus, target=run / name) for a in command]
    one_line(invoke(*args), f"is a file of the run {run}", "never writes an output over it")
    assert snapshot(run) == before


def test_an_output_name_of_255_bytes_is_written(tmp_path, cat_text, monkeypatch):
    """Its temporary's name (prefix, host, pid) passed the limit: 'File name too long'."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus, out = tmp_path / "c.txt", tmp_path / ("é" * 127 + "b")  # 255 bytes in UTF-8
    corpus.write_text(cat_text)
    for force in ([], ["--force"]):  # new, then replaced
        result = invoke("corpus", corpus, "--export", out, *force)
        assert result.exit_code == 0, result.output
    assert out.read_text() == cat_text
    assert set(tmp_path.iterdir()) == {corpus, out, tmp_path / "xdg"}  # no temporary left


def test_a_run_inside_its_corpus_folder_resumes(tmp_path, cat_text, monkeypatch):
    """Its samples.txt joined the corpus found in the folder: 'the corpus has changed'."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(cat_text)
    run = folder / "run"
    result = invoke("train", folder, *TINY, "--out", run, *SAMPLING)
    assert result.exit_code == 0, result.output
    assert (run / "samples.txt").stat().st_size > 0
    for command in (RESUME, ("evaluate", run, "-q")):
        result = invoke(*command, run=run)
        assert result.exit_code == 0, result.output


# --- fifteenth adversarial pass ---------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ("corpus", "{corpus}", "--export", "{target}"),
    ("forecast", "data", "nile", "--out", "{target}"),
    ("diagnose", *DIAGNOSE_TINY, "--corpus", "{corpus}", "--plot", "{target}"),
    ("export", "{run}", "--format", "tflite", "--out", "{target}"),
])
def test_a_path_through_a_missing_folder_and_dotdot_is_the_file_it_lands_on(
        run, tmp_path, cat_text, command):
    """'new/../mine.txt' was new to lstat (no 'new'), so mine.txt was replaced unasked."""
    if command[0] == "forecast":
        pytest.importorskip("pandas")
    corpus, mine = tmp_path / "c.txt", tmp_path / "mine.txt"
    corpus.write_text(cat_text)
    mine.write_text("mine")
    def args(target):
        return [str(a).format(corpus=corpus, run=run, target=target) for a in command]

    one_line(invoke(*args(tmp_path / "new" / ".." / "mine.txt")), "exists; pass --force")
    assert mine.read_text() == "mine" and not (tmp_path / "new").exists()
    if command[0] != "export":  # export replaces only an earlier export anyway
        before = snapshot(run)
        one_line(invoke(*args(run / "new" / ".." / "config.json"), "--force"),
                 "is a file of the run")
        assert snapshot(run) == before


def test_a_long_multibyte_export_name_is_cut_between_characters(run, tmp_path):
    """The temporary's name was cut inside an 'é': TensorFlow's UnicodeEncodeError."""
    out = tmp_path / "ex" / ("é" * 120)  # 240 bytes: the temporary's cut is inside an 'é'
    result = invoke("export", run, "--format", "tflite", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == [
        out.name, out.name + ".tokenizer.json"]  # the tokenizer beside it, 255 bytes long


def test_a_samples_txt_beside_a_config_json_that_is_not_a_run_is_text(tmp_path, cat_text,
                                                                      monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "samples.txt").write_text(cat_text)
    (tmp_path / "d" / "config.json").write_text('{"name": "my project"}')
    result = invoke("corpus", tmp_path / "d", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["characters"] == len(cat_text)


# --- sixteenth adversarial pass ---------------------------------------------------------------

def test_forecast_evaluate_never_plots_over_a_built_in_series_file(tmp_path, monkeypatch):
    """A run trained on 'nile' stores the name, so the installed nile.csv went unprotected."""
    pytest.importorskip("pandas")
    import seqmodels.forecast.series as series

    copy = tmp_path / "nile.csv"  # the installed file stands in here: a failure spoils a copy
    shutil.copy(series.builtin_path("nile"), copy)
    monkeypatch.setattr(series, "builtin_path", lambda name: copy)
    monkeypatch.chdir(tmp_path)
    assert invoke("forecast", "train", "nile", "--window", "4", "--units", "4", "--epochs", "1",
                  "-q", "--out", "fr").exit_code == 0
    before = copy.read_bytes()
    for args in (("fr",), ("fr", "nile")):
        one_line(invoke("forecast", "evaluate", *args, "--plot", copy, "--force"),
                 "is the CSV evaluated")
    assert copy.read_bytes() == before


def test_the_built_in_corpus_file_is_never_an_output_and_its_damage_is_one_line(
        tmp_path, monkeypatch):
    """corpus kjv --export <the corpus' own file> --force replaced it; kjv then raised
    JSONDecodeError in every command. The file ships compressed: a file that is not xz, one
    cut short, and an xz of lines that are not verses are each one line."""
    import lzma

    import seqmodels.data.corpus as corpus

    copy = tmp_path / "kjv.jsonl.xz"
    verses = b'{"book": "Genesis", "text": "In the beginning."}\n' * 50
    copy.write_bytes(lzma.compress(verses))
    monkeypatch.setattr(corpus, "kjv_path", lambda: copy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    one_line(invoke("corpus", "kjv", "--export", copy, "--force"),
             "is the built-in corpus' own file")
    assert lzma.decompress(copy.read_bytes()) == verses
    for damaged in (b"Genesis\n\nIn the beginning.\n", lzma.compress(verses)[:-20],
                    lzma.compress(b"Genesis\n\nIn the beginning.\n")):
        copy.write_bytes(damaged)
        one_line(invoke("corpus", "kjv", "--no-cache"), "kjv.jsonl.xz", "damaged",
                 "pip install --force-reinstall seqmodels-rnn")


@pytest.mark.parametrize("spec, words", [
    ("c**.txt", ["pattern c**.txt", "entire path component"]),
    ("~no_such_user_here/c.txt", ["cannot find the home folder", "~no_such_user_here"]),
    ("~no_such_user_here/*.txt", ["cannot find the home folder"]),
])
def test_a_corpus_pattern_python_cannot_glob_or_expand_is_one_line(tmp_path, spec, words,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line(invoke("corpus", spec), *words)


def test_a_csv_under_a_user_with_no_home_is_one_line():
    pytest.importorskip("pandas")
    one_line(invoke("forecast", "train", "~no_such_user_here/x.csv"),
             "cannot find the home folder")


# --- seventeenth adversarial pass -------------------------------------------------------------

def test_no_output_replaces_any_installed_data_file(tmp_path, cat_text, monkeypatch):
    """Only the built-in file a command read was protected: forecast data co2 --out nile.csv."""
    pytest.importorskip("pandas")
    import seqmodels.data.corpus as corpus_module
    import seqmodels.forecast.series as series

    data = tmp_path / "data"  # copies stand in for the installed files
    shutil.copytree(series.DATA_FOLDER, data)
    kjv = tmp_path / "kjv.jsonl"
    kjv.write_text('{"book": "Genesis", "text": "In the beginning."}\n')
    monkeypatch.setattr(series, "DATA_FOLDER", data)
    monkeypatch.setattr(corpus_module, "kjv_path", lambda: kjv)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    before = {p: p.read_bytes() for p in [kjv, *data.iterdir()]}
    for args in (("forecast", "data", "co2", "--out", data / "nile.csv"),
                 ("corpus", corpus, "--export", kjv),
                 ("diagnose", *DIAGNOSE_TINY, "--corpus", corpus, "--plot", data / "co2.csv")):
        one_line(invoke(*args, "--force"), "own file", "never writes an output over it")
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("damage", ['{"book": 5, "text": "x"}\n', '{"book": ["a"], "text": "x"}\n',
                                    "[" * 100_000 + "]" * 100_000 + "\n", "fifo"])
def test_a_damaged_built_in_corpus_file_is_one_line(tmp_path, monkeypatch, damage):
    import seqmodels.data.corpus as corpus_module

    kjv = tmp_path / "kjv.jsonl"
    if damage == "fifo":
        os.mkfifo(kjv)  # read_bytes() waited for a writer for ever
    else:
        kjv.write_text(damage)
    monkeypatch.setattr(corpus_module, "kjv_path", lambda: kjv)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    one_line(invoke("corpus", "kjv", "--no-cache"), "kjv.jsonl")


def test_a_path_option_given_a_number_in_toml_is_one_line(tmp_path, cat_text):
    corpus, config = tmp_path / "c.txt", tmp_path / "o.toml"
    corpus.write_text(cat_text)
    for line in ("out = 5", "cache-dir = 7", "stopwords = 7"):
        config.write_text(line + "\n")
        result = invoke("train", corpus, "--config", config, "--level", "word", "-q")
        assert result.exit_code == 2 and "must be a path in quotes" in result.output, \
            result.output
        assert "Traceback" not in result.output


# --- eighteenth adversarial pass --------------------------------------------------------------


def test_an_output_ending_in_dotdot_is_refused_and_makes_no_folder(run, tmp_path, cat_text,
                                                                     monkeypatch):
    """'new/..' made 'new', then failed ('Device or resource busy' for a file output)."""
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    cases = [(("corpus", corpus, "--export", "new1/.."), "names a folder"),
             (("forecast", "data", "nile", "--out", "new2/.."), "names a folder"),
             (("export", run, "--out", "new3/.."), "names a folder that exists"),
             (("train", corpus, "--out", "new4/..", *TINY), "ends in '..'")]
    for args, words in cases:
        one_line(invoke(*args), words)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("new")]


@pytest.mark.parametrize("command", [("forecast", "predict"), ("forecast", "evaluate")])
def test_a_row_with_more_fields_than_the_header_is_one_line(frun, tmp_path, command):
    """pandas made the extra field the row index and shifted the columns: TypeError in the
    message about the non-numeric column, or a forecast from the wrong column, exit 0 (pandas
    refuses a later row with an extra field itself, naming its line)."""
    csv = tmp_path / "ragged.csv"
    rows = [f"{i},{10 + np.sin(i / 3):.4f}" for i in range(40)]
    rows[0] += ",x"
    csv.write_text("t,y\n" + "\n".join(rows) + "\n")
    one_line(invoke(*command, frun, csv, *(["--no-plot"] if command[1] == "evaluate" else [])),
             "line 2 has 3 fields", "2 columns", "'x'")


def test_trailing_commas_on_every_row_keep_the_columns_in_place(tmp_path):
    """'t,y' over rows '0,1.5,': pandas took t as the index and read y from the empty field."""
    from seqmodels.forecast.series import SeriesConfig, read_series

    csv = tmp_path / "trail.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{i + 0.5}, \n" for i in range(12)))
    series = read_series(SeriesConfig(csv=str(csv), time_column="t", target="y"))
    assert series.values["y"].tolist() == [i + 0.5 for i in range(12)]


def test_tokenizer_workers_leave_ctrl_c_to_the_command():
    """Ctrl-C reaches the whole process group: each spawned worker printed its own
    KeyboardInterrupt traceback before the command's one line."""
    import multiprocessing
    import signal
    from concurrent.futures import ProcessPoolExecutor

    from seqmodels.data.streaming import _init_pool_worker
    from seqmodels.data.tokenizers import CharTokenizer

    settings = CharTokenizer().to_config()
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn"),
                             initializer=_init_pool_worker, initargs=(settings, None)) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN


def _swallowed_ctrl_c(monkeypatch):
    """A recorded Ctrl-C raised inside __del__, where Python prints and drops it."""
    import gc

    from seqmodels import interrupts

    monkeypatch.setattr(interrupts, "_pressed", False)

    class Freed:
        def __del__(self):
            interrupts._record(None, None)

    Freed()
    gc.collect()
    assert interrupts.ctrl_c_pressed()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_while_tokenizing_still_stops_the_command(tmp_path, cat_text,
                                                                       monkeypatch):
    """It landed in a regex object's __del__ during tokenizing; training then ran on for
    minutes, ignoring the user's Ctrl-C."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _swallowed_ctrl_c(monkeypatch)
    result = invoke("corpus", corpus, "--workers", "1")
    assert result.exit_code == 130 and "interrupted" in result.stderr, result.output


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_before_training_stops_it_at_the_first_step(tmp_path, cat_text,
                                                                         monkeypatch):
    from seqmodels import interrupts

    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert invoke("corpus", corpus).exit_code == 0  # the cache is built: no tokenizing below
    _swallowed_ctrl_c(monkeypatch)
    result = invoke("train", corpus, "--out", tmp_path / "r", *TINY)
    assert result.exit_code == 130, result.output
    assert "interrupted; checkpoint saved at epoch 1, step 1." in result.stderr  # one step only
    monkeypatch.setattr(interrupts, "_pressed", False)
    assert invoke("train", "--resume", tmp_path / "r", "-q").exit_code == 0


def test_stopping_early_ends_the_tokenizer_workers_at_once():
    """The workers now ignore Ctrl-C, so the command ends them itself: waiting for the chunks
    in hand took seconds after the user's Ctrl-C."""
    import time

    from seqmodels.data.chunks import Piece
    from seqmodels.data.streaming import _results
    from seqmodels.data.tokenizers import WordTokenizer

    big = "the quick brown fox, jumps over the lazy dog's back.\n" * 40_000  # ~2 MB: seconds
    jobs = [[Piece(0, "a b c\n", False, 6)]] + [[Piece(0, big, False, len(big))]] * 3
    results = _results(iter(jobs), WordTokenizer(), 2)
    assert next(results).ids.size == 4  # a, b, c and the line break
    started = time.monotonic()
    results.close()  # as a KeyboardInterrupt at the yield does
    assert time.monotonic() - started < 3


def test_the_python_api_checks_what_the_cli_checks(run):
    """num_samples=0 reached TensorFlow (a ValueError about a (0, 8) tensor); an empty stop_at
    and a negative seed, refused by the CLI, were taken."""
    from seqmodels.lm.generate import SamplingConfig

    model = seqmodels.load(run)
    for kwargs, words in (({"num_samples": 0}, "num_samples"), ({"stop_at": ""}, "stop_at"),
                          ({"sampling": SamplingConfig(seed=-1)}, "seed must be from 0"),
                          ({"length": 0}, "length must be")):
        kwargs = {"sampling": SamplingConfig(), "length": 3, **kwargs}
        with pytest.raises(SeqmodelsError, match=words):
            model.generate(None, **kwargs)


def test_evaluate_takes_one_corpus_path_as_a_string(run, tmp_path, cat_text):
    """corpus='c.txt' was read as the files 'c', '.', 't', 'x', 't'."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text + "the end.\n")  # not the run's own corpus (its test split)
    model = seqmodels.load(run)
    metrics = model.evaluate(corpus=str(corpus))
    assert metrics.tokens == len(cat_text) + len("the end.\n") - 1
    assert model.evaluate(corpus=[str(corpus)]) == metrics


def test_evaluate_does_not_suggest_options_it_lacks(run, tmp_path):
    """'try --encoding latin-1 or --errors replace': evaluate has neither option."""
    corpus = tmp_path / "latin.txt"
    corpus.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    line = one_line(invoke("evaluate", run, "--corpus", corpus), "0xe9", "convert the file")
    assert "--encoding" not in line and "--errors" not in line


def test_a_run_given_as_a_file_is_named_not_a_folder(tmp_path):
    (tmp_path / "c.txt").write_text("text\n")
    with pytest.raises(SeqmodelsError, match="is not a folder"):
        seqmodels.load(tmp_path / "c.txt")


# --- nineteenth adversarial pass --------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_port_in_use_is_one_line(tmp_path, cat_text, monkeypatch):
    """TensorFlow's UnknownError 'Could not start gRPC server' came out as a traceback."""
    import socket

    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    monkeypatch.setenv("TF_CONFIG", "")  # the command sets it from --workers-spec
    with socket.create_server(("127.0.0.1", 0)) as taken:
        spec = f"127.0.0.1:{taken.getsockname()[1]}"
        one_line(invoke("train", corpus, "--strategy", "multi-worker", "--workers-spec", spec,
                        "--worker-index", "0", "--out", tmp_path / "r", "-q"),
                 "cannot be opened", "choose another port")
    assert not (tmp_path / "r").exists()


def test_a_worker_address_of_another_machine_is_one_line(tmp_path, cat_text, monkeypatch):
    """A one-worker cluster at 8.8.8.8:1 waited in TensorFlow for ever, deaf to Ctrl-C and
    SIGTERM (this sandbox's proxy even accepts the connection, so a token must come back)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    far = f"192.0.2.1:{_free_port()}"  # TEST-NET-1: never this machine
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [far]},
                                                "task": {"type": "worker", "index": 0}}))
    one_line(invoke("train", corpus, "--strategy", "multi-worker", "--out", tmp_path / "r",
                    "-q"), far, "does not reach this machine")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_waiting_for_a_missing_worker_says_so_and_ctrl_c_stops_it(tmp_path, cat_text):
    """It waited inside TensorFlow without a word; Ctrl-C and SIGTERM did nothing."""
    import signal
    import subprocess
    import sys
    import time

    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    spec = f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("TF_CONFIG", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "seqmodels", "train", corpus, "--strategy", "multi-worker",
         "--workers-spec", spec, "--worker-index", "0", "--out", tmp_path / "r", "-q"],
        stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        import select

        said = select.select([worker.stderr], [], [], 60)[0]  # never wait for ever here
        first = worker.stderr.readline() if said else "(nothing in 60 s)"
        assert "waiting for the other workers to start: 127.0.0.1:" in first, first
        os.killpg(worker.pid, signal.SIGINT)  # as a terminal's Ctrl-C
        started = time.monotonic()
        rest = worker.communicate(timeout=60)[1]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode == 130 and rest.strip() == "interrupted", rest
    assert time.monotonic() - started < 10
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.parametrize("differ, words", [
    (["--units", "12"], "different model settings"),  # was a TensorFlow traceback
    (["--steps-per-epoch", "3"], "different training settings"),  # was a false NaN report
    ("upper", "different corpus"),  # same vocabulary size: trained on both, exit 0
])
def test_workers_started_differently_stop_with_one_line(tmp_path, cat_text, differ, words):
    import subprocess
    import sys

    corpus, other = tmp_path / "c.txt", tmp_path / "upper.txt"
    corpus.write_text(cat_text)
    other.write_text(cat_text.upper())
    spec = f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("TF_CONFIG", None)

    def start(index: int, data, *extra) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "seqmodels", "train", data, "--strategy", "multi-worker",
             "--workers-spec", spec, "--worker-index", str(index), "--layers", "1", "--units",
             "8", "--embedding-dim", "4", "-T", "16", "--batch-size", "8", "--epochs", "1",
             "--steps-per-epoch", "2", "-q", *extra], stderr=subprocess.PIPE, text=True, env=env)

    chief = start(0, corpus, "--out", tmp_path / "r")
    worker = start(1, other) if differ == "upper" else start(1, corpus, *differ)
    try:
        for process in (chief, worker):
            err = process.communicate(timeout=240)[1]
            assert "Traceback" not in err and "eagerly has significant overhead" not in err, err
            errors = [line for line in err.splitlines() if line.startswith("Error:")]
            assert process.returncode == 1 and len(errors) == 1, err
            assert words in errors[0], errors[0]
    finally:
        for process in (chief, worker):
            if process.poll() is None:
                process.kill()
    assert not (tmp_path / "r").exists()


def test_forecast_training_counts_time_steps_not_tokens(tmp_path):
    """Its banner and progress said 'steps per epoch of 128 tokens', '649 tokens/s'."""
    series = tmp_path / "s.csv"
    series.write_text("t,y\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(120)))
    result = invoke("forecast", "train", series, "--time-column", "t", "--window", "8",
                    "--units", "4", "--epochs", "1", "--out", tmp_path / "f")
    assert result.exit_code == 0, result.output
    assert "steps per epoch of" in result.stderr and "time steps/s" in result.stderr
    assert "tokens" not in result.stderr, result.stderr


# --- reliability, new angles (issue 34) -------------------------------------------------------

@pytest.mark.parametrize("command,name", [
    (("corpus", "{corpus}", "--export", "{target}"), "training.png"),
    (("corpus", "{corpus}", "--export", "{target}", "--force"), "samples.txt"),
    (("corpus", "{corpus}", "--export", "{target}"), "checkpoints/latest.npz"),
    (("export", "{source}", "--format", "savedmodel", "--out", "{target}"), "model.keras"),
    (("export", "{source}", "--format", "tflite", "--out", "{target}"), "tensorboard"),
])
def test_no_output_takes_a_run_file_name_not_written_yet(run, trained, tmp_path, cat_text,
                                                         command, name):
    """DL3: an output at RUN/training.png (say) before the run's first plot was taken; the run
    later replaced it, or died at its next validation on a SavedModel folder at model.keras."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    target = run / name
    if target.exists():
        target.unlink()  # as in a run that has not written it yet
    before = snapshot(run)
    args = [str(a).format(corpus=corpus, source=trained, target=target) for a in command]
    one_line(invoke(*args), f"is a file of the run {run}", "never writes an output over it")
    assert snapshot(run) == before and not target.exists()


def test_a_folder_with_another_programs_config_json_is_not_a_run(tmp_path, cat_text):
    """Only a seqmodels run's names are kept free: a model folder of another library, with a
    config.json of its own, takes a vocab.json."""
    corpus, folder = tmp_path / "c.txt", tmp_path / "hf_model"
    corpus.write_text(cat_text)
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    result = invoke("corpus", corpus, "--export", folder / "vocab.json")
    assert result.exit_code == 0, result.output
    assert (folder / "vocab.json").read_text() == cat_text


def test_an_export_beside_a_run_file_name_is_written(run, trained):
    """Only the run's own names are refused: RUN/export/model.tflite is the default place."""
    result = invoke("export", trained, "--format", "tflite", "--out", run / "model.tflite")
    assert result.exit_code == 0, result.output
    assert (run / "model.tflite").is_file()


def test_a_checkpoint_this_user_may_not_read_is_not_called_damaged(run, monkeypatch):
    """DL4: an unreadable latest.npz was 'damaged': training went on from previous.npz (steps
    lost) and the intact newest checkpoint was rotated out."""
    import seqmodels.training.checkpoint as checkpoint

    load = np.load

    def no_permission(path, *args, **kwargs):  # chmod 000 is no bar to root, who runs CI
        if os.fspath(path).endswith("latest.npz"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.np, "load", no_permission)
    before = snapshot(run)
    line = one_line(invoke(*RESUME, run=run), "latest.npz: permission denied", "not damaged")
    assert "previous.npz" not in line
    assert snapshot(run) == before


def many_files(folder, cat_text, count: int) -> list:
    """count files with long names (what a shell's `folder/*.txt` passes), in sorted order."""
    folder.mkdir()
    paths = [folder / (f"{'x' * 200}{i:04}.txt") for i in range(count)]
    lines = cat_text.splitlines()
    for i, path in enumerate(paths):
        path.write_text(lines[i % len(lines)] + "\n")
    return paths


def test_a_run_given_hundreds_of_files_keeps_a_glob_and_reads_again(tmp_path, cat_text,
                                                                    monkeypatch):
    """DL2: config.json kept every path the shell expanded (1.5 MB for 40,000 files), past the
    1 MiB its reader takes: the run could never be read again. When the paths would not fit, a
    folder's stretch of files is now its glob (the same files in the same order)."""
    import seqmodels.lm.train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(seqmodels.lm.train, "MAX_STORED_CORPUS", 20_000)  # as 40,000 files
    paths = many_files(tmp_path / "texts", cat_text, 400)  # 400 x ~260 bytes of paths
    run = tmp_path / "run"
    result = invoke("train", *paths, *TINY, "--out", run)
    assert result.exit_code == 0, result.output
    stored = json.loads((run / "config.json").read_text())["data"]["corpus"]
    assert stored == [str(tmp_path / "texts" / "*.txt")]
    for command in (RESUME, ("evaluate", run, "-q")):
        result = invoke(*command, run=run)
        assert result.exit_code == 0, result.output


def test_files_no_glob_can_stand_for_are_refused_before_training(tmp_path, cat_text,
                                                                 monkeypatch):
    """DL2: when a folder's glob would find other files too, the paths stay; if they cannot fit
    in config.json the run is refused at once, with the way out."""
    import seqmodels.lm.train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(seqmodels.lm.train, "MAX_STORED_CORPUS", 20_000)
    paths = many_files(tmp_path / "texts", cat_text, 200)[::2]  # 100 x ~260 bytes, every other
    one_line(invoke("train", *paths, *TINY, "--out", tmp_path / "run"),
             "CORPUS names 100 files one by one", "give their folder, or a glob in quotes")
    assert not (tmp_path / "run").exists()


def test_a_read_only_checkpoints_folder_is_refused_before_training(run, monkeypatch):
    """It was found at the first checkpoint, after an interval of training. (Root may write
    anywhere, so the test makes os.access say what it says to another user.)"""
    access = os.access

    def read_only_checkpoints(path, mode, *args, **kwargs):
        if os.fspath(path).endswith("checkpoints") and mode & os.W_OK:
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", read_only_checkpoints)
    before = snapshot(run)
    one_line(invoke(*RESUME, run=run), f"{run / 'checkpoints'}: not writable",
             "make it writable and resume")
    assert snapshot(run) == before
