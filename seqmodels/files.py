"""Small files: JSON with one-line errors on read; atomic replacement on write."""

from __future__ import annotations

import json
import os
import tempfile
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


def write_json_atomic(path: str | Path, obj: object) -> None:
    """Write obj as JSON to path atomically."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to a temporary file beside path, fsync, then os.replace it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
