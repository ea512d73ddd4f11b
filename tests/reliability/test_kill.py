"""kill -9 a real `seqmodels train` again and again, resume each time, and lose nothing.

`make test` kills 3 times; `make test-reliability` (pytest --kills 20) kills 20 times. Kills land
at random moments: during start-up, just after a step that writes a checkpoint (so often in the
middle of the write), and at random steps, epoch ends included (validation, best-model save,
history). After every kill each file of the run must be readable, the checkpoint must be at most
one checkpoint interval behind the last step the process reported, and at the end the weights
must equal those of an uninterrupted run with --deterministic.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from seqmodels.data.vocab import Vocabulary
from seqmodels.models.saving import load_model
from seqmodels.training import checkpoint
from seqmodels.training.rundir import RunDir

INTERVAL = 3  # --checkpoint-every
EPOCHS, STEPS = 4, 25
SETTINGS = ["--cell", "gru", "--layers", "1", "--units", "16", "--embedding-dim", "8",
            "--batch-size", "8", "-T", "20", "--epochs", str(EPOCHS), "--steps-per-epoch",
            str(STEPS), "--checkpoint-every", str(INTERVAL), "--deterministic", "--seed", "1"]
TOTAL = EPOCHS * STEPS


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "kappa", "sigma", "omega", "theta"]
    lines = [" ".join(rng.choice(words, size=8)) for _ in range(600)]
    path = tmp_path / "words.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


class Trainer:
    """A `seqmodels train` child process whose stderr lines are collected as they come."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.proc = subprocess.Popen([sys.executable, "-m", "seqmodels", "train", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def last_step(self) -> int:
        """The last global step the process reported as done (0 if none)."""
        steps = [int(line.split("(global ")[1].split(")")[0])
                 for line in list(self.lines) if "(global " in line]
        return max(steps, default=0)

    def wait_for_step(self, target: int, timeout: float = 120) -> bool:
        """True once the process has reported step >= target; False if it ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last_step() >= target:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.002)
        raise AssertionError(f"no step {target} within {timeout} s:\n" + "\n".join(self.lines))

    def kill(self) -> bool:
        """kill -9; True if the process was still running."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return alive

    def finish(self, timeout: float = 300) -> str:
        """Wait for a normal end and return stderr."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return "\n".join(self.lines)


def timed(column: str) -> bool:
    """A history column that measures time (and so differs from run to run)."""
    return column.endswith(("seconds", "_per_s"))


def assert_readable(run: Path) -> int:
    """Every file of the run loads; return the global step of the newest checkpoint."""
    RunDir(run).read_config()
    Vocabulary.load(run / "vocab.json")
    for name in ("latest.npz", "previous.npz"):
        if (run / "checkpoints" / name).exists():
            checkpoint.read(run / "checkpoints" / name)
    if (run / "model.keras").exists():
        load_model(run / "model.keras")
    history = RunDir(run).read_history()
    epochs = [row["epoch"] for row in history]
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    ckpt = RunDir(run).latest_checkpoint()
    assert ckpt is not None, "no checkpoint survived"
    return checkpoint.read(ckpt).progress["global_step"]


def test_kill_9_and_resume(tmp_path, corpus, request):
    kills = request.config.getoption("--kills")
    common = ["--log-every", "1", "-q", "--cache-dir", str(tmp_path / "cache")]
    reference = Trainer([str(corpus), "--out", str(tmp_path / "reference"), *SETTINGS, *common])
    assert reference.finish() and reference.proc.returncode == 0, reference.lines

    rng = np.random.default_rng(int(os.environ.get("SEQMODELS_KILL_SEED", "0")))
    run = tmp_path / "run"
    child = Trainer([str(corpus), "--out", str(run), *SETTINGS, *common])
    child.wait_for_step(1)  # the first process gets as far as its first step
    done, delivered, mid_write, lost = 0, 0, 0, []
    while delivered < kills:
        if done and delivered % 4 == 3:  # a start-up kill: import, lock, restore, tracing
            time.sleep(rng.uniform(0.05, 3.0))
        else:
            target = min(TOTAL, done + int(rng.integers(1, 2 * INTERVAL + 1)))
            if rng.random() < 0.5:  # just after a step that writes a checkpoint
                target = min(TOTAL, -(-target // INTERVAL) * INTERVAL)
            child.wait_for_step(target)
            time.sleep(rng.uniform(0, 0.004 if target % INTERVAL == 0 else 0.05))
        reported = max(child.last_step(), done)  # done: where this process started from
        if not child.kill():
            break  # training finished before this kill
        delivered += 1
        mid_write += any(p.name.startswith(".") for p in (run / "checkpoints").iterdir())
        done = assert_readable(run)
        assert reported - done <= INTERVAL, (reported, done)  # at most one interval lost
        lost.append(reported - done)
        child = Trainer(["--resume", str(run), *common])
    err = child.finish()
    assert child.proc.returncode == 0, err
    print(f"\n{delivered} kills, {mid_write} left a half-written checkpoint behind, "
          f"steps lost per kill: {lost}")
    assert delivered == kills, f"training ended after {delivered} kills; make it longer"
    assert "Traceback" not in err

    assert assert_readable(run) == TOTAL
    ours, theirs = (checkpoint.read(RunDir(r).latest_checkpoint()).arrays["weights"]
                    for r in (run, tmp_path / "reference"))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    history = RunDir(run).read_history()
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    same = [{k: v for k, v in row.items() if not timed(k)} for row in history]
    assert same == [{k: v for k, v in row.items() if not timed(k)}
                    for row in RunDir(tmp_path / "reference").read_history()]
