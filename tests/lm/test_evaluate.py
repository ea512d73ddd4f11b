"""Evaluation metrics: a hand-computed perplexity, state-carried walk vs one long pass, windows."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli
from seqmodels.lm.evaluate import CHUNK, evaluate_ids
from seqmodels.lm.model import LanguageModel
from seqmodels.models.config import ModelConfig

V = 7


def fixed_bias_model():
    """All weights zero but the output bias: every prediction is softmax(bias)."""
    model = LanguageModel.build(ModelConfig(layers=1, units=4, embedding_dim=3), vocab_size=V)
    for w in model.network.weights:
        w.assign(np.zeros(w.shape, dtype="float32"))
    bias = np.array([0.0, -1.0, 2.0, 1.0, 0.5, -0.5, 0.0], dtype="float32")
    model.head.bias.assign(bias)
    return model, bias


def test_perplexity_matches_a_hand_computed_value():
    model, bias = fixed_bias_model()
    ids = np.array([2, 3, 2, 4, 1, 2, 6, 5, 3, 2, 0, 1], dtype=np.int32)
    log_p = bias - np.log(np.sum(np.exp(bias)))  # log softmax
    targets = ids[1:]
    ce = -np.mean(log_p[targets])
    for context in (None, 11):
        m = evaluate_ids(model, ids, context=context)
        assert m.tokens == 11
        assert m.cross_entropy == pytest.approx(ce, rel=1e-6)
        assert m.perplexity == pytest.approx(math.exp(ce), rel=1e-6)
        assert m.bits_per_token == pytest.approx(ce / math.log(2), rel=1e-6)
        assert m.accuracy == pytest.approx(np.mean(targets == 2))  # argmax of the bias is id 2
        top5 = set(np.argsort(-bias)[:5])
        assert m.top5_accuracy == pytest.approx(np.mean([t in top5 for t in targets]))
        assert m.oov == 2 and m.oov_rate == pytest.approx(2 / 11)  # id 1 is <unk>


def test_state_carried_walk_equals_one_long_pass():
    import keras

    keras.utils.set_random_seed(3)
    model = LanguageModel.build(ModelConfig(cell="gru", layers=2, units=8, embedding_dim=4),
                                vocab_size=V)
    ids = np.random.default_rng(0).integers(0, V, 2 * CHUNK + 77).astype(np.int32)
    logits = np.asarray(model(ids[None, :-1]))[0]  # every token given all previous ones
    log_p = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                   keepdims=True)) - logits.max(-1, keepdims=True)
    expected = -np.mean(log_p[np.arange(len(ids) - 1), ids[1:]])
    walked = evaluate_ids(model, ids)
    assert walked.cross_entropy == pytest.approx(expected, rel=1e-5)
    windowed = evaluate_ids(model, ids, context=10)
    assert windowed.tokens == (len(ids) - 1) // 10 * 10
    assert windowed.cross_entropy != pytest.approx(walked.cross_entropy, rel=1e-6)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, train_tiny):
    root = tmp_path_factory.mktemp("eval")
    corpus = root / "c.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 80)
    run = train_tiny(corpus, root / "run", cache_dir=root / "cache", epochs=2, batch_size=8,
                     seq_len=20)
    return run, corpus, root


def test_evaluate_cli_json_and_other_text(trained_run, tmp_path):
    run_dir, corpus, root = trained_run
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), "--json", "--cache-dir",
                                      str(root / "cache"), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["text"] == "the run's test split" and report["context"] is None
    assert report["perplexity"] == pytest.approx(math.exp(report["cross_entropy"]))
    other = tmp_path / "other.txt"
    other.write_text("tZ be or not to be\n")  # 19 chars: 18 predictions, 15 in windows of 5
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), "--corpus", str(other),
                                      "--context", "5", "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["oov"] == 1 and report["tokens"] == 15 and report["context"] == 5


def test_evaluate_cli_table(trained_run):
    run_dir, _, root = trained_run
    result = CliRunner().invoke(cli, ["evaluate", str(run_dir), "--cache-dir",
                                      str(root / "cache")])
    assert result.exit_code == 0, result.output
    for label in ("cross-entropy", "perplexity", "bits per character", "accuracy", "OOV"):
        assert label in result.output


def test_evaluate_bad_run_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such run directory" in result.output
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{broken")
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "run")])
    assert result.exit_code == 1 and "damaged JSON" in result.output
    assert "Traceback" not in result.output
