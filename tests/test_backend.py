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


def test_loading_tensorflow_leaves_the_users_log_level_and_backend_as_they_were():
    """TF_CPP_MIN_LOG_LEVEL and KERAS_BACKEND are set while TensorFlow and Keras load, then
    put back (the allocator's variable stays: see the next test); TensorFlow's C++ logging
    keeps the quiet level it read (no INFO lines when XLA compiles afterwards)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                           "KERAS_BACKEND")}
    code = ("import os; from seqmodels.backend import import_keras; k = import_keras(); "
            "import tensorflow as tf; "
            "f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True); f(tf.ones((2, 2))); "
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), os.environ.get('KERAS_BACKEND'), "
            "k.backend.backend())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None", "tensorflow"]
    assert not [line for line in done.stderr.splitlines() if line.startswith("I0000")]


def test_tensorflow_pools_host_memory_unless_the_user_said_otherwise():
    """TF_CPU_ALLOCATOR_USE_BFC is set for TensorFlow (its allocator reports memory only when
    pooled); a user's own value is kept."""
    loaded = ("import os; from seqmodels.backend import import_tf; tf = import_tf(); "
              "x = tf.ones((64, 64)) @ tf.ones((64, 64)); "
              "print(os.environ.get('TF_CPU_ALLOCATOR_USE_BFC')); ")
    pooled = ("print('pooled' if tf.config.experimental.get_memory_info('CPU:0')['peak'] > 0 "
              "else 'empty')")  # raises for the unpooled allocator: asked only of the pool
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    done = subprocess.run([sys.executable, "-c", loaded + pooled], capture_output=True,
                          text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["true", "pooled"]
    mine = python(loaded, TF_CPU_ALLOCATOR_USE_BFC="false")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.split() == ["false"]


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


def test_an_address_space_limit_tensorflow_cannot_start_under_is_one_line(tmp_path, cat_text):
    """Under `ulimit -v` 1.5-2.5 GB TensorFlow aborted natively ("pthread_create failed", a
    segfault) or gave a SystemError; below the measured floor it is refused before it loads."""
    import resource

    (tmp_path / "c.txt").write_text(cat_text)
    limit = 2 * 10**9

    def small_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "seqmodels", "train", str(tmp_path / "c.txt"),
                             "--units", "8", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, preexec_fn=small_address_space,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: out of memory: the address-space limit (ulimit -v) is 1.86 GiB, below the 2.75 "
        "GiB TensorFlow needs to start here (it maps about 1.9 GiB to load, and each thread "
        "more); raise the limit (ulimit -v unlimited)"]
    assert not (tmp_path / "run").exists()


def test_a_process_limit_is_named_not_called_a_file(tmp_path, cat_text, monkeypatch):
    """`ulimit -u 3`: "a file: Resource temporarily unavailable" (issue 34)."""
    import errno

    import seqmodels.data.prepare

    def no_more_processes(*args, **kwargs):
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    monkeypatch.setattr(seqmodels.data.prepare, "prepare_corpus", no_more_processes)
    (tmp_path / "c.txt").write_text(cat_text)
    result = CliRunner().invoke(cli, ["corpus", str(tmp_path / "c.txt")])
    assert result.exit_code == 1
    assert ("could not start a process or thread (Resource temporarily unavailable): the "
            "limit on processes (ulimit -u) may be reached") in result.output
