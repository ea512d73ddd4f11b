"""A run directory: the one module that names a run's files and knows their formats.

    config.json    the run's settings (format seqmodels.run), written at every start
    vocab.json     a language model's vocabulary; scaler.json a forecaster's scaler
    model.keras    the best model so far
    history.csv    one row per validation; training.png its plot
    samples.txt    the samples printed while training
    checkpoints/   latest.npz and previous.npz
    .lock          held by the process that trains the run
    export/        what `export` writes by default; tensorboard/ with `tensorboard`

Every file is written atomically, no link is followed, and clean-up removes only our own
temporaries (seqmodels.files).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from seqmodels import __version__
from seqmodels.errors import SeqmodelsError
from seqmodels.files import (
    check_format,
    read_json,
    read_regular,
    real_location,
    remove_temporaries,
    write_json_atomic,
)
from seqmodels.training import history, lock

RUN_FORMAT = "seqmodels.run"
RUN_VERSION = 2  # 2: a language model's windows in a section of their own
MAX_CONFIG_BYTES = 2**20  # a run's config.json is a few kB


class RunDir:
    """The folder of one run and the paths of its files."""

    CONFIG, MODEL, VOCAB, SCALER = "config.json", "model.keras", "vocab.json", "scaler.json"
    HISTORY, PLOT, SAMPLES = "history.csv", "training.png", "samples.txt"
    CHECKPOINTS, LATEST, PREVIOUS = "checkpoints", "latest.npz", "previous.npz"
    LOCK, EXPORT, TENSORBOARD = ".lock", "export", "tensorboard"
    FORECAST_PLOT, CHOICE = "forecast-test.png", "choice.json"
    # rewritten on resume, and written once or added to: no command's output may replace them
    REPLACED = (CONFIG, HISTORY, PLOT, MODEL, f"{CHECKPOINTS}/{LATEST}",
                f"{CHECKPOINTS}/{PREVIOUS}", CHOICE)
    KEPT = (VOCAB, SCALER, SAMPLES, LOCK)
    # every name training writes (or will): no output goes there, though the file is not made
    # yet (the forecast plot is `forecast evaluate`'s own output, which --plot may replace)
    RESERVED = (*REPLACED, *KEPT, CHECKPOINTS, TENSORBOARD, EXPORT)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ the files' paths

    @property
    def config(self) -> Path:
        """config.json: the run's settings."""
        return self.path / self.CONFIG

    @property
    def model(self) -> Path:
        """model.keras: the best model so far."""
        return self.path / self.MODEL

    @property
    def vocab(self) -> Path:
        """vocab.json: a language model's vocabulary."""
        return self.path / self.VOCAB

    @property
    def scaler(self) -> Path:
        """scaler.json: a forecaster's training statistics."""
        return self.path / self.SCALER

    @property
    def choice(self) -> Path:
        """choice.json: which forecast a forecaster gives (its model, or a baseline that beat
        it on the validation part)."""
        return self.path / self.CHOICE

    @property
    def history(self) -> Path:
        """history.csv: one row per validation."""
        return self.path / self.HISTORY

    @property
    def plot(self) -> Path:
        """training.png: the history drawn."""
        return self.path / self.PLOT

    @property
    def samples(self) -> Path:
        """samples.txt: the samples printed while training."""
        return self.path / self.SAMPLES

    @property
    def checkpoints(self) -> Path:
        """The checkpoints folder."""
        return self.path / self.CHECKPOINTS

    @property
    def latest(self) -> Path:
        """The newest checkpoint's file."""
        return self.checkpoints / self.LATEST

    @property
    def previous(self) -> Path:
        """The checkpoint the newest one replaced."""
        return self.checkpoints / self.PREVIOUS

    @property
    def lock_file(self) -> Path:
        """The file whose lock the training process holds."""
        return self.path / self.LOCK

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's log folder."""
        return self.path / self.TENSORBOARD

    @property
    def forecast_plot(self) -> Path:
        """Where `forecast evaluate` draws the test split by default."""
        return self.path / self.FORECAST_PLOT

    def export_path(self, fmt: str) -> Path:
        """Where `export` writes a format by default: export/model, export/model.tflite ..."""
        check_own_folder(self.path / self.EXPORT)  # never into a linked RUN/export/
        return self.path / self.EXPORT / ("model" if fmt == "savedmodel" else f"model.{fmt}")

    def latest_checkpoint(self) -> Path | None:
        """latest.npz, or previous.npz when a kill came between the two renames; None if none."""
        for path in (self.latest, self.previous):
            if path.is_file():
                return path
        return None

    # ------------------------------------------------------------------ create, open, lock

    @classmethod
    def create(cls, path: str | Path | None, name: str, root: str | Path = "runs") -> RunDir:
        """The folder of a new run: path, made if missing, or runs/<date-time>-<name>[-n]."""
        try:
            if path is None:
                return cls(_new_dated_folder(root, name))
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SeqmodelsError(f"cannot create the run directory {path or 'under runs/'} "
                                 f"({exc.strerror or exc})") from None
        return cls(path)

    @staticmethod
    def check_new(out: str | Path | None) -> None:
        """Refuse a new run's folder that already holds files (its lock file alone does not
        count)."""
        if out is None:
            return
        run_dir = Path(out)
        if run_dir.name == "..":  # 'new/..' would make 'new', then find its parent holding it
            raise SeqmodelsError(f"{run_dir} ends in '..'; give the run's folder by its own name")
        if run_dir.exists() and not run_dir.is_dir():
            raise SeqmodelsError(f"{run_dir} exists and is not a folder; a run is written into a "
                                 f"folder, so choose another `out`")
        if run_dir.exists() and any(f.name != RunDir.LOCK for f in run_dir.iterdir()):
            raise SeqmodelsError(f"{run_dir} already exists and is not empty; continue it with "
                                 f"`resume` {run_dir}, or choose another `out`")

    def check_writable(self) -> None:
        """Refuse to resume a run directory this process cannot write: the folder, or its
        checkpoints/ and tensorboard/ (found only at the first checkpoint, after training)."""
        for folder in (self.path, self.checkpoints, self.tensorboard):
            if (folder == self.path or folder.is_dir()) and not os.access(folder, os.W_OK):
                raise SeqmodelsError(f"{folder}: not writable, so training cannot continue "
                                     f"there; make it writable and resume")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run's lock while the block runs; refuse when a live process holds it."""
        with lock.run_lock(self.lock_file, self.path):
            yield

    def training_now(self) -> str | None:
        """Who trains the run now ('pid N on HOST'), or None."""
        return lock.training_now(self.lock_file)

    def start(self) -> None:
        """Make the checkpoints folder of a run that is starting."""
        self.checkpoints.mkdir()

    def undo_start(self, created: bool) -> None:
        """Remove what a new run wrote before its first checkpoint (all of it is ours: the folder
        was empty under the lock), and the folder itself when this run created it."""
        for path in (self.config, self.vocab, self.scaler, self.history, self.plot):
            path.unlink(missing_ok=True)
        if self.checkpoints.is_dir() and not self.checkpoints.is_symlink():
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        self.remove_stale_temporaries()
        if created:
            self.lock_file.unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                pass  # something else is in it: leave it

    def remove_stale_temporaries(self) -> None:
        """Delete the temporary files a killed writer left behind (we hold the run's lock): ours
        only, by their name, in the run directory and its checkpoints/ folder."""
        check_own_folder(self.checkpoints)
        check_own_folder(self.tensorboard)
        for folder in (self.path, self.checkpoints):
            remove_temporaries(folder)

    def check_replaceable(self) -> None:
        """Refuse a run whose files that training replaces include a folder: the replacement would
        fail at the first checkpoint, after an interval of training lost."""
        for name in self.REPLACED:
            path = self.path / name
            if path.is_dir() and not path.is_symlink():
                raise SeqmodelsError(f"{path} is a folder where the run keeps a file; remove it "
                                     f"(or use another run directory)")

    def own_files(self) -> list[tuple[Path, str]]:
        """The run's files as check_output inputs: no command's output may be written over them."""
        return [(self.path / name, f"a file of the run {self.path}")
                for name in self.REPLACED + self.KEPT]

    @staticmethod
    def check_not_reserved(path: str | Path) -> None:
        """Refuse an output path where the run it lies in keeps (or will keep) one of its own
        files or folders, present or not: the run would replace the output, or fail on it."""
        real = real_location(Path(path))
        run = RunDir.of_file(real)
        if run is None or not RunDir.is_run(run.path):  # another program's config.json
            return
        for name in RunDir.RESERVED:
            if real == run.path / name:
                raise SeqmodelsError(f"{path} is a file of the run {run.path} (its {name}, made "
                                     f"as it trains if not there yet); seqmodels never writes an "
                                     f"output over it (even with `force`): choose another path")

    @staticmethod
    def of_file(path: Path) -> RunDir | None:
        """The run a file lies in (or in whose checkpoints/ it lies), if any."""
        for folder in (path.parent, path.parent.parent):
            if (folder / RunDir.CONFIG).is_file():
                return RunDir(folder)
        return None

    @staticmethod
    def is_samples_file(path: Path) -> bool:
        """Whether a file is the samples.txt a run writes (beside its config.json): text a model
        made, which grows as it trains, is never part of a corpus found in a folder or by a glob."""
        return path.name == RunDir.SAMPLES and RunDir.is_run(path.parent)

    @staticmethod
    def is_run(folder: Path) -> bool:
        """Whether a folder's config.json is a seqmodels run's (its format tag near the top)."""
        config = folder / RunDir.CONFIG
        if not config.is_file():
            return False
        try:
            with open(config, "rb") as f:
                head = f.read(4096)
        except OSError:
            return False
        return re.search(rb'"format"\s*:\s*"' + RUN_FORMAT.encode() + rb'"', head) is not None

    # ------------------------------------------------------------------ read and write

    def read_config(self) -> dict[str, Any]:
        """config.json, checked: the run format, at a version this seqmodels reads, with its
        data, model and train sections."""
        run_dir = self.path
        if not run_dir.is_dir():
            if os.path.lexists(run_dir):
                raise SeqmodelsError(f"{run_dir} is not a folder; give a run directory")
            raise SeqmodelsError(f"{run_dir}: no such run directory")
        if not self.config.is_file():
            raise SeqmodelsError(f"{run_dir} is not a seqmodels run (it has no {self.CONFIG})")
        config = check_format(read_json(self.config, MAX_CONFIG_BYTES), RUN_FORMAT, RUN_VERSION,
                              str(self.config), "run")
        for key in ("data", "model", "train"):
            if not isinstance(config.get(key), dict):
                raise SeqmodelsError(f"{self.config}: missing the '{key}' section")
        return config

    def write_config(self, settings: dict[str, Any]) -> None:
        """Write config.json with the run format name and version."""
        write_json_atomic(self.config, {"format": RUN_FORMAT, "version": RUN_VERSION,
                                        **settings})

    def read_history(self) -> list[dict]:
        """The rows of history.csv as dicts of numbers ([] before the first validation)."""
        if not self.history.exists():
            return []
        return history.read_history(self.history)

    def write_history(self, rows: list[dict], loss_label: str = "loss",
                      points: list | None = None) -> None:
        """history.csv and training.png of the rows so far (points: the training loss between
        validations, [tokens, loss] each)."""
        if rows:
            history.write_history(self.history, rows)
            history.plot_history(self.plot, rows, loss_label, points)

    def read_json(self, path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> object:
        """One of the run's small JSON files (a scaler, say), with one-line errors."""
        return read_json(path, max_bytes)

    def read_bytes(self, path: Path, max_bytes: int) -> bytes:
        """One of the run's regular files, with one-line errors."""
        return read_regular(path, max_bytes)


def _new_dated_folder(root: str | Path, name: str) -> Path:
    """Create and return root/<date-time>-<name>[-n]; mkdir reserves the name atomically."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    Path(root).mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        path = Path(root) / (f"{stamp}-{name}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def check_own_folder(folder: Path) -> None:
    """Refuse a run's sub-folder that is a symbolic link or not a folder: seqmodels writes and
    deletes files there, and never does so in somebody else's."""
    if folder.is_symlink():
        raise SeqmodelsError(f"{folder} is a symbolic link; seqmodels writes only into a run's "
                             f"own folders, so remove the link (or use another run directory)")
    if folder.exists() and not folder.is_dir():
        raise SeqmodelsError(f"{folder} is not a folder; remove it or use another run directory")


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
