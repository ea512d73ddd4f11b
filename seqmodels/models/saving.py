"""model.keras: atomic saving and safe loading (no foreign classes, no code)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from seqmodels.errors import SeqmodelsError
from seqmodels.files import (
    atomic_path,
)


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
    from seqmodels.backend import import_keras

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
