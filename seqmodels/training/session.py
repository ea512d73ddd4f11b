"""One run session for every task: check the run directory, start it or resume it under its
lock, write config.json and a step-0 checkpoint, and fit."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqmodels.errors import SeqmodelsError
from seqmodels.training import checkpoint
from seqmodels.training.config import TrainConfig
from seqmodels.training.lock import run_lock
from seqmodels.training.loop import Task, fit, restore_latest, save, write_records
from seqmodels.training.progress import Progress, StepCallback
from seqmodels.training.rundir import (
    check_new_run_dir,
    check_replaceable,
    check_writable,
    default_run_dir,
    remove_stale_temporaries,
    write_config,
)


def check_run_dir(out: str | Path | None, resume: str | Path | None) -> None:
    """Before anything loads: a new run's --out must be empty, a resumed run writable."""
    if resume is not None:
        check_writable(Path(resume))
    else:
        check_new_run_dir(out)


def stored_settings(run_dir: Path, stored: dict, data_config: type, overrides: dict
                    ) -> tuple:
    """The data, model and training configs in a run's config.json, the resumable settings
    overridden; one line naming the file when they are unreadable."""
    from seqmodels.models.config import ModelConfig

    try:
        return (data_config.from_json(stored["data"]), ModelConfig.from_json(stored["model"]),
                TrainConfig.from_json(stored["train"]).with_overrides(**overrides))
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: {exc}") from None


def check_same_source(stored: dict, key: str, digest: str, run_dir: Path, what: str) -> None:
    """Refuse to resume on data that differs from what the run was trained on."""
    if stored.get(key) not in (None, digest):
        raise SeqmodelsError(f"the {what} has changed since {run_dir} was trained; start a new "
                             f"run instead of resuming")


def run(task: Task, config: TrainConfig, run_dir: Path | None, resuming: bool, settings: dict,
        write_files: Callable[[Path], None], name: tuple[str, str], show_progress: bool = False,
        callback: StepCallback | None = None, log_every: int | None = None
        ) -> tuple[Path, str]:
    """Train the task in run_dir (new: runs/<date>-<name>) and return it and why it stopped.

    settings is config.json's content; write_files writes the task's own files that the run
    directory lacks (a kill may have come before they were first written).
    """
    created = run_dir is None or not run_dir.exists()
    try:
        if run_dir is None:
            run_dir = default_run_dir(*name)
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqmodelsError(f"cannot create the run directory {run_dir or 'under runs/'} "
                             f"({exc.strerror or exc})") from None
    task.resume_command = f"{task.command} --resume {run_dir}"
    with run_lock(run_dir):
        p = Progress()
        if resuming:
            remove_stale_temporaries(run_dir)
            check_replaceable(run_dir)
            restore_latest(task, run_dir, p)  # none: killed before the first, so step 0
        else:
            check_new_run_dir(run_dir)  # again under the lock: a run may have started since
        try:
            if not resuming:
                (run_dir / checkpoint.FOLDER).mkdir()
            write_config(run_dir, settings)  # on resume: with the new epochs, budget...
            write_files(run_dir)
            write_records(task, run_dir, p)  # a kill may have come between checkpoint and CSV
            if checkpoint.latest(run_dir) is None:
                save(task, run_dir, p)  # step 0, so a kill or a NaN always has a checkpoint
        except (OSError, SeqmodelsError) as exc:
            if isinstance(exc, OSError):
                reason = (f"{exc.filename}: " if exc.filename else "") + (exc.strerror or str(exc))
            else:
                reason = getattr(exc, "reason", str(exc))
            if resuming:  # every file is replaced atomically: the old one is still whole
                raise SeqmodelsError(f"could not write in {run_dir} ({reason}); the files "
                                     f"already there are intact") from None
            _undo_start(run_dir, created)
            raise SeqmodelsError(f"could not start the run in {run_dir} ({reason}); nothing was "
                                 f"kept there") from None
        return run_dir, fit(task, config, run_dir, p, show_progress, callback, log_every)


def _undo_start(run_dir: Path, created: bool) -> None:
    """Remove what a new run wrote before its first checkpoint (all of it is ours: the folder
    was empty under the lock), and the folder itself when this run created it."""
    import shutil

    for name in ("config.json", "vocab.json", "scaler.json", "history.csv", "training.png"):
        (run_dir / name).unlink(missing_ok=True)
    folder = run_dir / checkpoint.FOLDER
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    remove_stale_temporaries(run_dir)
    if created:
        (run_dir / ".lock").unlink(missing_ok=True)
        try:
            run_dir.rmdir()
        except OSError:
            pass  # something else is in it: leave it


def run_as_worker(task: Task, config: TrainConfig, shared: Path | None, show_progress: bool = False,
                  callback: StepCallback | None = None, log_every: int | None = None
                  ) -> tuple[Progress, str, Any]:
    """A cluster worker that is not the chief: it reads the chief's run (to resume) and never
    writes it; its checkpoints, for --on-nan rollback, go to a scratch folder.

    Returns the progress, why it stopped and the best model (the last one if none was kept).
    """
    where = shared if shared is not None else "<the chief's run>"
    task.resume_command = f"{task.command} --resume {where}"
    with tempfile.TemporaryDirectory(prefix="seqmodels-worker-") as scratch:
        run_dir = Path(scratch)
        (run_dir / checkpoint.FOLDER).mkdir()
        p = Progress()
        if shared is not None:
            restore_latest(task, shared, p)
        save(task, run_dir, p)
        stop_reason = fit(task, config, run_dir, p, show_progress, callback, log_every)
        best = run_dir / "model.keras"
        if not best.exists():
            return p, stop_reason, task.net
        from seqmodels.models.saving import load_model

        return p, stop_reason, load_model(best)
