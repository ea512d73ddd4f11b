"""The command line: help, version, `seqmodels corpus`, and one-line errors for bad input."""

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from seqmodels import __version__
from seqmodels.cli.main import cli


def run(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def all_commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "top")
def test_help_of_every_command(path):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_python_dash_m_works_like_the_script():
    out = subprocess.run([sys.executable, "-m", "seqmodels", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"seqmodels, version {__version__}"


def test_help_does_not_import_tensorflow():
    code = "import sys; from seqmodels.cli import cli; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("level", ["char", "word"])
def test_corpus_json_on_a_user_directory(text_dir, level):
    result = run("corpus", str(text_dir), "--level", level, "--seq-len", "20", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["files"]) == 3 and report["level"] == level
    sizes = [len(p.read_text()) for p in (text_dir / "a.txt", text_dir / "b.txt",
                                           text_dir / "sub" / "c.txt")]
    assert report["characters"] == sum(sizes)
    assert sum(report["splits"].values()) == report["tokens"]
    if level == "char":
        assert report["tokens"] == report["characters"]
    else:
        assert report["tokens"] < report["characters"] / 3 and report["tokenizer"] == "nltk"
    assert report["windows"]["train"] == (report["splits"]["train"] - 21) // 20 + 1
    assert report["cache"]["hit"] is False
    again = json.loads(run("corpus", str(text_dir), "--level", level, "--seq-len", "20",
                           "--json").output)
    assert again["cache"]["hit"] is True


def test_corpus_text_table(text_dir):
    result = run("corpus", str(text_dir), "--level", "word", "--tokenizer", "wordpunct",
                 "--min-freq", "2", "-T", "10")
    assert result.exit_code == 0, result.output
    for label in ("files", "characters", "tokens", "vocabulary", "coverage", "held-out OOV",
                  "splits", "windows T=10", "cache"):
        assert label in result.output
    assert "tokenizer wordpunct" in result.output


@pytest.mark.slow
def test_corpus_builtin_default():
    result = run("corpus", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["files"] == ["kjv"] and report["tokens"] == report["characters"] > 4_000_000


def test_export_never_overwrites(text_dir, tmp_path):
    out = tmp_path / "out" / "corpus.txt"
    assert run("corpus", str(text_dir / "a.txt"), "--export", str(out)).exit_code == 0
    assert out.read_text() == "Alpha beta gamma.\n" * 30
    out.write_text("mine")
    result = run("corpus", str(text_dir / "a.txt"), "--export", str(out))
    assert result.exit_code == 1 and "exists; pass --force" in result.output
    assert out.read_text() == "mine"
    assert run("corpus", str(text_dir / "a.txt"), "--export", str(out), "--force").exit_code == 0


def _bad_inputs(tmp):
    (tmp / "empty.txt").write_text("")
    (tmp / "short.txt").write_text("tiny\n")
    (tmp / "bad.txt").write_bytes(b"ok\n\xc3\x28 broken")
    (tmp / "nodir").mkdir()
    (tmp / "nodir" / "readme.md").write_text("x")
    return {
        "empty corpus": ([str(tmp / "empty.txt")], "the corpus is empty"),
        "shorter than T + 1": ([str(tmp / "short.txt"), "-T", "10"], "too few for one window"),
        "undecodable bytes": ([str(tmp / "bad.txt")], "byte 0xc3 at offset 3 is not valid utf-8"),
        "missing path": ([str(tmp / "missing.txt")], "no such file or directory"),
        "no .txt files": ([str(tmp / "nodir")], "holds no .txt files"),
        "bad splits": ([str(tmp / "short.txt"), "--splits", "0.9,0.2"], "three fractions"),
    }


@pytest.mark.parametrize("case", ["empty corpus", "shorter than T + 1", "undecodable bytes",
                                  "missing path", "no .txt files", "bad splits"])
def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, case):
    args, message = _bad_inputs(tmp_path)[case]
    result = CliRunner().invoke(cli, ["corpus", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1


def test_bad_input_from_a_real_process(tmp_path):
    """The installed console script prints one stderr line and exits 1: no traceback."""
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfd")
    out = subprocess.run([sys.executable, "-m", "seqmodels", "corpus", str(tmp_path / "bad.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "offset 0" in out.stderr


def test_errors_name_the_running_commands_options():
    """One setting, two spellings: evaluate's corpus is --corpus, train's is the CORPUS
    argument; TrainConfig's lr is --lr; a cluster is --workers-spec."""
    from seqmodels.cli.options import cli_message, option_name
    from seqmodels.errors import SeqmodelsError

    error = SeqmodelsError("read other text with `corpus` PATH; lower `lr`; `cluster` a:1")
    CliRunner().invoke(cli, ["evaluate", "--help"])
    assert option_name("corpus") == "--corpus"
    assert cli_message(error) == ("read other text with --corpus PATH; lower --lr; "
                                  "--workers-spec a:1")
    CliRunner().invoke(cli, ["train", "--help"])
    assert option_name("corpus") == "CORPUS" and option_name("seq_len") == "--seq-len"
    CliRunner().invoke(cli, ["forecast", "train", "--help"])
    assert option_name("csv") == "CSV" and option_name("window") == "--window"
