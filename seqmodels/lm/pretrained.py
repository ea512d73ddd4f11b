"""Models that ship with seqmodels, found by name: `seqmodels generate-text builtin`,
`seqmodels train my-texts/ --init-from builtin`, `seqmodels.load("builtin")`."""

from __future__ import annotations

from pathlib import Path

from seqmodels.errors import SeqmodelsError

FOLDER = Path(__file__).resolve().parent.parent / "pretrained"
PRETRAINED = {"builtin": FOLDER / "builtin"}  # name -> its run directory, installed


def resolve(run: str | Path) -> Path:
    """A run directory's path: a built-in model's by its name (a folder of that name in the
    current directory wins), else the path as given."""
    path = Path(run)
    if isinstance(run, str) and run in PRETRAINED and not path.exists():
        return PRETRAINED[run]
    return path


def name_of(path: Path) -> str | None:
    """The name of the built-in model at path, or None."""
    real = path.resolve()
    return next((name for name, folder in PRETRAINED.items() if folder.resolve() == real), None)


def export_folder(path: Path) -> Path:
    """The run directory an export may default into: path, unless it is a built-in model's."""
    name = name_of(path)
    if name:
        raise SeqmodelsError(f"the built-in model {name!r} is not written to; give `out`")
    return path
