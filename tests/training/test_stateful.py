"""--stateful truncated BPTT carries the hidden state across windows: an echo beyond seq_len.

The corpus repeats 15-character blocks "<b>abcd<b>efghijkl<b>" with a random bit b. The short
echo (the second b) comes 5 tokens after the first, inside a window of T = 8. The long echo (the
third b) comes 9 tokens after the second: the T tokens before it hold only filler, so without
carried state nothing predicts it. Gradients never cross a window boundary either way; the short
echo teaches the model to keep the bit, stateful training lets it read the bit in the next window.

Each model is read the way it was trained: the stateless one from windows of T tokens and a zero
state, the stateful one over the text with its state carried (a stateful model starts from a zero
state only once per epoch, and a stateless one never sees more than T tokens, so the other way
round each is off its training distribution and may stumble even on the short echo).
"""

import numpy as np
import pytest

from seqmodels.backend import import_tf
from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import prepare_corpus
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import RunOptions, TrainConfig

T = 8
SHORT, LONG = "abcd", "efghijkl"  # fillers after the first and the second bit
MODEL = ModelConfig(cell="lstm", layers=1, units=32, embedding_dim=8)
BLOCKS = 35_000  # 525k chars: 800 steps of 64 x 8 training tokens per epoch
CARRIED = 8_000  # validation tokens read in one pass with carried state


def echo_text(blocks: int, seed: int = 0) -> str:
    """Blocks "<b>abcd<b>efghijkl<b>" with bits from a seeded generator."""
    bits = np.random.default_rng(seed).integers(0, 2, blocks)
    return "".join(f"{b}{SHORT}{b}{LONG}{b}" for b in bits)


def log_probs(net, ids: np.ndarray) -> np.ndarray:
    """(N, L) ids -> (N, L, V) next-token log-probabilities, each row from a zero state."""
    tf = import_tf()
    return tf.nn.log_softmax(tf.function(net)(ids)).numpy()


def score(logp: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Accuracy of the argmax and mean bits of the targets under (N, V) log-probabilities."""
    accuracy = float(np.mean(logp.argmax(-1) == targets))
    bits = float(-np.mean(logp[np.arange(len(targets)), targets]) / np.log(2))
    return accuracy, bits


def echo_scores(run, ids: np.ndarray) -> dict[str, tuple[float, float]]:
    """(accuracy, bits) of both echoes: from the T tokens before each, and with carried state."""
    net = run.model.network  # the plain model (any batch size), from a stateful run too
    # One pass from the start of the validation text: the same as carrying the state over
    # consecutive windows of T. Row i predicts ids[i + 1].
    carried = log_probs(net, ids[None, :CARRIED])[0]
    scores = {}
    for name, filler in (("short", SHORT), ("long", LONG)):
        distance = len(filler) + 1  # from a bit to its echo
        echoes = np.flatnonzero(ids[:-1] == run.model.vocabulary.index[filler[-1]]) + 1
        echoes = echoes[echoes >= max(T, distance)]
        assert len(echoes) > 3000 and np.all(ids[echoes] == ids[echoes - distance])
        # exactly the T inputs a window ending at the echo's prediction sees, from a zero state
        windows = ids[echoes[:, None] - T + np.arange(T)]  # (N, T)
        scores[f"{name} window"] = score(log_probs(net, windows)[:, -1], ids[echoes])
        echoes = echoes[echoes < CARRIED]
        scores[f"{name} carried"] = score(carried[echoes - 1], ids[echoes])
    return scores


@pytest.mark.slow
def test_stateful_training_learns_an_echo_beyond_the_window(tmp_path):
    assert len(SHORT) + 1 <= T < len(LONG) + 1  # only the short echo fits in a window
    path = tmp_path / "echo.txt"
    path.write_text(echo_text(BLOCKS), encoding="utf-8")
    data = DataConfig(corpus=[str(path)], splits=(0.8, 0.1, 0.1))
    runs = {}
    for stateful in (True, False):
        config = TrainConfig(batch_size=64, epochs=2, steps_per_epoch=800, lr=0.02, seed=0)
        runs[stateful] = train(data, MODEL, config, WindowConfig(seq_len=T, stateful=stateful),
                               out=tmp_path / f"stateful-{stateful}",
                               options=RunOptions(cache_dir=tmp_path / "cache"))
        assert runs[stateful].settings["windows"]["stateful"] is stateful
    val = np.asarray(prepare_corpus(data, cache_dir=tmp_path / "cache").splits.val, np.int32)
    stateful, stateless = echo_scores(runs[True], val), echo_scores(runs[False], val)
    report = f"stateful {stateful}, stateless {stateless}"

    # Each model, read the way it was trained, has learned the echo that fits in a window.
    assert stateful["short carried"][0] > 0.97, report
    assert stateless["short window"][0] > 0.97, report
    # The premise: from the T tokens before it (always the same filler) the long echo is a toss.
    for scores in (stateful, stateless):
        assert 0.3 < scores["long window"][0] < 0.7 and scores["long window"][1] > 0.9, report
    # With the state carried over from earlier windows, only the stateful model predicts it.
    assert stateful["long carried"][0] > 0.95 and stateful["long carried"][1] < 0.2, report
    assert stateless["long carried"][0] < 0.7 and stateless["long carried"][1] > 0.9, report
