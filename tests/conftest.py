"""Shared fixtures: every test gets its own cache dir; small corpora are written on demand."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

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
def kjv_cache(tmp_path_factory):
    """One cache folder shared by the tests that tokenize the 4 MB built-in corpus."""
    return tmp_path_factory.mktemp("kjv-cache")
