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
MAX_NESTING = 64  # a seqmodels model's config.json nests about 10 levels
MAX_MODEL_CONFIG_BYTES = 16 * 2**20  # ours are a few kB; zip bombs unpack to gigabytes
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
        if name == "function" and module == "builtins":
            return _unsafe_function(obj.get("config"))
        if not isinstance(module, str) or (module.split(".")[0] not in SAFE_PACKAGES
                                           and module != "builtins"):
            return f"the class {module}.{name}, which is not part of keras or seqmodels"
        if registered not in (None, name) and not (
                isinstance(registered, str) and registered.split(">")[0] in SAFE_PACKAGES):
            return f"the registered class {registered!r}, which is not part of keras or seqmodels"
    return next((c for c in map(_unsafe_class, obj.values()) if c), None)


def _too_deep(obj: object, limit: int) -> bool:
    """Whether lists and dicts in obj nest deeper than limit (walked without recursion)."""
    todo = [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (list, dict)):
            if depth >= limit:
                return True
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return False


def _unsafe_function(config: object) -> str | None:
    """A function entry ({"class_name": "function", "config": "package>name"}): Keras looks
    its name up among registered objects, so only keras' own functions may be named."""
    if not isinstance(config, str):
        return f"a function entry holding {type(config).__name__}"
    if ">" in config:
        package = config.split(">")[0]
        if package not in SAFE_PACKAGES:
            return f"the registered function {config!r}, which is not part of keras or seqmodels"
        return None
    from seqmodels.backend import import_keras

    if config in import_keras().saving.get_custom_objects():
        return f"the registered function {config!r}, which is not part of keras or seqmodels"
    return None


def load_model(path: Path):
    """Load a .keras model with safe_mode=True, one-line errors for damaged or unsafe files."""
    from seqmodels.backend import import_keras

    keras = import_keras()
    if not path.is_file():
        raise SeqmodelsError(f"{path}: " + ("not a regular file, so seqmodels does not read it"
                                            if path.exists() else "file not found"))
    if not zipfile.is_zipfile(path):
        raise SeqmodelsError(f"{path}: not a complete .keras file (truncated or damaged)")
    try:
        with zipfile.ZipFile(path) as z:
            size = z.getinfo("config.json").file_size
            if size > MAX_MODEL_CONFIG_BYTES:
                raise SeqmodelsError(f"{path}: its config.json would unpack to {size:,} bytes, "
                                     f"more than a model's description needs; refused")
            config = json.loads(z.read("config.json"))
    except SeqmodelsError:
        raise
    except RecursionError:
        raise SeqmodelsError(f"{path}: its config.json is nested too deeply; refused") from None
    except Exception as exc:  # zipfile and json raise many types for damaged files
        raise SeqmodelsError(f"{path}: not a .keras model file ({type(exc).__name__}: "
                             f"{_first_line(exc)})") from None
    if _too_deep(config, MAX_NESTING):
        raise SeqmodelsError(f"{path}: its config.json nests more than {MAX_NESTING} levels "
                             f"deep, far more than a model's description needs; refused")
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
