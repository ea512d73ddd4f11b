"""Tests for seqmodels.diagnostics and `seqmodels diagnose`: measured gradient decay per cell."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels import diagnostics as diag
from seqmodels.cli.main import cli
from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import prepare_corpus

T, B, UNITS = 50, 16, 32


@pytest.fixture(scope="module")
def kjv(tmp_path_factory):
    """The built-in corpus, prepared once for this module."""
    return prepare_corpus(DataConfig(corpus=["kjv"]), cache_dir=tmp_path_factory.mktemp("kjv"))


@pytest.fixture(scope="module")
def windows(kjv):
    """16 real windows of 50 characters and their targets."""
    return diag.sample_windows(kjv.splits.train, T, B, seed=0)


def measure(kjv, windows, cell, scale=1.0):
    model = diag.fresh_model(cell, len(kjv.vocab), UNITS, seed=0, recurrent_scale=scale)
    return model, diag.diagnose_model(model, *windows, label=cell)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_tape_unroll_matches_numpy_bptt(kjv, cell):
    x, y = diag.sample_windows(kjv.splits.train, 20, 4, seed=3)
    model = diag.fresh_model(cell, len(kjv.vocab), 16, seed=1)
    tape = diag.gradient_norms(model, x, y)  # TensorFlow, float32
    numpy = diag.reference_gradient_norms(model, x, y)  # seqmodels.models.reference, float64
    assert tape.shape == numpy.shape == (20,)
    np.testing.assert_allclose(tape, numpy, rtol=1e-4)


def test_fresh_keras_cells_measured(kjv, windows):
    # Keras' defaults: orthogonal recurrent kernel (spectral radius 1), small embeddings, so a
    # fresh tanh SimpleRNN is nearly linear and keeps its gradient (measured x0.982 per step);
    # LSTM (forget bias 1, f ~ 0.73) and GRU (z ~ 0.5) shrink it every step (x0.83, x0.63).
    _, rnn = measure(kjv, windows, "rnn")
    _, lstm = measure(kjv, windows, "lstm")
    _, gru = measure(kjv, windows, "gru")
    assert rnn.verdict == "healthy" and 0.95 < rnn.rate < 1.0
    assert lstm.verdict == "vanishing" and 0.75 < lstm.rate < 0.90
    assert gru.verdict == "vanishing" and 0.55 < gru.rate < 0.70
    assert rnn.spectral_radius["h"] == pytest.approx(1.0, abs=1e-4)
    assert gru.norm_at(T - 1) < 1e-6 * gru.norm_at(0)


@pytest.mark.parametrize("scale", [0.5, 0.8])
def test_simple_rnn_decays_geometrically_at_its_spectral_radius(kjv, windows, scale):
    # In tanh's linear regime dh_t/dh_{t-1} ~ U, so the norm falls like rho(U)^k: a straight
    # line on a log scale whose slope is ln(rho) (measured x0.499 and x0.797 per step).
    _, d = measure(kjv, windows, "rnn", scale)
    assert d.verdict == "vanishing"
    assert d.slope == pytest.approx(math.log(scale), abs=0.03)
    k = np.arange(1, T)
    logs = np.log(np.asarray(d.norms)[::-1][1:])
    residual = logs - np.polyval(np.polyfit(k, logs, 1), k)
    assert np.abs(residual).max() < 0.5  # geometric: within a factor 1.65 of the fitted line


def test_large_recurrent_kernel_explodes(kjv, windows):
    model, d = measure(kjv, windows, "rnn", scale=3.0)
    assert d.verdict == "exploding" and d.rate > 1.2  # measured x1.36 per step
    assert d.norm_at(T - 1) > 1e5 * d.norm_at(0)
    assert d.spectral_radius["h"] == pytest.approx(3.0, rel=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_spectral_radius_matches_numpy(kjv, cell):
    model = diag.fresh_model(cell, len(kjv.vocab), 12, seed=2, recurrent_scale=1.7)
    layer = model.recurrent_layers[0]
    u = np.asarray(layer.cell.recurrent_kernel, np.float64)
    blocks = np.split(u, u.shape[1] // 12, axis=1)
    radii = diag.spectral_radii(layer)
    assert len(radii) == len(blocks)
    for got, block in zip(radii.values(), blocks):
        assert got == pytest.approx(np.max(np.abs(np.linalg.eigvals(block))), rel=1e-9)


def test_fit_and_verdict_on_known_curves():
    k = np.arange(30)
    slope, rate = diag.fit_decay((0.9**k)[::-1])  # norms in time order: t = 1..T
    assert slope == pytest.approx(math.log(0.9)) and diag.verdict(rate) == "vanishing"
    assert diag.verdict(diag.fit_decay((1.2**k)[::-1])[1]) == "exploding"
    assert diag.verdict(diag.fit_decay(np.ones(30))[1]) == "healthy"
    assert diag.verdict(diag.fit_decay(np.r_[np.inf, np.ones(29)])[1]) == "exploding"
    assert diag.verdict(diag.fit_decay(np.r_[np.zeros(28), 0.1, 1.0])[1]) == "vanishing"
    assert diag.verdict(0.95) == "healthy" and diag.verdict(1.05) == "healthy"


def test_diagnose_a_trained_two_layer_run(tmp_path, kjv):
    from seqmodels import RunOptions, WindowConfig
    from seqmodels.lm.train import train
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig

    text = tmp_path / "text.txt"
    text.write_text("In the beginning God created the heaven and the earth.\n" * 60)
    data = DataConfig(corpus=[str(text)])
    train(data, ModelConfig(cell="gru", layers=2, units=16, embedding_dim=8),
          TrainConfig(epochs=1, batch_size=8, steps_per_epoch=5), WindowConfig(seq_len=20),
          out=tmp_path / "run", options=RunOptions(cache_dir=tmp_path / "cache"))
    result = diag.diagnose(run=tmp_path / "run", seq_len=20, batch_size=4,
                           cache_dir=tmp_path / "cache")
    [d] = result.cells
    assert d.cell == "gru" and d.units == 16 and "layer 2 of 2" in d.label
    assert len(d.norms) == 20 and all(v > 0 for v in d.norms)
    json.dumps(result.to_json(), allow_nan=False)
    for extra, verb in ((["--corpus", str(text)], "applies"),
                        (["--units", "4", "--level", "word"], "apply")):
        refused = CliRunner().invoke(cli, ["diagnose", str(tmp_path / "run"), *extra])
        assert refused.exit_code == 2, refused.output
        assert f"{verb} to fresh models only; a RUN uses its own settings and corpus" \
            in refused.output


def test_cli_table_json_and_plot(tmp_path, kjv):
    runner = CliRunner()
    args = ["diagnose", "--units", "16", "-T", "30", "--batch-size", "8",
            "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(cli, [*args, "--plot", str(tmp_path / "g.png")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "T - t" in out and "rnn" in out and "lstm" in out and "gru" in out
    assert "spectral radius" in out and out.count("per step") == 3
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(cli, [*args, "--cells", "rnn", "--recurrent-scale", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [cell] = report["cells"]
    assert cell["cell"] == "rnn" and cell["verdict"] == "exploding" and len(cell["norms"]) == 30
    assert report["thresholds"] == {"vanishing_rate_below": 0.95, "exploding_rate_above": 1.05}
    result = runner.invoke(cli, [*args, "--cells", "rnn", "--recurrent-scale", "3"])
    assert result.exit_code == 0, result.output
    assert "What to try when gradients explode: clip them (train --clipnorm 1" in result.output
    assert "gradients vanish" not in result.output


def test_cli_unknown_cell_is_one_line_error():
    result = CliRunner().invoke(cli, ["diagnose", "--cells", "rnn,transformer"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["Error: unknown cell transformer: choose from rnn, lstm, gru "
                     "(comma-separated)"]
