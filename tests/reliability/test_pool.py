"""The tokenizer workers never hang the command: an error while they are busy (a bad byte late
in the corpus, a cache write that fails), or the first Ctrl-C, ends it within seconds in one
line, and the workers end with it (issue: reliability, H1)."""

import os
import random
import resource
import signal
import subprocess
import sys
import time

import pytest

TIMEOUT = 90  # the old pool hung for good; a working one answers in seconds


def words_file(path, megabytes: float, bad_at: int | None = None) -> None:
    """Lines of 8 random words (about megabytes MB), a byte 0xff at bad_at if given."""
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8)))
             for _ in range(2000)]
    lines, size = [], 0
    while size < megabytes * 2**20:
        line = " ".join(rng.choice(vocab) for _ in range(8)) + "\n"
        lines.append(line)
        size += len(line)
    data = "".join(lines).encode()
    if bad_at is not None:
        data = data[:bad_at] + b"\xff" + data[bad_at:]
    path.write_bytes(data)


def seqmodels(*args, tmp_path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    return subprocess.Popen([sys.executable, "-m", "seqmodels", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str, float]:
    """Exit status, stderr and seconds of a command, killed (and failed) if it hangs."""
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the command hung for {TIMEOUT} s")
    return proc.returncode, err, time.monotonic() - started


def children(pid: int) -> list[int]:
    """The processes a process started (its workers, and multiprocessing's tracker)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def gone(pids: list[int], within: float = 10.0) -> bool:
    """Whether every one of pids has ended (or is a zombie) within seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split(")")[-1].split()[0] != "Z":
                        alive.append(pid)
            except FileNotFoundError:
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


def tokenizing(tmp_path, megabytes: float, processes: int) -> tuple[subprocess.Popen, list]:
    """`corpus` of a words file at word level with 2 workers, once it has `processes` children
    and they have their first chunks; the command and those children."""
    corpus = tmp_path / "big.txt"
    words_file(corpus, megabytes)
    proc = seqmodels("corpus", corpus, "--level", "word", "--no-cache", "--workers", "2",
                     tmp_path=tmp_path)
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < processes and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the workers have their first chunks
    workers = children(proc.pid)
    assert proc.poll() is None and len(workers) >= processes, proc.communicate()
    return proc, workers


def test_a_bad_byte_late_in_a_multi_chunk_corpus_is_one_line_at_once(tmp_path):
    """(The old pool hung on this when the bad byte came while its queue was full; here, where
    the reader outruns the workers' start, it did not: the failing cache write below is the
    case that hung every time.)"""
    corpus = tmp_path / "late_bad.txt"
    words_file(corpus, 4, bad_at=2_500_000)  # chunks of 1 MiB: the third holds it
    code, err, seconds = finish(seqmodels("corpus", corpus, "--no-cache", "--workers", "2",
                                          "--level", "word", tmp_path=tmp_path))
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"Error: {corpus}: byte 0xff at offset 2500000 is not "
                                        f"valid utf-8 (try --encoding latin-1 or --errors "
                                        f"replace)"]


def test_a_cache_write_that_fails_midway_is_one_line_at_once(tmp_path):
    """A nearly full disk, as a file-size limit: the provisional ids grow past it while the
    workers hold jobs in hand. The old pool hung for good; the message named no file ("a
    file: 2097100 requested and 524288 written")."""
    corpus = tmp_path / "big.txt"
    words_file(corpus, 4)
    limit = 2 * 2**20

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code, err, seconds = finish(seqmodels("corpus", corpus, "--workers", "2", "--cache-dir",
                                          tmp_path / "cache", tmp_path=tmp_path,
                                          preexec_fn=small_files))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert "File too large" in lines[0]


def test_the_first_ctrl_c_while_tokenizing_ends_the_command_and_its_workers(tmp_path):
    proc, workers = tokenizing(tmp_path, 16, 2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole group
    stopped = time.monotonic()
    code, err, _ = finish(proc)
    assert time.monotonic() - stopped < 10
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert "Traceback" not in err
    assert gone(workers)


def test_a_corpus_appended_to_while_it_is_read_is_one_line(tmp_path):
    """H1's fourth trigger: a file that grows while the workers tokenize it."""
    proc, _ = tokenizing(tmp_path, 8, 2)
    with open(tmp_path / "big.txt", "a") as f:
        f.write("more words written while the command reads\n" * 1000)
    code, err, _ = finish(proc)
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"Error: {tmp_path / 'big.txt'} changed while it was "
                                        f"being read; try again"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_the_workers_and_their_tracker_end_with_a_command_that_is_killed(tmp_path, signum):
    """H2: SIGTERM or SIGHUP (a closed terminal) while tokenizing left both workers and
    multiprocessing's resource tracker running under PID 1 for ever (they held the command's
    stderr, so this test's wait for it hung too). Fixed by the pool of pipes: a worker ends at
    the end of its pipe."""
    proc, workers = tokenizing(tmp_path, 16, 3)  # the two workers and the tracker
    os.kill(proc.pid, signum)  # the command alone, as a service manager or a hang-up does
    finish(proc)
    assert gone(workers), [open(f"/proc/{p}/cmdline").read() for p in workers
                           if os.path.exists(f"/proc/{p}")]


# --- DL1: a hard link is not ours ------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory, train_tiny, cat_text):
    root = tmp_path_factory.mktemp("links")
    corpus = root / "c.txt"
    corpus.write_text(cat_text)
    return train_tiny(corpus, root / "run", epochs=1, batch_size=8, seq_len=16,
                      steps_per_epoch=2)


def test_a_hard_linked_lock_file_is_refused_and_left_alone(run, tmp_path):
    """`ln precious.txt run/.lock; train --resume run` emptied precious.txt."""
    import shutil

    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    (copy / ".lock").unlink()
    os.link(precious, copy / ".lock")
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {copy / '.lock'} is a hard link to a file elsewhere (2 names); seqmodels writes "
        f"only the run's own lock file, so remove it (the run makes a new one)"]
    assert precious.read_text() == "mine\n"


def test_a_hard_linked_samples_file_is_never_appended_to(run, tmp_path):
    """A `cp -al` snapshot of a run shares its samples.txt with the original."""
    import shutil

    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    original = tmp_path / "original-samples.txt"
    original.write_text("--- step 1\nfrom the original run\n")
    os.link(original, copy / "samples.txt")
    result = CliRunner().invoke(cli, ["train", "--resume", str(copy), "--epochs", "2",
                                      "--sample-every", "1", "-q"])
    assert result.exit_code == 1 and "is a hard link (2 names)" in result.stderr
    assert original.read_text() == "--- step 1\nfrom the original run\n"
