"""Run directories: config.json, vocab.json, model.keras, checkpoints/, history.csv, plots."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels import __version__
from seqmodels.errors import NewerFormatError, SeqmodelsError
from seqmodels.files import (
    atomic_path,
    check_format,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from seqmodels.vocab import Vocabulary

RUN_FORMAT = "seqmodels.run"
RUN_VERSION = 1
CHECKPOINT_VERSION = 1
HISTORY_COLUMNS = (
    "epoch", "loss", "val_loss", "val_perplexity", "val_bits_per_token", "lr",
    "grad_norm_mean", "grad_norm_max", "clipped_fraction", "tokens_per_s", "seconds",
)


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
    from seqmodels._tf import import_keras, import_tf

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
        raise SeqmodelsError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise SeqmodelsError(f"{run_dir} is not a seqmodels run (it has no config.json)")
    config = check_format(read_json(path), RUN_FORMAT, RUN_VERSION, str(path), "run")
    for key in ("data", "model", "train"):
        if not isinstance(config.get(key), dict):
            raise SeqmodelsError(f"{path}: missing the '{key}' section")
    return config


def read_language_config(run_dir: str | Path) -> dict[str, Any]:
    """config.json of a language-model run (a forecasting run is refused by name)."""
    config = read_config(run_dir)
    if config.get("kind", "language-model") != "language-model":
        raise SeqmodelsError(f"{run_dir} is a {config['kind']} run, not a language model; use "
                             f"seqmodels forecast evaluate, predict or train --resume on it")
    return config


def save_model_atomic(model, path: Path) -> None:
    """model.save() to a temporary .keras file beside path, then os.replace it into place."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


# Packages whose classes a model.keras may name; anything else is refused before Keras sees it
# (Keras' safe_mode refuses lambdas, but loads any class some imported package has registered).
SAFE_PACKAGES = ("keras", "seqmodels")
UNSAFE_CLASSES = ("Lambda", "__lambda__", "TFSMLayer")  # run code or load graphs from the file


def _unsafe_class(obj: object) -> str | None:
    """The first class in a .keras config.json that loading could run foreign code through."""
    if isinstance(obj, list):
        return next((c for c in map(_unsafe_class, obj) if c), None)
    if not isinstance(obj, dict):
        return None
    name = obj.get("class_name")
    if isinstance(name, str):
        module = obj.get("module") or "builtins"
        registered = obj.get("registered_name")
        if name in UNSAFE_CLASSES:
            return f"a {name} layer (it runs code stored in the file)"
        if not isinstance(module, str) or (module.split(".")[0] not in SAFE_PACKAGES
                                           and module != "builtins"):
            return f"the class {module}.{name}, which is not part of keras or seqmodels"
        if registered not in (None, name) and not (
                isinstance(registered, str) and registered.split(">")[0] in SAFE_PACKAGES):
            return f"the registered class {registered!r}, which is not part of keras or seqmodels"
    return next((c for c in map(_unsafe_class, obj.values()) if c), None)


def load_model(path: Path):
    """Load a .keras model with safe_mode=True, one-line errors for damaged or unsafe files."""
    from seqmodels._tf import import_keras

    keras = import_keras()
    if not path.is_file():
        raise SeqmodelsError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise SeqmodelsError(f"{path}: not a complete .keras file (truncated or damaged)")
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except Exception as exc:  # zipfile and json raise many types for damaged files
        raise SeqmodelsError(f"{path}: not a .keras model file ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
    unsafe = _unsafe_class(config)
    if unsafe:
        raise SeqmodelsError(f"{path}: refused to load {unsafe}; seqmodels loads only models "
                             f"made of keras layers (safe mode)")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises many types for damaged archives
        raise SeqmodelsError(f"{path}: cannot load model ({_first_line(exc)})") from None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), at most limit characters."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def save_checkpoint(path: Path, arrays: dict[str, list[np.ndarray]], state: dict) -> None:
    """Write weights, optimizer slots, RNN states and JSON state into one .npz, atomically.

    The file being replaced is first kept as previous.npz, so a kill at any moment leaves at
    least one complete checkpoint.
    """
    payload = {f"{group}/{i}": np.asarray(a) for group, items in arrays.items()
               for i, a in enumerate(items)}
    state = {"checkpoint_version": CHECKPOINT_VERSION, **state}
    payload["state.json"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    with atomic_path(path, suffix=".npz.tmp") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.replace(path, path.with_name("previous.npz"))


def load_checkpoint(path: Path) -> tuple[dict[str, list[np.ndarray]], dict]:
    """Read a checkpoint written by save_checkpoint (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(bytes(z["state.json"]).decode())
            groups: dict[str, dict[int, np.ndarray]] = {}
            for key in z.files:
                if key != "state.json":
                    group, i = key.rsplit("/", 1)
                    groups.setdefault(group, {})[int(i)] = z[key]
    except FileNotFoundError:
        raise SeqmodelsError(f"{path}: file not found") from None
    except Exception as exc:
        raise SeqmodelsError(f"{path}: damaged checkpoint ({type(exc).__name__})") from None
    version = state.get("checkpoint_version") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise SeqmodelsError(f"{path}: damaged checkpoint (no checkpoint version)")
    if version > CHECKPOINT_VERSION:
        raise NewerFormatError(f"{path}: checkpoint version {version} is newer than this seqmodels "
                             f"reads ({CHECKPOINT_VERSION}); upgrade seqmodels")
    arrays = {g: [items[i] for i in sorted(items)] for g, items in groups.items()}
    return arrays, state


def latest_checkpoint(run_dir: Path) -> Path | None:
    """checkpoints/latest.npz, or previous.npz when a kill came between the two renames."""
    for name in ("latest.npz", "previous.npz"):
        path = run_dir / "checkpoints" / name
        if path.is_file():
            return path
    return None


def write_history(run_dir: Path, rows: list[dict]) -> None:
    """Rewrite history.csv from all epoch rows, atomically."""
    buf = io.StringIO()
    extra = [k for k in (rows[0] if rows else {}) if k not in HISTORY_COLUMNS]  # val_rmse
    writer = csv.DictWriter(buf, fieldnames=[*HISTORY_COLUMNS, *extra], extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(run_dir / "history.csv", buf.getvalue())


def plot_history(run_dir: Path, rows: list[dict]) -> None:
    """training.png: loss curves and gradient norms per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, [r["loss"] for r in rows], "o-", label="train")
    a.plot(epochs, [r["val_loss"] for r in rows], "o-", label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("mean squared error (scaled)" if "val_rmse" in rows[-1]
                 else "cross-entropy (nats/token)")
    a.legend()
    b.plot(epochs, [r["grad_norm_mean"] for r in rows], "o-", label="mean")
    b.plot(epochs, [r["grad_norm_max"] for r in rows], "o-", label="max")
    b.set_yscale("log")
    b.set_xlabel("epoch")
    b.set_ylabel("global gradient norm before clipping")
    b.legend()
    from matplotlib.ticker import MaxNLocator

    for axis in (a, b):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    fig.tight_layout()
    with atomic_path(run_dir / "training.png", suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


@dataclass
class Run:
    """A trained run: its directory, configuration, vocabulary and best model."""

    path: Path | None  # None: a worker that is not the chief (it wrote no run directory)
    config: dict
    vocab: Vocabulary
    model: Any
    history: list[dict]
    stop_reason: str = "completed"

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation loss of any epoch."""
        losses = [r["val_loss"] for r in self.history if r.get("val_loss") is not None]
        return min(losses) if losses else None


def read_history(run_dir: Path) -> list[dict]:
    """Rows of history.csv as dicts of numbers."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def check_resumable(run_dir: Path, vocab: Vocabulary) -> None:
    """Refuse, before any training, a resume whose run files are damaged or do not match.

    vocab is the vocabulary rebuilt from the run's corpus. A run with trained epochs (history or
    model) but no checkpoint cannot go on without starting over, so it is refused too.
    """
    run_dir = Path(run_dir)
    stored = Vocabulary.load(run_dir / "vocab.json")
    if (run_dir / "model.keras").exists():
        out_dim = load_model(run_dir / "model.keras").outputs[0].shape[-1]
        if out_dim != len(stored):
            raise SeqmodelsError(f"{run_dir / 'vocab.json'}: {len(stored)} tokens, but the "
                                 f"model predicts {out_dim}")
    if stored != vocab:
        raise SeqmodelsError(f"{run_dir / 'vocab.json'}: does not match the vocabulary of the "
                             f"run's corpus ({len(stored)} vs {len(vocab)} tokens)")
    trained = [n for n in ("history.csv", "model.keras") if (run_dir / n).exists()]
    if latest_checkpoint(run_dir) is None and trained:
        raise SeqmodelsError(f"{run_dir}: no checkpoint to resume from (checkpoints/ is missing "
                             f"or empty), but it has a {' and a '.join(trained)} that resuming "
                             f"would lose; train a new run with --out")


def load_run(run_dir: str | Path) -> Run:
    """Config, vocabulary, best model and history of a run directory."""
    run_dir = Path(run_dir)
    config = read_language_config(run_dir)
    vocab = Vocabulary.load(run_dir / "vocab.json")
    if not (run_dir / "model.keras").exists():
        raise SeqmodelsError(f"{run_dir / 'model.keras'}: file not found (the run has no "
                             f"trained model yet; seqmodels train --resume {run_dir} makes one)")
    model = load_model(run_dir / "model.keras")
    out_dim = model.outputs[0].shape[-1]
    if out_dim != len(vocab):
        raise SeqmodelsError(
            f"{run_dir / 'vocab.json'}: {len(vocab)} tokens, but the model predicts {out_dim}"
        )
    return Run(run_dir, config, vocab, model, read_history(run_dir))
