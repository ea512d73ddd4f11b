"""Bad input to every command: one clear line on stderr, exit 2 (usage) or 1 (data), no
traceback, and nothing created or overwritten.

Click's usage errors print a "Usage: ..." line and a "Try '... -h' for help." line before the
error; those two preamble lines are allowed, and the error itself must be exactly one line.
"""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli

TINY = ["--cell", "gru", "--layers", "1", "--units", "16", "--embedding-dim", "8",
        "--batch-size", "8", "-T", "20", "--epochs", "1", "--steps-per-epoch", "2", "-q"]
BIG = 10 * 2**20  # characters in the single-line file
SCRIPT = Path(sys.executable).with_name("seqmodels")


@pytest.fixture(scope="module")
def world(tmp_path_factory, train_tiny, cat_text):
    """Input files of every kind and one tiny trained run, shared by the whole module."""
    root = tmp_path_factory.mktemp("bad-input")
    inputs = root / "inputs"
    inputs.mkdir()
    (inputs / "good.txt").write_text(cat_text)
    (inputs / "empty.txt").write_text("")
    (inputs / "blank.txt").write_text("\n  \n\t\n")
    (inputs / "binary.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" +
                                        random.Random(0).randbytes(4000))
    (inputs / "nul.txt").write_bytes(b"abc\x00\x00\x01def\x02\n" * 200)
    (inputs / "invalid.txt").write_bytes(b"hello\n\xc3\x28 broken\n" * 10)
    letters = np.frombuffer(b"the cat sat on mat dog log.,", dtype=np.uint8)
    (inputs / "big.txt").write_bytes(np.random.default_rng(1).choice(letters, BIG).tobytes())
    (inputs / "short.txt").write_text("tiny\n")
    (inputs / "notext").mkdir()
    (inputs / "notext" / "readme.md").write_text("not a corpus\n")
    train_tiny(inputs / "good.txt", root / "run", cell="gru", epochs=1, batch_size=8, seq_len=20,
               steps_per_epoch=5)
    return root


CORPUS_FILES = {  # name -> (exit code, message) when used as a corpus
    "empty.txt": (1, "the corpus is empty"),
    "blank.txt": (1, "the corpus is empty"),
    "binary.png": (1, "byte 0x89 at offset 0 is not valid utf-8"),
    "nul.txt": (1, "NUL characters"),
    "invalid.txt": (1, "byte 0xc3 at offset 6 is not valid utf-8"),
    "missing.txt": (1, "no such file or directory"),
    "notext": (1, "holds no .txt files"),
}

def _cases():
    """(id, argv with {in} {run} {out} placeholders, exit code, message, marks)."""
    for name, (code, message) in CORPUS_FILES.items():
        yield f"corpus-{name}", ["corpus", f"{{in}}/{name}", "-q"], code, message, []
        yield f"train-{name}", ["train", f"{{in}}/{name}", *TINY, "--out", "{out}"], code, \
            message, []
        yield f"evaluate-corpus-{name}", ["evaluate", "{run}", "--corpus", f"{{in}}/{name}",
                                          "-q"], code, message, []
    yield "corpus-short", ["corpus", "{in}/short.txt", "-T", "10", "-q"], 1, \
        "too few for one window", []
    yield "train-short", ["train", "{in}/short.txt", *TINY, "--out", "{out}"], 1, \
        "too few for one window", []
    yield "train-short-default-out", ["train", "{in}/short.txt", *TINY], 1, \
        "too few for one window", []
    yield "evaluate-short", ["evaluate", "{run}", "--corpus", "{in}/short.txt", "--context",
                             "10", "-q"], 1, "too few for one window", []
    # a 10 MB line: corpus and train work; evaluate works (slow: 10M predictions); a 10 MB
    # prompt is refused (a shell cannot even pass an argument over 128 KiB)
    yield "corpus-10MB-line", ["corpus", "{in}/big.txt", "-q", "--json"], 0, '"tokens"', []
    yield "train-10MB-line", ["train", "{in}/big.txt", *TINY, "-T", "100", "--batch-size",
                              "64", "--out", "{out}"], 0, "{out}", [pytest.mark.slow]
    yield "evaluate-10MB-line", ["evaluate", "{run}", "--corpus", "{in}/big.txt", "--context",
                                 "100", "-q", "--json"], 0, '"tokens"', [pytest.mark.slow]
    yield "generate-10MB-prompt", ["generate", "{run}", "--prompt", "{big}"], 2, \
        "at most 100,000 characters", []
    # zero, negative and out-of-range settings
    for option, value in [("--seq-len", "0"), ("--stride", "0"), ("--min-freq", "0"),
                          ("--max-vocab", "2"), ("--splits", "0.9,0.2"),
                          ("--splits", "1.5,-0.5,0"), ("--encoding", "no-such-codec"),
                          ("--level", "no-such-level")]:
        yield f"corpus{option}={value}", ["corpus", "{in}/good.txt", option, value], 2, \
            option, []
    for option, value in [("--units", "0"), ("--layers", "0"), ("--embedding-dim", "0"),
                          ("--batch-size", "-1"), ("--batch-size", "0"), ("--seq-len", "0"),
                          ("-T", "-5"), ("--epochs", "0"), ("--stride", "0"),
                          ("--steps-per-epoch", "0"), ("--checkpoint-every", "0"),
                          ("--lr", "0"), ("--lr", "-1"), ("--dropout", "1"),
                          ("--max-time", "0"), ("--max-time", "-5s"),
                          ("--encoding", "no-such-codec")]:
        yield f"train{option}={value}", ["train", "{in}/good.txt", *TINY, option, value,
                                         "--out", "{out}"], 2, option, []
    for option, value in [("--context", "0"), ("--context", "-3")]:
        yield f"evaluate{option}={value}", ["evaluate", "{run}", option, value], 2, option, []
    for option, value in [("--length", "0"), ("--length", "-5"), ("--temperature", "-1"),
                          ("--temperature", "nan"), ("--temperature", "inf"),
                          ("--top-p", "0"), ("--top-p", "1.5"), ("--top-p", "-0.1"),
                          ("--top-p", "nan"), ("--top-k", "-1"), ("--top-k", "0"),
                          ("--num-samples", "0"), ("--prompt", "")]:
        yield f"generate{option}={value}", ["generate", "{run}", "-n", "5", option, value], 2, \
            option, []
    yield "evaluate-corpus-gone", ["-rm-corpus", "evaluate", "{run}", "-q"], 1, \
        "cannot read the corpus the run was trained on", []
    yield "generate-unknown-prompt", ["generate", "{run}", "--prompt", "日本語 ☃"], 1, \
        "outside the vocabulary: '日', '本', '語', '☃'", []
    # run directories that are missing, are not runs, or miss a file
    run_cmds = {"evaluate": ["evaluate", "{run}", "-q"],
                "generate": ["generate", "{run}", "-n", "5", "--seed", "0"],
                "resume": ["train", "--resume", "{run}", "--epochs", "2", "-q"]}
    for cmd, argv in run_cmds.items():
        yield f"{cmd}-no-such-run", [a.replace("{run}", "{in}/nowhere") for a in argv], 1, \
            "no such run directory", []
        yield f"{cmd}-not-a-run", [a.replace("{run}", "{in}/notext") for a in argv], 1, \
            "is not a seqmodels run (it has no config.json)", []
        yield f"{cmd}-run-is-a-file", [a.replace("{run}", "{in}/good.txt") for a in argv], 2, \
            "is a file", []
        yield f"{cmd}-without-config.json", ["-rm config.json", *argv], 1, \
            "is not a seqmodels run (it has no config.json)", []
        yield f"{cmd}-without-vocab.json", ["-rm vocab.json", *argv], 1, \
            "vocab.json: file not found", []
        if cmd != "resume":  # resume rebuilds model.keras at its next best epoch
            yield f"{cmd}-without-model.keras", ["-rm model.keras", *argv], 1, \
                "model.keras: file not found", []
        yield f"{cmd}-without-checkpoints", ["-rm checkpoints", *argv], \
            *((1, "no checkpoint to resume from") if cmd == "resume" else (0, "")), []


CASES = list(_cases())


def snapshot(*roots):
    """Every file and folder below roots with its modification time and size (but the run
    lock's file, which any writer opening a run takes and releases; it holds no data)."""
    return {p: (p.is_dir(), p.stat().st_mtime_ns, p.stat().st_size)
            for root in roots for p in sorted(root.rglob("*")) if p.name != ".lock"}


def expand(argv, world, tmp_path):
    """Fill in the placeholders; a leading '-rm NAME' removes NAME from the run copy first."""
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    if argv[0] == "-rm-corpus":  # the run points at a corpus that has since moved away
        config = json.loads((run / "config.json").read_text())
        config["data"]["corpus"] = [str(tmp_path / "moved.txt")]
        (run / "config.json").write_text(json.dumps(config))
        argv = argv[1:]
    elif argv[0].startswith("-rm "):
        target = run / argv[0][4:]
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        argv = argv[1:]
    values = {"{in}": str(world / "inputs"), "{run}": str(run), "{out}": str(tmp_path / "out")}
    out = []
    for a in argv:
        if a == "{big}":
            a = "x" * BIG
        for key, value in values.items():
            a = a.replace(key, value)
        out.append(a)
    return out


def error_lines(stderr: str) -> list[str]:
    """stderr without click's usage preamble ("Usage: ...", "Try '...' for help.", blanks)."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(("Usage: ", "Try '"))]


@pytest.mark.parametrize("argv, code, message",
                         [pytest.param(a, c, m, marks=k, id=i) for i, a, c, m, k in CASES])
def test_bad_input(world, tmp_path, monkeypatch, argv, code, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(world / "cache"))
    argv = expand(argv, world, tmp_path)
    message = message.replace("{out}", str(tmp_path / "out"))
    before = snapshot(tmp_path, world / "inputs", world / "run")
    result = CliRunner().invoke(cli, argv)
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit), result.exception
    assert result.exit_code == code, result.output
    if code == 0:
        assert message in result.stdout
        if argv[0] == "train":
            made = set(snapshot(tmp_path)) - set(before)
            assert made and all(p.is_relative_to(tmp_path / "out") for p in made)
        return
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]
    if code == 2:
        assert result.stderr.startswith("Usage: ")
    else:
        assert result.stderr.count("\n") == 1  # data errors: nothing but the one line
    assert result.stdout == ""
    assert snapshot(tmp_path, world / "inputs", world / "run") == before
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_the_matrix_covers_every_command():
    commands = {argv[1] if argv[0].startswith("-rm") else argv[0] for _, argv, *_ in CASES}
    assert commands >= {"corpus", "train", "evaluate", "generate"}


@pytest.mark.parametrize("argv, code, message", [
    (["corpus", "{in}/invalid.txt"], 1, "not valid utf-8"),
    (["train", "{in}/short.txt", *TINY, "--out", "{out}"], 1, "too few for one window"),
    (["train", "{in}/good.txt", "--units", "0", "--out", "{out}"], 2, "--units"),
    (["evaluate", "{run}", "-q"], 1, "model.keras: not a complete .keras file"),
    (["generate", "{run}", "--prompt", "☃", "-n", "3"], 1, "outside the vocabulary"),
], ids=["corpus-invalid-utf8", "train-short", "train-units-0", "evaluate-damaged-model",
        "generate-unknown-prompt"])
def test_no_traceback_reaches_a_real_terminal(world, tmp_path, argv, code, message):
    argv = expand(argv, world, tmp_path)
    if argv[0] == "evaluate":
        (tmp_path / "run" / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    env = {**os.environ, "XDG_CACHE_HOME": str(world / "cache")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell would have it
    before = snapshot(tmp_path, world / "inputs")
    out = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=300)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert out.stdout == ""
    assert snapshot(tmp_path, world / "inputs") == before


def test_a_10MB_line_stays_within_memory(world, tmp_path):
    """`seqmodels corpus` on a 10 MB single line: works, in well under 1 GB."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # VmHWM is this process's own peak (ru_maxrss would include the forking parent's)
    code = ("import sys; from seqmodels.cli import cli; sys.argv = ['seqmodels', 'corpus', "
            "sys.argv[1], '-q', '--no-cache']\ntry:\n    cli()\nexcept SystemExit:\n    pass\n"
            "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(world / "inputs" / "big.txt")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "train 9,437,185" in out.stdout
    peak_kb = int(out.stdout.strip().splitlines()[-1])
    assert peak_kb < 1_000_000, peak_kb


def test_a_multi_line_library_message_is_printed_on_one_line(monkeypatch, tmp_path):
    import seqmodels.data.prepare
    from seqmodels.errors import SeqmodelsError

    def fail(*args, **kwargs):
        raise SeqmodelsError("first part\n  second part\n")

    monkeypatch.setattr(seqmodels.data.prepare, "prepare_corpus", fail)
    (tmp_path / "a.txt").write_text("some text\n")
    result = CliRunner().invoke(cli, ["corpus", str(tmp_path / "a.txt")])
    assert result.exit_code == 1 and result.stderr == "Error: first part second part\n"
