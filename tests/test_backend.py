"""seqmodels runs on Keras' TensorFlow backend whatever KERAS_BACKEND says, or refuses in one
line when Keras was imported on another backend first."""

import os
import subprocess
import sys

from click.testing import CliRunner

from seqmodels.cli.main import cli


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}, timeout=300)


def test_keras_backend_in_the_environment_is_overridden():
    done = python("from seqmodels.backend import import_keras; "
                  "print(import_keras().backend.backend())", KERAS_BACKEND="jax")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tensorflow"


def test_keras_imported_on_another_backend_is_refused_in_one_line(monkeypatch):
    import pytest

    from seqmodels.backend import import_keras
    from seqmodels.errors import SeqmodelsError

    keras = import_keras()
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")  # as if imported on jax
    with pytest.raises(SeqmodelsError, match="already imported with the jax backend"):
        import_keras()


def test_the_cli_trains_whatever_keras_backend_says(tmp_path, cat_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(cat_text)
    done = subprocess.run(
        [sys.executable, "-m", "seqmodels", "train", str(corpus), "--out", str(tmp_path / "r"),
         "--layers", "1", "--units", "8", "-T", "16", "--batch-size", "8", "--epochs", "1",
         "--steps-per-epoch", "2", "-q"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r" / "model.keras").is_file()
    assert CliRunner().invoke(cli, ["evaluate", str(tmp_path / "r"), "-q"]).exit_code == 0
