"""Samples while training: every N steps or at each validation, printed and kept in
samples.txt; none with --quiet."""

from click.testing import CliRunner

from seqmodels.cli.main import cli
from seqmodels.data.config import DataConfig
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.samples import Samples
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.rundir import RunDir

SAMPLES_FILE = RunDir.SAMPLES

SMALL = ["--layers", "1", "--units", "16", "--embedding-dim", "8", "-T", "16", "--batch-size",
         "8", "--epochs", "1", "--steps-per-epoch", "6", "--eval-every", "3"]


def entries(run_dir):
    text = (run_dir / SAMPLES_FILE).read_text(encoding="utf-8")
    return [block.split("\n", 1) for block in text.split("--- ")[1:]]


def test_every_n_steps_at_each_temperature(tmp_path, cyclic):
    callback = Samples(every=2, prompt="abc", temperatures=(0.0, 1.0), length=24,
                       show=False)
    run = train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=16,
                                                             embedding_dim=8),
                TrainConfig(epochs=1, batch_size=8, steps_per_epoch=6),
                WindowConfig(seq_len=16),
                out=tmp_path / "run", options=RunOptions(callbacks=[callback]))
    got = entries(run.path)
    assert [head for head, _ in got] == [f"step {s}, temperature {t}" for s in (2, 4, 6)
                                         for t in ("0", "1")]
    for _, text in got:  # the prompt, 24 characters, and the newline the file adds
        assert text.startswith("abc") and len(text) == 3 + 24 + 1


def test_a_prompt_outside_the_vocabulary_gives_up_the_samples_not_the_run(tmp_path, cyclic):
    import pytest

    callback = Samples(every=2, prompt="\u20ac", show=False)
    with pytest.warns(UserWarning, match="no samples while training"):
        run = train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=16,
                                                                 embedding_dim=8),
                    TrainConfig(epochs=1, batch_size=8, steps_per_epoch=4),
                WindowConfig(seq_len=16),
                    out=tmp_path / "run", options=RunOptions(callbacks=[callback]))
    assert run.stop_reason == "completed" and not (run.path / SAMPLES_FILE).exists()


def test_the_cli_samples_at_validations_and_not_when_quiet(tmp_path, cyclic):
    result = CliRunner().invoke(cli, ["train", str(cyclic), "--out", str(tmp_path / "a"),
                                      *SMALL, "--sample-length", "10"])
    assert result.exit_code == 0, result.output
    assert [head for head, _ in entries(tmp_path / "a")] == [
        "step 3, temperature 0.8", "step 6, temperature 0.8"]
    assert "sample at step 3 (temperature 0.8):\n    " in result.stderr
    quiet = CliRunner().invoke(cli, ["train", str(cyclic), "--out", str(tmp_path / "q"), *SMALL,
                                     "-q"])
    assert quiet.exit_code == 0 and not (tmp_path / "q" / SAMPLES_FILE).exists()


def test_a_signal_while_sampling_skips_the_remaining_temperatures(tmp_path, cyclic, monkeypatch):
    """Ctrl-C/SIGTERM between two temperatures: the finished sample is kept, the rest skipped,
    and training stops at once with its checkpoint (not after every sample of the step)."""
    import os
    import signal

    import pytest

    from seqmodels.lm.generate import Generator
    from seqmodels.training.trainer import Interrupted, stop_requested

    original, calls = Generator.generate, []

    def generate_then_signal(self, prompts, length):
        calls.append(self.sampling.temperature)
        ids = original(self, prompts, length)
        os.kill(os.getpid(), signal.SIGTERM)  # the run's handler only sets its flag
        return ids

    monkeypatch.setattr(Generator, "generate", generate_then_signal)
    callback = Samples(every=2, prompt="abc", temperatures=(0.0, 0.5, 1.0), length=8,
                       show=False)
    with pytest.raises(Interrupted) as stopped:
        train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=16, embedding_dim=8),
              TrainConfig(epochs=1, batch_size=8, steps_per_epoch=6),
                WindowConfig(seq_len=16),
              out=tmp_path / "run", options=RunOptions(callbacks=[callback]))
    assert stopped.value.exit_code == 143 and "step 2" in str(stopped.value)
    assert calls == [0.0]
    assert [head for head, _ in entries(tmp_path / "run")] == ["step 2, temperature 0"]
    assert not stop_requested()  # the flag ends with the run


def test_many_temperatures_do_not_warn_of_retracing(tmp_path, cyclic, caplog):
    """Each temperature's sampler traces once by design; TensorFlow's 'excessive retracing'
    warning about those first traces is muted."""
    callback = Samples(every=2, prompt="abc", temperatures=(0.2, 0.4, 0.6, 0.8, 1.0, 1.2),
                       length=4, show=False)
    train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=16, embedding_dim=8),
          TrainConfig(epochs=1, batch_size=8, steps_per_epoch=4),
                WindowConfig(seq_len=16),
          out=tmp_path / "run", options=RunOptions(callbacks=[callback]))
    assert len(entries(tmp_path / "run")) == 12
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
