"""Small files: JSON with one-line errors on read; atomic replacement on write."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqmodels.errors import SeqmodelsError


def read_json(path: str | Path) -> object:
    """Parse a JSON file, with one-line errors for missing or damaged files."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SeqmodelsError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeqmodelsError(f"{path}: damaged JSON ({exc})") from None
    except OSError as exc:
        raise SeqmodelsError(f"{path}: cannot read ({exc.strerror or exc})") from None


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
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside path; on success move it into place with os.replace.

    On any exception the temporary file is removed and path keeps its old content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what a user expects of a run file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to a temporary file beside path, fsync, then os.replace it into place."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
