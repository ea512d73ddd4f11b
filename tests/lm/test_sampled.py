"""Sampled softmax: the training loss of large vocabularies, and when a run uses it."""

import numpy as np
import pytest

from seqmodels.lm.sampled import AUTO_FROM, AUTO_SAMPLES, features, sampled_objective, samples_for
from seqmodels.models.builders import build_language_model
from seqmodels.models.config import ModelConfig


def test_samples_for_the_setting_and_the_vocabulary():
    assert samples_for(None, AUTO_FROM) == AUTO_SAMPLES
    assert samples_for(None, AUTO_FROM - 1) == 0  # small vocabularies: the full softmax
    assert samples_for(0, 50_000) == 0 and samples_for(64, 500) == 64
    assert samples_for(600, 500) == 0  # as many samples as ids: the full softmax is cheaper


@pytest.mark.parametrize("fast", [True, False])
def test_many_samples_give_the_full_cross_entropy(fast):
    """With far more draws than ids, every id is drawn about its expected count, so the
    corrected sampled loss is the full softmax's cross-entropy; with few, it is lower."""
    import tensorflow as tf

    from seqmodels.lm.task import cross_entropy

    V = 40
    net = build_language_model(V, ModelConfig(units=16, layers=1, embedding_dim=8))
    rng = np.random.default_rng(0)
    for w in net.get_layer("logits").weights:  # a spread of logits, not uniform ones
        w.assign(rng.normal(0, 1.0, w.shape).astype("float32"))
    x = rng.integers(2, V, (4, 12)).astype("int32")
    y = rng.integers(2, V, (4, 12)).astype("int32")
    full = float(tf.reduce_mean(cross_entropy(y, net(x))))
    h = features(net, fast)(x)
    assert h.shape == (4, 12, 16)
    tf.random.set_seed(1)
    many = np.mean([float(tf.reduce_mean(sampled_objective(net, 20_000)(y, h)))
                    for _ in range(5)])
    assert many == pytest.approx(full, rel=0.02)
    few = float(tf.reduce_mean(sampled_objective(net, 4)(y, h)))
    assert few < full


def test_a_large_vocabulary_trains_on_a_sampled_softmax(tmp_path, train_tiny, capsys):
    """The run says which loss it trains on; its validation is the full cross-entropy."""
    import seqmodels

    corpus = tmp_path / "c.txt"
    words = [f"w{i}" for i in range(300)]
    corpus.write_text("\n".join(" ".join(words[(i * 7 + j) % 300] for j in range(10))
                                for i in range(400)) + "\n")
    run = train_tiny(corpus, tmp_path / "run", level="word", cache_dir=tmp_path / "cache",
                     epochs=1, batch_size=8, seq_len=12, sampled_softmax=32,
                     steps_per_epoch=20)
    model = seqmodels.load(run)
    history = (run / "history.csv").read_text().splitlines()
    val_loss = float(history[-1].split(",")[history[0].split(",").index("val_loss")])
    from seqmodels.data.prepare import prepare_corpus

    prepared = prepare_corpus(model.data, cache_dir=tmp_path / "cache")
    from seqmodels.lm.evaluate import evaluate_ids

    full = evaluate_ids(model, prepared.splits.val, context=12).cross_entropy
    assert val_loss == pytest.approx(full, rel=1e-4)
