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
    assert samples_for(None, 50_000, ranked=False) == 0  # subwords: not ranked by frequency
    assert samples_for(64, 50_000, ranked=False) == 64  # ... unless asked


def test_runs_stored_before_it_keep_the_full_softmax():
    from seqmodels.training.config import TrainConfig

    stored = TrainConfig().to_json()
    del stored["sampled_softmax"]
    assert TrainConfig.from_json(stored).sampled_softmax == 0
    assert TrainConfig.from_json(TrainConfig().to_json()).sampled_softmax is None


@pytest.mark.parametrize("fast", [True, False])
def test_many_samples_give_the_full_cross_entropy(fast):
    """With far more draws than ids, every id is drawn about its expected count, so the sum
    over the draws is the softmax's normaliser less the true id's share, and the loss is
    log(Z - e^s_y) - s_y + log(K q_y), computed here from the full logits."""
    import tensorflow as tf

    from seqmodels.lm.task import cross_entropy

    V = 40
    net = build_language_model(V, ModelConfig(units=16, layers=1, embedding_dim=8))
    rng = np.random.default_rng(0)
    for w in net.get_layer("logits").weights:  # a spread of logits, not uniform ones
        w.assign(rng.normal(0, 1.0, w.shape).astype("float32"))
    x = rng.integers(2, V, (4, 12)).astype("int32")
    y = rng.integers(1, V, (4, 12)).astype("int32")
    y[0, :3] = 1  # <unk>, a target wherever a vocabulary was capped
    logits = np.asarray(net(x), np.float64)  # (4, 12, V)
    true = np.take_along_axis(logits, y[..., None], -1)[..., 0]
    others = np.log(np.exp(logits).sum(-1) - np.exp(true))
    K = 20_000
    r = y - 1.0  # every id but <pad>, log-uniformly drawn
    q = (np.log(r + 2) - np.log(r + 1)) / np.log(V - 1 + 1)
    want = np.mean(others - true + np.log(K * q))
    h = features(net, fast)(x)
    assert h.shape == (4, 12, 16)
    tf.random.set_seed(1)
    few = sampled_objective(net, 8)(y, h)
    assert np.isfinite(np.asarray(few)).all()  # an <unk> target too
    many = np.mean([float(tf.reduce_mean(sampled_objective(net, K)(y, h))) for _ in range(5)])
    assert many == pytest.approx(want, rel=0.02)
    full = float(tf.reduce_mean(cross_entropy(y, net(x))))
    assert abs(many - full) > 0.5  # not the cross-entropy: only validation figures compare


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
