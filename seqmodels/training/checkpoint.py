"""Checkpoints: what one holds, how it is written atomically, read, validated and restored.

A checkpoint is one `.npz` in the run's checkpoints folder: the model's variables (weights and
the dropout layers' RNG states), the optimizer's variables and the states the task carries from
step to step (a stateful recurrent layer's), each stored with a name that is the same in every
process ("rnn_0/kernel"), and `state.json` (the format version, those names and the training
progress): arrays and JSON only. Writing replaces the latest checkpoint atomically and keeps
the file it replaces as the previous one, so a kill at any moment leaves one whole checkpoint.
Restoring matches variables by name, never by position (version 1 files, which hold no names,
excepted).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodels.errors import NewerFormatError, SeqmodelsError, UnreadableFileError
from seqmodels.files import atomic_path
from seqmodels.training.progress import Progress
from seqmodels.training.rundir import RunDir

VERSION = 2  # 1: arrays only, restored by order; 2: with variable paths, restored by name
GROUPS = ("weights", "optimizer", "rnn_states")
# optimizer variables that are never negative: the step count, the rate, and the running
# averages of squared gradients of Adam and RMSprop (velocity) and Adagrad (accumulator)
NON_NEGATIVE_SLOTS = ("iteration", "learning_rate", "velocity", "accumulator")


@dataclass
class Checkpoint:
    """One checkpoint as read from disk."""

    path: Path
    version: int
    arrays: dict[str, list[np.ndarray]]  # group -> arrays, in the order they were written
    names: dict[str, list[str]] | None  # group -> variable paths (None: version 1)
    progress: dict  # Progress.to_json() of the moment it was written


Named = list[tuple[str, object]]  # (a name stable across processes, a variable)


def _variables(model, optimizer, states: Named) -> dict[str, Named]:
    """The variables a checkpoint holds, by group, each with a name stable across processes.

    model.variables, unlike model.weights, includes the dropout layers' RNG seed states, so
    a resumed run draws the same dropout masks as an uninterrupted one. Keras numbers some
    variable paths per process (seed_generator_51/...), so a model variable is named by its
    layer's name and its own ("rnn_0/kernel") and an optimizer variable by its path without
    the optimizer's numbered name ("rnn_0_lstm_cell_kernel_momentum").
    """
    in_layer = {id(v): f"{layer.name}/{v.name}" for layer in model.layers
                for v in layer.variables}
    weights = [(in_layer.get(id(v), v.path), v) for v in model.variables]
    slots = [(v.path.split("/", 1)[-1], v) for v in optimizer.variables]
    return {"weights": weights, "optimizer": slots, "rnn_states": list(states)}


def _keys(names: list[str]) -> list[str]:
    """Names made unique by their occurrence: a, a, b -> a, a#2, b."""
    seen: Counter[str] = Counter()
    keys = []
    for name in names:
        seen[name] += 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def write(run: RunDir, model, optimizer, progress: Progress, states: Named = ()) -> Path:
    """Write the run's latest checkpoint atomically, keeping the one it replaces as previous;
    states: the task's carried states, by name."""
    groups = _variables(model, optimizer, states)
    payload = {f"{group}/{i}": np.asarray(v) for group, items in groups.items()
               for i, (_, v) in enumerate(items)}
    names = {group: [name for name, _ in items] for group, items in groups.items()}
    state = {"checkpoint_version": VERSION, "names": names, "progress": progress.to_json()}
    payload["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    path = run.latest
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path, suffix=".npz.tmp") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, run.previous)
    return path


def read(path: Path) -> Checkpoint:
    """Read and validate a checkpoint file (no pickle); one-line errors when damaged."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(bytes(z["state.json"]).decode())
            found: dict[str, dict[int, np.ndarray]] = {}
            for key in z.files:
                if key != "state.json":
                    group, i = key.rsplit("/", 1)
                    found.setdefault(group, {})[int(i)] = z[key]
    except FileNotFoundError:
        raise SeqmodelsError(f"{path}: file not found") from None
    except PermissionError:
        raise UnreadableFileError(f"{path}: permission denied; the checkpoint is not damaged, "
                                  f"but this user may not read it: give read access (chmod u+r) "
                                  f"and resume again") from None
    except Exception as exc:  # numpy, zipfile and json raise many types for damaged files
        what = "not a regular file" if not path.is_file() else (
            "a link to a file that is not a checkpoint" if path.is_symlink() else
            type(exc).__name__)
        raise SeqmodelsError(f"{path}: damaged checkpoint ({what})") from None
    version = state.get("checkpoint_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise SeqmodelsError(f"{path}: damaged checkpoint (no checkpoint version)")
    if version > VERSION:
        raise NewerFormatError(f"{path}: checkpoint version {version} is newer than this "
                               f"seqmodels reads ({VERSION}); upgrade seqmodels")
    arrays = {g: [items[i] for i in sorted(items)] for g, items in found.items()}
    names = state.get("names") if version >= 2 else None
    if version >= 2 and not (isinstance(names, dict) and all(
            isinstance(names.get(g, []), list)
            and all(isinstance(n, str) for n in names.get(g, []))
            and len(names.get(g, [])) == len(arrays.get(g, [])) for g in GROUPS)):
        raise SeqmodelsError(f"{path}: damaged checkpoint (variable names do not match its "
                             f"arrays)")
    for group, items in arrays.items():
        if group not in GROUPS or any(a.dtype.kind not in "biuf" for a in items):
            raise SeqmodelsError(f"{path}: damaged checkpoint (group {group!r} "
                                 f"{'is unknown' if group not in GROUPS else 'holds non-numbers'})")
        if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in items):
            raise SeqmodelsError(f"{path}: damaged checkpoint (its {group} hold NaN or infinite "
                                 f"values; a run never saves those)")
    for name, a in zip((names or {}).get("optimizer", []), arrays.get("optimizer", [])):
        if name.endswith(NON_NEGATIVE_SLOTS) and (a < 0).any():
            raise SeqmodelsError(f"{path}: damaged checkpoint (the optimizer's {name} holds a "
                                 f"negative value; it counts steps or averages squares)")
    progress = Progress.from_json(state.get("progress"), f"{path}: damaged checkpoint")
    for name, a in zip((names or {}).get("optimizer", []), arrays.get("optimizer", [])):
        if name == "iteration" and a.size == 1 and a.item() > progress.global_step:
            raise SeqmodelsError(f"{path}: damaged checkpoint (the optimizer counts {a.item():g} "
                                 f"steps, the run {progress.global_step})")
    return Checkpoint(path, version, arrays, names, progress.to_json())


def load_latest(run: RunDir) -> Checkpoint | None:
    """The newest readable checkpoint (the previous one when the latest is damaged); None if
    there is none."""
    path = run.latest_checkpoint()
    if path is None:
        return None
    try:
        return read(path)
    except (NewerFormatError, UnreadableFileError):
        raise  # a newer seqmodels's, or not ours to read: an older checkpoint would lose work
    except SeqmodelsError as exc:
        previous = run.previous
        if path == previous or not previous.is_file():
            raise
        warnings.warn(f"{exc}; using {previous} instead", stacklevel=2)
        return read(previous)


def _pairs(group: str, named: list[tuple[str, object]], ckpt: Checkpoint) -> list[tuple]:
    """(variable, stored array) for a group, matched by name (version 1: by position); one
    line, and nothing assigned, when the checkpoint does not fit."""
    what = {"weights": "weights do", "optimizer": "optimizer state does",
            "rnn_states": "carried RNN states do"}[group]
    stored = ckpt.arrays.get(group, [])
    variables = [v for _, v in named]
    if ckpt.names is None:  # version 1: by position, checked by shape
        if len(stored) != len(variables) or any(
                tuple(a.shape) != tuple(v.shape) for a, v in zip(stored, variables)):
            raise SeqmodelsError(f"{ckpt.path}: the checkpoint's {what} not fit this model")
        return list(zip(variables, stored))
    saved = dict(zip(_keys(ckpt.names.get(group, [])), stored))
    wanted = _keys([name for name, _ in named])
    missing = [k for k in wanted if k not in saved]
    unexpected = [k for k in saved if k not in set(wanted)]
    if missing or unexpected:
        detail = "; ".join(part for part in (
            f"{len(missing)} not in the checkpoint (first: {missing[0]})" if missing else "",
            f"{len(unexpected)} not in this model (first: {unexpected[0]})" if unexpected
            else "") if part)
        raise SeqmodelsError(f"{ckpt.path}: the checkpoint's {what} not match this model's "
                             f"variables by name ({detail})")
    for var, key in zip(variables, wanted):
        if tuple(saved[key].shape) != tuple(var.shape):
            raise SeqmodelsError(f"{ckpt.path}: {key} has shape {tuple(saved[key].shape)} in "
                                 f"the checkpoint but {tuple(var.shape)} in this model")
        if not _fits(saved[key], var.dtype):
            raise SeqmodelsError(f"{ckpt.path}: damaged checkpoint ({key} is stored as "
                                 f"{saved[key].dtype}, which does not fit this model's "
                                 f"{np.dtype(var.dtype)})")
    return [(var, saved[key]) for var, key in zip(variables, wanted)]


def _fits(value: np.ndarray, dtype) -> bool:
    """Whether a stored array goes into a variable of dtype unchanged but for float rounding."""
    dtype = np.dtype(dtype)
    if (value.dtype.kind == "f") != (dtype.kind == "f") or (value.dtype.kind == "b") != (
            dtype.kind == "b"):
        return False  # a float where a count is kept, or the other way round
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            return bool(np.isfinite(value.astype(dtype)).all())
    if dtype.kind == "b" or value.size == 0:
        return True
    info = np.iinfo(dtype)
    return info.min <= int(value.min()) and int(value.max()) <= info.max


def restore(ckpt: Checkpoint, model, optimizer, states: Named = ()) -> Progress:
    """Put a checkpoint's variables into a freshly built model, optimizer and carried states;
    its progress."""
    pairs = [pair for group, named in _variables(model, optimizer, states).items()
             for pair in _pairs(group, named, ckpt)]  # every group checked before any assign
    for var, value in pairs:
        var.assign(value)
    return Progress.from_json(ckpt.progress, str(ckpt.path))
