"""Import TensorFlow quietly and only when a command needs it."""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_muted():
    """Send file descriptor 2 to /dev/null (C++ start-up logs ignore Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# TensorFlow's pooling (BFC) allocator for host memory, unless the user chose: with the default
# one every training step mapped its large buffers afresh and paid a page fault per 4 KiB page
# on first touch (in a trace of the bench's LSTM step, buffer fills and copies took 50 of its
# 546 ms, 12 pooled); pooled, the step alone ran 1.1-1.3x faster (docs/performance.md).
# TensorFlow reads it once, when it first runs an op (after the import), so it stays set in
# the process environment; the pool keeps what it took (up to TF_CPU_BFC_MEM_LIMIT_IN_MB).
CPU_ALLOCATOR = ("TF_CPU_ALLOCATOR_USE_BFC", "true")

MIN_ADDRESS_SPACE = int(2.75 * 2**30)  # measured: tiny trainings abort natively at 2.5 GB of
# `ulimit -v` (a thread cannot start) and run at 2.86 GiB; TensorFlow maps 1.9 GiB to load


def check_address_space(need: int = MIN_ADDRESS_SPACE) -> None:
    """Refuse, before TensorFlow loads, an address-space limit (`ulimit -v`) under which it
    would abort natively (a segfault, "pthread_create failed") rather than raise."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft < need:
        from seqmodels.errors import SeqmodelsError

        raise SeqmodelsError(f"out of memory: the address-space limit (ulimit -v) is "
                             f"{soft / 2**30:.2f} GiB, below the {need / 2**30:.2f} GiB TensorFlow "
                             f"needs to start here (it maps about 1.9 GiB to load, and each "
                             f"thread more); raise the limit (ulimit -v unlimited)")


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables while TensorFlow and Keras load (they read them then), and
    put the user's own back afterwards: importing seqmodels' models leaves these as they were
    (CPU_ALLOCATOR alone stays set, read later)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def import_tf():
    """Return the tensorflow module without its CUDA-probe and oneDNN start-up chatter."""
    os.environ.setdefault(*CPU_ALLOCATOR)  # before any op runs, even if tensorflow is loaded
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    check_address_space()
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")  # the user's, or warnings and up
    loading = {"TF_CPP_MIN_LOG_LEVEL": level}
    if "keras" not in sys.modules:  # importing tensorflow imports keras, which reads it once
        loading["KERAS_BACKEND"] = "tensorflow"
    with environment(**loading), (contextlib.nullcontext() if level in ("0", "1")
                                  else native_stderr_muted()):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # the CUDA probe logs here, not at first use
    return tf


def import_keras():
    """Return the keras module on its TensorFlow backend, TensorFlow imported quietly first.

    seqmodels' steps, checkpoints and data pipeline are TensorFlow's, so KERAS_BACKEND (or
    ~/.keras/keras.json) naming jax or torch is overridden for this process; a Keras already
    imported on another backend is refused with one line.
    """
    import_tf()
    with environment(KERAS_BACKEND="tensorflow") if "keras" not in sys.modules else (
            contextlib.nullcontext()):
        import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        from seqmodels.errors import SeqmodelsError

        raise SeqmodelsError(f"seqmodels runs on Keras' TensorFlow backend, but Keras was "
                             f"already imported with the {backend} backend; import seqmodels "
                             f"models before anything imports keras, or unset KERAS_BACKEND")
    return keras


@contextlib.contextmanager
def first_traces() -> Iterator[None]:
    """Mute TensorFlow's 'excessive retracing' warning while a function made anew traces for the
    first time: a training or a sampler makes its compiled steps once, by design, and TensorFlow
    counts the first traces of every such function together (five trainings in one process,
    or five sampling temperatures, would warn)."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)
