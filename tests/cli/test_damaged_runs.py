"""Damaged run files: each gives one line naming the file and the problem, exit 1, no traceback.

One real tiny run is trained per module and copied for every (file, damage, command) case.
"""

import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.cli.main import cli

COMMANDS = {
    "evaluate": ["evaluate", "{run}", "-q"],
    "generate": ["generate", "{run}", "-n", "5", "--seed", "0"],
    "resume": ["train", "--resume", "{run}", "--epochs", "2", "-q"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_tiny, cat_text):
    """A 1-epoch GRU run with latest.npz and previous.npz (checkpoints every 2 steps)."""
    root = tmp_path_factory.mktemp("damaged")
    corpus = root / "corpus.txt"
    corpus.write_text(cat_text)
    run = train_tiny(corpus, root / "run", cell="gru", epochs=1, batch_size=8, seq_len=20,
                     steps_per_epoch=5, checkpoint_every=2)
    assert (run / "checkpoints" / "previous.npz").is_file()
    return run


def _future_npz(data: bytes) -> bytes:
    """The same checkpoint with a checkpoint_version from the future."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = json.loads(bytes(arrays["state.json"]).decode())
    state["checkpoint_version"] = 99
    arrays["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _future_json(data: bytes) -> bytes:
    obj = json.loads(data)
    obj["version"] = 99
    return json.dumps(obj).encode()


def _zip_of_garbage(data: bytes) -> bytes:
    """A valid zip archive whose config.json is not a model."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", '{"class_name": "Nothing"}')
        z.writestr("metadata.json", "{}")
    return buf.getvalue()


def _small_vocab(data: bytes) -> bytes:
    obj = json.loads(data)
    obj["tokens"] = obj["tokens"][:-2]  # a valid vocabulary, two tokens short of the model
    return json.dumps(obj).encode()


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8)),
    "future": None,  # per file type, below
    "zip-of-garbage": _zip_of_garbage,
    "wrong-size": _small_vocab,
    "not-an-object": lambda data: b"[1, 2, 3]",
}

# (file, damage) -> the words the error must contain, besides the file's name
CASES = {
    ("config.json", "truncated"): "damaged JSON",
    ("config.json", "empty"): "damaged JSON",
    ("config.json", "garbage"): "damaged JSON",
    ("config.json", "future"): "newer than this seqmodels reads",
    ("config.json", "not-an-object"): "not a seqmodels run",
    ("vocab.json", "truncated"): "damaged JSON",
    ("vocab.json", "empty"): "damaged JSON",
    ("vocab.json", "garbage"): "damaged JSON",
    ("vocab.json", "future"): "newer than this seqmodels reads",
    ("vocab.json", "not-an-object"): "not a seqmodels vocabulary",
    ("vocab.json", "wrong-size"): "but the model predicts",
    ("model.keras", "truncated"): "truncated or damaged",
    ("model.keras", "empty"): "truncated or damaged",
    ("model.keras", "garbage"): "truncated or damaged",
    ("model.keras", "zip-of-garbage"): "cannot load model",
    ("checkpoints/*.npz", "truncated"): "damaged checkpoint",
    ("checkpoints/*.npz", "garbage"): "damaged checkpoint",
    ("checkpoints/*.npz", "future"): "newer than",
    # a latest.npz from a newer seqmodels is refused, not skipped for the older previous.npz
    ("checkpoints/latest.npz", "future"): "newer than",
    # latest.npz alone: resume falls back to previous.npz (with a warning); see below
    ("checkpoints/latest.npz", "truncated"): None,
    ("checkpoints/latest.npz", "garbage"): None,
}

def damage(run, pattern: str, how: str) -> list:
    """Damage the file(s) of run matching pattern; return their paths."""
    paths = sorted(run.glob(pattern))
    assert paths, pattern
    for path in paths:
        data = path.read_bytes()
        if how == "future":
            new = _future_npz(data) if path.suffix == ".npz" else _future_json(data)
        else:
            new = DAMAGE[how](data)
        path.write_bytes(new)
    return paths


def snapshot(root):
    """Files below root with their mtimes and bytes (the run lock's file is taken and released
    by any writer that opens the run; it holds no data)."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _params():
    for (pattern, how), words in CASES.items():
        for command in COMMANDS:
            yield pytest.param(pattern, how, command, words,
                               id=f"{pattern}-{how}-{command}")


@pytest.mark.parametrize("pattern, how, command, words", list(_params()))
def test_a_damaged_run_file_gives_one_line(trained, tmp_path, pattern, how, command, words):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    paths = damage(run, pattern, how)
    before = snapshot(run)
    args = [a.format(run=run) for a in COMMANDS[command]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(trained.parent / "cache"))
        result = CliRunner().invoke(cli, args)
    assert "Traceback" not in result.output + result.stderr
    needed = words is not None and (command == "resume" or not pattern.startswith("checkpoints"))
    if not needed:  # evaluate/generate never read checkpoints; resume falls back to previous.npz
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    # one line of error (a resume may first warn that it falls back to previous.npz)
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert any(str(p) in lines[0] for p in paths), lines[0]
    assert words in lines[0]
    assert snapshot(run) == before  # a refused command changes nothing in the run


def test_resume_from_a_damaged_latest_checkpoint_warns_and_uses_previous(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run, "checkpoints/latest.npz", "truncated")
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^warning: .*latest.npz: damaged checkpoint.*previous.npz instead$",
                     result.stderr, re.M), result.stderr


def test_a_run_without_checkpoints_folder_cannot_resume(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    shutil.rmtree(run / "checkpoints")
    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--epochs", "2", "-q"])
    assert result.exit_code == 1 and "no checkpoint to resume from" in result.stderr
    assert len(result.stderr.splitlines()) == 1
