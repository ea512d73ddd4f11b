"""LanguageModel: the network's structure asked in one place, one-token steps, states, held
compiled pieces, and a save/reload round trip through a run directory."""

import time

import numpy as np
import pytest

import seqmodels
from seqmodels.backend import import_tf
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.model import LanguageModel
from seqmodels.lm.step_model import StepModel
from seqmodels.models.config import STATES_PER_LAYER, ModelConfig

tf = import_tf()
import keras  # noqa: E402

V, B, T, H, E = 20, 3, 10, 16, 8
CELLS = ["lstm", "gru", "rnn"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


def tiny(cell: str = "lstm", **kwargs) -> ModelConfig:
    """A test-sized config."""
    return ModelConfig(cell=cell, **{"layers": 2, "units": H, "embedding_dim": E, **kwargs})


def randomise(lm: LanguageModel, seed: int = 0) -> LanguageModel:
    """Give every trainable weight (biases included) non-zero random values."""
    rng = np.random.default_rng(seed)
    for v in lm.network.trainable_weights:
        v.assign(rng.normal(0.0, 0.4, v.shape).astype("float32"))
    return lm


def token_ids(batch: int = B, length: int = T, seed: int = 0) -> np.ndarray:
    """Random int32 token ids (B, T)."""
    return np.random.default_rng(seed).integers(0, V, (batch, length)).astype("int32")


@pytest.mark.parametrize("cell", CELLS)
def test_step_model_matches_full_sequence(cell):
    lm = randomise(LanguageModel.build(tiny(cell, dropout=0.3), vocab_size=V))
    ids = token_ids()
    full = lm(ids, training=False).numpy()  # (B, T, V)
    step = lm.step_model()
    assert isinstance(step, StepModel) and lm.step_model() is step  # made once
    states = lm.initial_state(B)
    steps = []
    for t in range(T):
        logits, states = step(ids[:, t], states)  # (B, V)
        steps.append(keras.ops.convert_to_numpy(logits))
    assert np.abs(np.stack(steps, axis=1) - full).max() <= 1e-5
    assert len(states) == 2 * STATES_PER_LAYER[cell] == len(lm.state_sizes)
    assert all(tuple(s.shape) == (B, H) for s in states) and set(lm.state_sizes) == {H}


def test_step_model_shares_weights_with_the_language_model():
    lm = LanguageModel.build(tiny("gru"), vocab_size=V)
    step = lm.step_model()
    ids = token_ids()[:, 0]
    before = step(ids, lm.initial_state(B))[0].numpy()
    randomise(lm, seed=7)
    after = step(ids, lm.initial_state(B))[0].numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, lm(ids[:, None], training=False)[:, 0], atol=1e-5)
    np.testing.assert_allclose(lm.step(ids)[0], after, atol=1e-6)  # the compiled one-step call


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_model_runs_inside_tf_function_while_loop(cell):
    lm = randomise(LanguageModel.build(tiny(cell), vocab_size=V))
    step = lm.step_model()
    first, n = tf.constant(token_ids()[:, 0]), 6

    @tf.function
    def greedy(first, states):
        def body(i, ids, states, out):
            logits, states = step(ids, states)
            ids = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (B,)
            return i + 1, ids, states, out.write(i, ids)

        out = tf.TensorArray(tf.int32, size=n)
        _, _, _, out = tf.while_loop(lambda i, *_: i < n, body, (0, first, states, out))
        return tf.transpose(out.stack())  # (B, n)

    ids, states, expected = first, lm.initial_state(B), []
    for _ in range(n):
        logits, states = step(ids, states)
        ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        expected.append(ids.numpy())
    generated = greedy(first, lm.initial_state(B)).numpy()  # (B, n)
    np.testing.assert_array_equal(generated, np.stack(expected, axis=1))


@pytest.mark.parametrize("cell", CELLS)
def test_initial_state_of_every_layer(cell):
    lm = LanguageModel.build(tiny(cell, layers=3), vocab_size=V)
    states = lm.initial_state(4)
    assert len(states) == 3 * STATES_PER_LAYER[cell] == len(lm.state_sizes)
    assert lm.state_counts == [STATES_PER_LAYER[cell]] * 3 and lm.cells == [cell] * 3
    for a in states:
        assert tuple(a.shape) == (4, H)
        assert not np.any(keras.ops.convert_to_numpy(a))


@pytest.mark.parametrize("cell", CELLS)
def test_stateful_model_carries_state_until_reset(cell):
    config = tiny(cell)
    model = randomise(LanguageModel.build(config, vocab_size=V, batch_size=2, stateful=True))
    assert model.stateful and all(layer.stateful for layer in model.recurrent_layers)
    assert len(model.carried_states()) == 2 * STATES_PER_LAYER[cell]
    ids = token_ids(batch=2)
    whole = model(ids, training=False).numpy()
    model.reset_states()
    first = model(ids[:, :4], training=False).numpy()
    second = model(ids[:, 4:], training=False).numpy()
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-5)
    assert not np.allclose(model(ids[:, :4], training=False).numpy(), first, atol=1e-3)
    model.reset_states()
    np.testing.assert_allclose(model(ids[:, :4], training=False).numpy(), first, atol=1e-6)

    stateless = model.stateless_copy()
    assert not stateless.stateful and stateless.carried_states() == []
    np.testing.assert_allclose(stateless(ids, training=False).numpy(), whole, atol=1e-5)
    twin = stateless.stateful_copy(batch_size=2)  # and back: the same weights, carried state
    np.testing.assert_allclose(twin(ids, training=False).numpy(), whole, atol=1e-5)




@pytest.mark.parametrize("cell", CELLS)
def test_save_and_reload_gives_identical_outputs(cell, tmp_path):
    lm = randomise(LanguageModel.build(tiny(cell, dropout=0.1, l2=1e-4), vocab_size=V))
    model = lm.network
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    ids = token_ids()
    np.testing.assert_array_equal(loaded(ids, training=False), model(ids, training=False))
    assert [x.name for x in loaded.layers] == [x.name for x in model.layers]
    assert sum(float(x) for x in loaded.losses) == pytest.approx(
        sum(float(x) for x in model.losses), rel=1e-6
    )
    again = LanguageModel(loaded, lm.config)
    step, states = again.step_model(), again.initial_state(B)
    np.testing.assert_allclose(
        step(ids[:, 0], states)[0], model(ids[:, :1], training=False)[:, 0], atol=1e-5
    )




def test_structure_is_asked_of_the_model():
    lm = LanguageModel.build(tiny("gru", layers=3, units=12), vocab_size=V)
    assert lm.units == [12, 12, 12] and lm.cells == ["gru"] * 3 and lm.vocab_size == V
    assert lm.state_sizes == [12, 12, 12] and lm.embedding.output_dim == E
    assert lm.count_params() == lm.network.count_params()
    with pytest.raises(SeqmodelsError, match="no tokenizer"):
        lm.generate("a", length=3)
    with pytest.raises(SeqmodelsError, match="vocab_size"):
        LanguageModel.build(tiny())


@pytest.fixture(scope="module")
def run(tmp_path_factory, train_tiny):
    root = tmp_path_factory.mktemp("model")
    corpus = root / "c.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60)
    return train_tiny(corpus, root / "run", epochs=1, batch_size=8, seq_len=20)


def test_load_round_trip_gives_the_same_outputs(run):
    """seqmodels.load() gives a LanguageModel whose network, tokenizer and settings are the
    run's; saving it into another run and loading that gives the same logits."""
    from seqmodels.training.rundir import RunDir

    lm = seqmodels.load(run)
    assert isinstance(lm, LanguageModel) and lm.path == run
    assert lm.settings["windows"]["seq_len"] == 20 and lm.data.level == "char"
    ids = lm.tokenizer.encode("the cat sat")[None].astype(np.int32)
    logits = lm(ids).numpy()
    copy = RunDir(run.parent / "copy")
    copy.path.mkdir()
    for path in (RunDir(run).config, RunDir(run).vocab):
        (copy.path / path.name).write_bytes(path.read_bytes())
    lm.save(copy)
    again = LanguageModel.load(copy)
    np.testing.assert_array_equal(again(ids).numpy(), logits)
    assert again.tokenizer.to_config() == lm.tokenizer.to_config()
    assert again.vocabulary == lm.vocabulary


def test_a_held_model_compiles_once(run):
    lm = seqmodels.load(run)
    sampling = seqmodels.SamplingConfig(seed=1)
    first = lm.generate("the", length=40, sampling=sampling)
    start = time.perf_counter()
    second = lm.generate("the", length=40, sampling=sampling)
    assert time.perf_counter() - start < 5  # no reload, no compiling: well under a second
    assert first == second  # the same seed, the same text
    assert lm.generate("the", 40, seqmodels.SamplingConfig(seed=2)) != first  # reseeded
    m1, m2 = lm.evaluate(text="the cat sat on the log.\n"), lm.evaluate(
        text="the cat sat on the log.\n")
    assert m1 == m2 and m1.tokens == 23


def test_step_matches_the_whole_sequence(run):
    lm = seqmodels.load(run)
    ids = lm.tokenizer.encode("the dog sat")
    full = lm(ids[None].astype(np.int32)).numpy()[0]  # (T, V)
    state = None
    for t, token in enumerate(ids):
        logits, state = lm.step([token], state)
        np.testing.assert_allclose(logits[0], full[t], atol=1e-5)


def test_load_takes_the_run_that_train_returned(run, tmp_path):
    from seqmodels.lm.train import Run

    held = Run(run, {}, None, [])
    assert seqmodels.load(held).path == run
    with pytest.raises(SeqmodelsError, match="no directory"):
        seqmodels.load(Run(None, {}, None, []))
    with pytest.raises(SeqmodelsError, match="no such run directory"):
        seqmodels.load(tmp_path / "nothing")


def test_a_run_of_format_one_is_read_with_its_windows(run, tmp_path):
    """Runs written before format 2 kept seq_len, stride, stateful and eval_tokens in "train"."""
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run, old)
    config = json.loads((old / "config.json").read_text())
    config["version"] = 1
    config["train"].update(config.pop("windows"))
    (old / "config.json").write_text(json.dumps(config))
    lm = seqmodels.load(old)
    assert lm.settings["windows"]["seq_len"] == 20 and "seq_len" not in lm.settings["train"]
    text = "the cat sat on the log.\n"
    assert lm.evaluate(text=text) == seqmodels.load(run).evaluate(text=text)


def test_evaluate_reads_files_and_strings_alike(run, tmp_path):
    text = "the dog sat on the mat.\nthe cat sat.\n"
    (tmp_path / "t.txt").write_text(text)
    lm = seqmodels.load(run)
    assert lm.evaluate(tmp_path / "t.txt") == lm.evaluate(text=text)
    with pytest.raises(SeqmodelsError, match="not both"):
        lm.evaluate(tmp_path / "t.txt", text=text)
