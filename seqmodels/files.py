"""Small files: JSON with one-line errors on read; atomic replacement on write."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from seqmodels.errors import SeqmodelsError

# Every temporary file or folder seqmodels makes starts with this, and clean-up removes nothing
# else: a user's own files (or another program's) that look like temporaries stay.
TEMP_PREFIX = ".seqmodels-tmp-"
MAX_JSON_BYTES = 256 * 2**20  # vocab.json of a few million words; config.json is far smaller


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file (links followed) of at most max_bytes; a FIFO, device or
    folder is refused at once, never read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait
    except FileNotFoundError:
        raise SeqmodelsError(f"{path}: file not found") from None
    except OSError as exc:
        raise SeqmodelsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # before fdopen, which fails on a folder naming only fd
        os.close(fd)
        raise SeqmodelsError(f"{path}: not a regular file, so seqmodels does not read it")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > max_bytes:
            raise SeqmodelsError(f"{path}: {info.st_size:,} bytes, more than the "
                                 f"{max_bytes:,} such a file may hold")
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise SeqmodelsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise SeqmodelsError(f"{path}: more than the {max_bytes:,} bytes such a file may hold")
    return data


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES) -> object:
    """Parse a JSON file, with one-line errors for missing, damaged or oversized files."""
    data = read_regular(path, max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeqmodelsError(f"{path}: damaged JSON ({exc})") from None
    except RecursionError:
        raise SeqmodelsError(f"{path}: damaged JSON (nested too deeply)") from None


def check_format(obj: object, name: str, newest: int, where: str, what: str) -> dict:
    """obj as a dict, if it names format `name` at a version this code reads (<= newest)."""
    if not isinstance(obj, dict) or obj.get("format") != name:
        raise SeqmodelsError(f"{where}: not a seqmodels {what}")
    version = obj.get("version")
    if not isinstance(version, int) or version > newest:
        raise SeqmodelsError(
            f"{where}: {what} format version {version} is newer than this seqmodels reads "
            f"({newest}); upgrade seqmodels"
        )
    return obj


def write_json_atomic(path: str | Path, obj: object) -> None:
    """Write obj as JSON to path atomically."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 holds lone surrogates: escape them
        text = json.dumps(obj, indent=1)
    write_text_atomic(path, text + "\n")


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside path; on success move it into place with os.replace.

    On any exception the temporary file is removed and path keeps its old content.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=suffix, dir=path.parent)
    except OSError as exc:  # named after path: the temporary file is ours, not the user's
        raise OSError(exc.errno, f"cannot create a file in {path.parent} to write it "
                                 f"({exc.strerror or exc})", str(path)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what a user expects of a run file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to a temporary file beside path, fsync, then os.replace it into place."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def append_text(path: str | Path, text: str) -> None:
    """Append to a regular file (made if missing), never through a link or into a FIFO."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                     0o644)
    except OSError as exc:
        why = "it is a link" if exc.errno == errno.ELOOP else "it is a FIFO with no reader" if (
            exc.errno == errno.ENXIO) else exc.strerror or exc
        raise SeqmodelsError(f"{path}: cannot append to it ({why})") from None
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SeqmodelsError(f"{path} is not a regular file; seqmodels appends only to files")
        if info.st_nlink > 1:
            raise _hard_link(path, info.st_nlink)
        f.write(text)


def check_appendable(path: str | Path) -> None:
    """Refuse a path append_text would refuse, before any work: a link (symbolic or hard),
    FIFO, device, folder."""
    try:
        info = Path(path).lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise SeqmodelsError(f"{path} exists and is not a regular file (a link, FIFO, device or "
                             f"folder); move it away")
    if info.st_nlink > 1:
        raise _hard_link(path, info.st_nlink)


def _hard_link(path: str | Path, names: int) -> SeqmodelsError:
    """The error for a file seqmodels would add to that has other names (a hard link)."""
    return SeqmodelsError(f"{path} is a hard link ({names} names): adding to it would change "
                          f"the file under its other names too; move it away")


def expand_user(spec: str) -> Path:
    """Path(spec) with a leading ~ or ~user expanded; one line for a user with no home."""
    try:
        return Path(spec).expanduser()
    except RuntimeError:
        raise SeqmodelsError(f"{spec}: cannot find the home folder of "
                             f"{spec.split('/')[0]!r}") from None


def check_output(path: str | Path, force: bool,
                 inputs: Iterable[tuple[str | Path, str]] = ()) -> Path:
    """A path a command may write a file to: new, or (with force) a regular file or a link to
    one (the link itself is replaced); never a device, FIFO or folder, nor one of inputs
    ((path, what it is) pairs: the command's input files, a run's own files), even with force."""
    path = Path(path)
    if path.name in ("", ".."):  # '/', 'new/..': a folder's name, where no file can be written
        raise SeqmodelsError(f"{path} names a folder, not a file: give a file name")
    real = real_location(path)
    try:
        mode = real.lstat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise SeqmodelsError(f"{path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        try:
            mode = real.stat().st_mode
        except OSError:  # a dangling link: nothing behind it to lose
            mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        link = " (through a link)" if real.is_symlink() else ""
        raise SeqmodelsError(f"{path} exists and is not a regular file{link}; seqmodels writes "
                             f"only files: choose another path")
    for source, what in inputs:
        if os.path.exists(source) and os.path.samefile(source, real):
            raise SeqmodelsError(f"{path} is {what}; seqmodels never writes an output over it "
                                 f"(even with `force`): choose another path")
    if not force:
        raise SeqmodelsError(f"{path} exists; pass `force` to replace it")
    return path


def real_location(path: Path) -> Path:
    """Where a file written at path lands, though folders on the way do not exist yet: 'new/../x'
    is ./x once 'new' is made (the link at the end, if any, is kept, not followed)."""
    return Path(os.path.realpath(path.parent)) / path.name


MAX_NAME_BYTES = 255  # a file name's limit on Linux and macOS file systems
TEMP_TAIL_BYTES = 24  # what mkstemp adds after the prefix: 8 random characters and a suffix


def _temp_stem(beside: Path) -> str:
    """The part of a temporary's name for what it stands in for: the path's name, cut so the
    temporary's whole name fits where the path's own does."""
    room = (MAX_NAME_BYTES - TEMP_TAIL_BYTES - len(os.fsencode(
        f"{TEMP_PREFIX}--{socket.gethostname()}-{2**22}-")))
    name = os.fsencode(beside.name)
    if len(name) <= room:
        return beside.name
    cut = name[:max(room, 4)]
    for end in range(len(cut), len(cut) - 4, -1):  # back to a character boundary
        try:
            return cut[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return os.fsdecode(cut)  # a name that is not UTF-8 at all


def _temp_prefix(beside: Path) -> str:
    """The name start of a temporary beside a path: whose it is (host, pid) and for what."""
    return f"{TEMP_PREFIX}{_temp_stem(beside)}-{socket.gethostname()}-{os.getpid()}-"


def temporary_folder(beside: Path) -> Path:
    """A new temporary folder beside a path, named so that clean-up knows whose it is."""
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(beside), dir=beside.parent))


def remove_abandoned(beside: Path) -> None:
    """Delete the temporaries for a path that killed seqmodels processes of this host left
    beside it (a file or folder named for it), never a link or another path's."""
    prefix = f"{TEMP_PREFIX}{_temp_stem(beside)}-{socket.gethostname()}-"
    if beside.parent.is_symlink() or not beside.parent.is_dir():
        return
    for entry in beside.parent.iterdir():
        if not (entry.name.startswith(prefix) and isinstance(_maker(entry.name), int)
                and _abandoned(entry.name)) or entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file():
            entry.unlink(missing_ok=True)


def _maker(name: str) -> int | None | bool:
    """The pid in a temporary's name if a process of this host made it; None when the name
    holds no maker (an older seqmodels'); False when another host's process made it."""
    ours = re.search(rf"-{re.escape(socket.gethostname())}-(\d+)-[a-z0-9_]+(\.[^-]*)?$", name)
    if ours:
        return int(ours.group(1))
    return False if re.search(r"-\d+-[a-z0-9_]+(\.[^-]*)?$", name) else None


def _abandoned(name: str) -> bool:
    """Whether a temporary named with TEMP_PREFIX was left by a process that is gone."""
    if not name.startswith(TEMP_PREFIX):
        return False
    maker = _maker(name)
    if maker is False:
        return False  # another host's: its maker may be alive
    return maker is None or not _alive(maker)


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files killed seqmodels processes left in folder: regular files
    named with TEMP_PREFIX whose maker is gone, never a link or anything else."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in folder.iterdir():
        try:
            regular = stat.S_ISREG(entry.lstat().st_mode)
        except FileNotFoundError:
            continue  # its writer finished (or gave up) meanwhile
        if regular and _abandoned(entry.name):
            entry.unlink(missing_ok=True)


def remove_abandoned_folders(folder: Path) -> None:
    """Delete temporary folders in folder whose maker, a process of this host, has died."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for entry in folder.iterdir():
        if (entry.name.startswith(TEMP_PREFIX) and not entry.is_symlink() and entry.is_dir()
                and isinstance(_maker(entry.name), int) and _abandoned(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but is not ours
    return True


def require_utf8(path: str | Path, why: str) -> None:
    """Refuse a path whose name is not UTF-8 (it holds lone surrogates): TensorFlow's file
    functions cannot open it."""
    name = str(path)  # as given: a relative name inside a folder that is not UTF-8 works
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SeqmodelsError(f"{os.fsencode(name)!r}: TensorFlow cannot write to a path "
                             f"that is not UTF-8 ({why}); choose another name") from None
