"""seqmodels export: a SavedModel with whole-sequence and one-step signatures, and TFLite and
ONNX files of the one-step signature, each giving the Keras model's logits."""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

import seqmodels
from seqmodels.cli.main import cli
from seqmodels.lm import export as lm_export
from seqmodels.lm.export import STEP


@pytest.fixture(scope="module", params=["lstm", "gru"])
def run(request, tmp_path_factory, train_tiny, cat_text):
    root = tmp_path_factory.mktemp(f"export-{request.param}")
    corpus = root / "c.txt"
    corpus.write_text(cat_text)
    return train_tiny(corpus, root / "run", cell=request.param, epochs=1, batch_size=8,
                      seq_len=16, steps_per_epoch=3)


def expected_logits(run_dir, ids):
    return np.asarray(seqmodels.load(run_dir)(ids[None], training=False))[0]  # (T, V)


def stepped(step, ids, sizes):
    """Logits of each position from the one-step function, from a zero state."""
    states = {f"state_{i}": np.zeros((1, n), np.float32) for i, n in enumerate(sizes)}
    out = []
    for token in ids:
        result = step(token=np.array([token], np.int32), **states)
        out.append(np.asarray(result["logits"])[0])
        states = {k: np.asarray(result[k]) for k in states}
    return np.stack(out)


def refuses_bad_ids(step, sizes, vocab_size):
    """An id outside [0, V) gives NaN logits and state, not another token's (-1 wrapped to the
    last embedding row)."""
    states = {f"state_{i}": np.zeros((1, n), np.float32) for i, n in enumerate(sizes)}
    for token in (-1, vocab_size, 2**30):
        result = step(token=np.array([token], np.int32), **states)
        for name in ("logits", *states):
            assert np.isnan(np.asarray(result[name])).all(), (token, name)


def test_the_savedmodel_serves_whole_sequences_and_single_steps(run, tmp_path):
    import tensorflow as tf

    path = seqmodels.load(run).export("savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    ids = np.array([3, 4, 5, 6, 3, 2, 7, 8], np.int32)
    want = expected_logits(run, ids)
    got = loaded.signatures["serving_default"](ids=tf.constant(ids[None]))["logits"]
    np.testing.assert_allclose(np.asarray(got)[0], want, atol=1e-5)
    sizes = seqmodels.load(run).state_sizes
    step = loaded.signatures[STEP]

    def call(token, **states):
        return step(token=tf.constant(token), **{k: tf.constant(v) for k, v in states.items()})

    np.testing.assert_allclose(stepped(call, ids, sizes), want, atol=1e-5)
    vocab_size = seqmodels.load(run).vocab_size
    refuses_bad_ids(call, sizes, vocab_size)
    bad = np.array([[3, 4, -1, 5], [3, 4, 5, vocab_size]], np.int32)
    got = np.asarray(loaded.signatures["serving_default"](ids=tf.constant(bad))["logits"])
    np.testing.assert_allclose(got[0, :2], want[:2], atol=1e-5)  # before the bad id: as ever
    assert np.isnan(got[0, 2:]).all() and np.isnan(got[1, 3]).all()
    assert not np.isnan(got[1, :3]).any()


def test_the_tflite_file_steps_like_the_keras_model(run, tmp_path):
    import tensorflow as tf

    path = seqmodels.load(run).export("tflite", tmp_path / "m.tflite")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner(STEP)
    ids = np.array([3, 4, 5, 6, 3, 2, 7, 8], np.int32)
    sizes = seqmodels.load(run).state_sizes
    np.testing.assert_allclose(stepped(runner, ids, sizes), expected_logits(run, ids),
                               atol=1e-4)
    refuses_bad_ids(runner, sizes, seqmodels.load(run).vocab_size)


def test_the_onnx_file_steps_like_the_keras_model(run, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # the onnx extra; make install brings it
    path = seqmodels.load(run).export("onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path))
    sizes = seqmodels.load(run).state_sizes
    assert [i.name for i in session.get_inputs()] == ["token"] + [
        f"state_{i}" for i in range(len(sizes))]
    names = [o.name for o in session.get_outputs()]
    assert names == ["logits"] + [f"next_state_{i}" for i in range(len(sizes))]

    def step(token, **states):
        out = dict(zip(names, session.run(None, {"token": token, **states}), strict=True))
        return {"logits": out["logits"], **{k: out[f"next_{k}"] for k in states}}

    ids = np.array([3, 4, 5, 6, 3, 2, 7, 8], np.int32)
    np.testing.assert_allclose(stepped(step, ids, sizes), expected_logits(run, ids), atol=1e-4)
    refuses_bad_ids(step, sizes, seqmodels.load(run).vocab_size)
    batch = session.run(None, {"token": ids[:3], **{f"state_{i}": np.zeros((3, n), np.float32)
                                                    for i, n in enumerate(sizes)}})
    assert batch[0].shape == (3, seqmodels.load(run).vocab_size)


def test_onnx_without_its_extra_is_one_line_and_writes_nothing(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx raises ImportError
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "onnx", "--out",
                                      str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert "pip install 'seqmodels-rnn[onnx]'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_cli_exports_and_refuses_to_replace_unasked(run, tmp_path):
    out = tmp_path / "m.tflite"
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "tflite", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out) and out.stat().st_size > 0
    again = CliRunner().invoke(cli, ["export", str(run), "--format", "tflite", "--out",
                                     str(out)])
    assert again.exit_code == 1 and "exists; pass --force" in again.stderr
    mine = tmp_path / "notes"
    mine.mkdir()
    forced = CliRunner().invoke(cli, ["export", str(run), "--out", str(mine), "--force"])
    assert forced.exit_code == 1 and "not a SavedModel folder" in forced.stderr
    assert mine.is_dir()


def test_the_cli_knows_the_library_formats():
    from seqmodels.cli.export import FORMATS

    assert FORMATS == lm_export.FORMATS


def test_an_export_over_a_run_directory_never_suggests_force(run):
    """`export run1 --out run1` said '--force' would replace it; --force then refused."""
    for force in ([], ["--force"]):
        result = CliRunner().invoke(cli, ["export", str(run), "--format", "savedmodel",
                                          "--out", str(run), *force])
        assert result.exit_code != 0 and "--force" not in result.stderr, result.stderr
        assert f"{run} is a run directory, which an export never replaces" in result.stderr


def test_exports_carry_their_tokenizer(run, tmp_path):
    """A server turns text into ids without the run: the SavedModel's encode signature (char
    level, in TensorFlow ops) and the tokenizer JSON every export carries agree with the run."""
    import tensorflow as tf

    model = seqmodels.load(run)
    text = "the cat sat"
    want = model.tokenizer.encode(text).tolist()
    path = model.export("savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    got = loaded.signatures[lm_export.ENCODE](text=tf.constant(text))["ids"]
    assert np.asarray(got).tolist() == want
    unknown = loaded.signatures[lm_export.ENCODE](text=tf.constant("Q"))["ids"]
    assert np.asarray(unknown).tolist() == [1]  # <unk>
    assert lm_export.read_tokenizer(path).encode(text).tolist() == want
    model.export("savedmodel", tmp_path / "sm", force=True)  # its own export, tokenizer and all
    lite = model.export("tflite", tmp_path / "m.tflite")
    assert lm_export.read_tokenizer(lite).decode(want) == text
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "tflite", "--out",
                                      str(tmp_path / "m.tflite")])
    assert result.exit_code != 0 and "exists" in result.output
    (tmp_path / "m.tflite").unlink()  # the model gone, its tokenizer left: still refused
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "tflite", "--out",
                                      str(tmp_path / "m.tflite")])
    assert result.exit_code != 0 and "m.tokenizer.json exists" in result.output


def test_a_network_without_a_tokenizer_exports_ids_only(tmp_path):
    from seqmodels.lm.model import LanguageModel
    from seqmodels.models.config import ModelConfig

    bare = LanguageModel.build(ModelConfig(units=8, layers=1, embedding_dim=4), vocab_size=12)
    path = bare.export("tflite", tmp_path / "bare.tflite")
    assert path.is_file() and not lm_export.beside(path).exists()


def test_force_replaces_only_a_tokenizer_seqmodels_wrote(run, tmp_path):
    model = seqmodels.load(run)
    out = model.export("tflite", tmp_path / "m.tflite")
    model.export("tflite", out, force=True)  # its own: replaced
    lm_export.beside(out).write_text('{"mine": true}')  # the user's file of that name
    with pytest.raises(seqmodels.SeqmodelsError, match="not a tokenizer that seqmodels"):
        model.export("tflite", out, force=True)
    assert lm_export.beside(out).read_text() == '{"mine": true}'
