"""Shared fixtures: every test gets its own cache dir; small corpora are written on demand."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")  # as seqmodels sets it, so tests'
# subprocesses see the same environment whichever test imported TensorFlow first

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

CAT_TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 60  # 2,880 characters
TINY_MODEL = {"layers": 1, "units": 16, "embedding_dim": 8}

SAMPLE = (
    "The quick brown fox jumps over the lazy dog.\n"
    "She said, \"Don't go -- it's 3.5 miles.\"\n"
    "And (they) went home, singing.\n"
)


def pytest_addoption(parser):
    """--kills N: how many times the kill harness kill -9s a training run (make test: 3)."""
    parser.addoption("--kills", type=int, default=3,
                     help="kill -9 count of tests/reliability (make test-reliability: 20)")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point XDG_CACHE_HOME at a fresh folder so no test sees another's cache or the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def text_dir(tmp_path):
    """A folder with two small .txt files, a nested one and a file that is not .txt."""
    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    (root / "b.txt").write_text(SAMPLE * 20, encoding="utf-8")
    (root / "a.txt").write_text("Alpha beta gamma.\n" * 30, encoding="utf-8")
    (root / "sub" / "c.txt").write_text("Nested text here.\n" * 10, encoding="utf-8")
    (root / "notes.md").write_text("not a corpus file\n", encoding="utf-8")
    return root


@pytest.fixture
def cyclic(tmp_path):
    """A perfectly learnable text: the same 12-character line again and again."""
    path = tmp_path / "cyclic.txt"
    path.write_text("abcdefghijk\n" * 400)
    return path


@pytest.fixture(scope="session")
def cat_text():
    """A small two-line text repeated: enough for a few steps of a tiny model."""
    return CAT_TEXT


@pytest.fixture(scope="session")
def sentence_run(tmp_path_factory, train_tiny):
    """A tiny char model trained once a session on two sentences ending in '.', for what reads
    a model without changing it (beam search, the interactive loop)."""
    root = tmp_path_factory.mktemp("sentences")
    corpus = root / "c.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 60)
    return train_tiny(corpus, root / "run", cache_dir=root / "cache", epochs=4, batch_size=8,
                      seq_len=16, lr=0.02)


@pytest.fixture
def corpus(tmp_path, cat_text):
    """cat_text in a file."""
    path = tmp_path / "corpus.txt"
    path.write_text(cat_text)
    return path


@pytest.fixture(scope="session")
def train_tiny():
    """Train a tiny model (1 x 16 units, embedding 8) on one file: a function of the corpus, the
    run directory, cell, level, cache_dir and TrainConfig settings that returns the run's path.

    Without cache_dir, encoded corpora go to cache/ beside the run (module fixtures outlive the
    per-test cache folder).
    """

    def train_run(corpus, out, cell="lstm", level="char", cache_dir=None, **settings):
        from seqmodels import DataConfig, ModelConfig, RunOptions, train

        with pytest.MonkeyPatch.context() as mp:
            if cache_dir is None:
                mp.setenv("XDG_CACHE_HOME", str(out.parent / "cache"))
            config, windows = split_settings(settings)
            return train(DataConfig(corpus=[str(corpus)], level=level),
                         ModelConfig(cell=cell, **TINY_MODEL), config, windows, out=out,
                         options=RunOptions(cache_dir=cache_dir)).path

    return train_run


def split_settings(settings: dict) -> tuple:
    """A TrainConfig and a WindowConfig from one dict of their settings, by field name."""
    from dataclasses import fields

    from seqmodels import TrainConfig, WindowConfig

    window_names = {f.name for f in fields(WindowConfig)}
    return (TrainConfig(**{k: v for k, v in settings.items() if k not in window_names}),
            WindowConfig(**{k: v for k, v in settings.items() if k in window_names}))


@pytest.fixture(scope="session")
def kjv_cache(tmp_path_factory):
    """One cache folder shared by the tests that tokenize the 4 MB built-in corpus."""
    return tmp_path_factory.mktemp("kjv-cache")


RSS_PROBE = """
def status(field):  # bytes, from /proc/self/status (VmRSS, VmHWM, RssFile, ...)
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak():  # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""


@pytest.fixture
def measure_rss():
    """Run a script in a fresh Python that has status() and reset_peak(); its last line of
    output, as JSON."""

    def run(script: str, *args: str) -> dict:
        out = subprocess.run([sys.executable, "-c", RSS_PROBE + script, *args],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    return run
