"""One writer per run directory: an advisory lock the kernel releases when its holder dies."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqmodels.errors import SeqmodelsError


def lock_holder(path: str | Path) -> str:
    """What a lock file says about its last holder ('pid N on HOST'), or '' when empty."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        text = os.pread(fd, 200, 0).decode("utf-8", errors="replace").split()
    except OSError:
        return ""
    finally:
        os.close(fd)
    if len(text) < 2 or not text[0].isdigit():
        return ""
    return f"pid {text[0]} on {text[1][:100]}"


@contextmanager
def run_lock(path: str | Path, run_dir: str | Path) -> Iterator[None]:
    """Hold the lock file `path` of run_dir while the block runs; refuse when a live process
    holds it.

    flock() locks belong to the open file, so a killed holder's lock vanishes with it: a stale
    lock file is simply taken over. The file stays in place (removing it would let two
    processes lock two different files); a clean exit empties it.
    """
    path = Path(path)
    try:  # never through a link: the lock file is truncated and written
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SeqmodelsError(f"{path} is a symbolic link; seqmodels does not write through "
                                 f"links: remove it, or use another run directory") from None
        raise SeqmodelsError(f"{path}: cannot create the run lock ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SeqmodelsError(f"{path} is not a regular file; remove it, or use another run "
                                 f"directory")
        if info.st_nlink > 1:  # the lock file is emptied and written: never another's file
            raise SeqmodelsError(f"{path} is a hard link to a file elsewhere ({info.st_nlink} "
                                 f"names); seqmodels writes only the run's own lock file, so "
                                 f"remove it (the run makes a new one)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock_holder(path) or "another process"
            raise SeqmodelsError(
                f"{run_dir} is in use: {holder} is training it; wait for it to finish or stop "
                f"it, then try again"
            ) from None
        stale = lock_holder(path)
        if stale:
            warnings.warn(f"taking over the lock of {run_dir} left by {stale}, which is no "
                          f"longer running", stacklevel=3)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty lock file means its last holder ended cleanly
    finally:
        os.close(fd)


def training_now(path: str | Path) -> str | None:
    """Who holds the lock file ('pid N on HOST'), or None when no live process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return lock_holder(path) or "another process"
    finally:
        os.close(fd)  # closing releases a lock this call took
    return None
