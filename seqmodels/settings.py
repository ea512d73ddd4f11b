"""Settings dataclasses read back from JSON: one strict rule for every config (no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from typing import Any, TypeVar

from seqmodels.errors import SeqmodelsError

T = TypeVar("T")


def from_json(cls: type[T], data: Any, what: str) -> T:
    """cls built from a JSON object; unknown keys are refused with one line naming them."""
    if not isinstance(data, dict):
        raise SeqmodelsError(f"the {what} settings must be a JSON object, not "
                             f"{type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SeqmodelsError(f"unknown {what} setting(s): {', '.join(map(str, unknown))}")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if not _matches(value, hints.get(name, Any)):
            raise SeqmodelsError(f"the {what} setting {name} must be {_describe(hints[name])}, "
                                 f"not {json.dumps(value)[:80]}")
    try:
        return cls(**data)
    except TypeError as exc:  # a required field missing
        raise SeqmodelsError(f"unreadable {what} settings ({exc})") from None


def check_fields(config: Any) -> None:
    """Refuse a field of a settings dataclass whose value is not of its type, as given from
    Python (`epochs=True`, `lr="0.1"`): the setting is named."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _matches(value, hints.get(f.name, Any)):
            raise SeqmodelsError(f"`{f.name}` must be {_describe(hints[f.name])}, not "
                                 f"{value!r:.80}")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type (ints pass for floats; floats must be finite)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return is_finite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True  # a type this check does not know: the config's own validate() decides


def _describe(hint: Any) -> str:
    """A field's type in words: 'a whole number or null'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    words = {type(None): "null", bool: "true or false", int: "a whole number",
             float: "a finite number", str: "a string"}
    if hint in words:
        return words[hint]
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ')}s"
    if origin is tuple:
        return f"a list of {len(args)} numbers" if args and args[-1] is not Ellipsis else "a list"
    return getattr(hint, "__name__", str(hint))


def is_number(value: object) -> bool:
    """True for an int or float read from JSON, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    """A number that is neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


FLOAT32_TINY = 1.1754944e-38  # the smallest normal float32: below it a rate rounds towards 0
FLOAT32_MAX = 3.4028235e38


def check_float32(name: str, value: float | None) -> None:
    """Refuse a positive setting that float32 turns into 0 (or a subnormal) or infinity."""
    if value is None or value == 0:
        return
    if abs(value) < FLOAT32_TINY:
        raise SeqmodelsError(f"`{name}` {value:g} is too small for float32, where "
                             f"it would be (nearly) 0; use at least {FLOAT32_TINY:.2g}")
    if abs(value) > FLOAT32_MAX:
        raise SeqmodelsError(f"`{name}` {value:g} is too large for float32 (above "
                             f"{FLOAT32_MAX:.2g})")


def physical_memory() -> int:
    """Bytes of memory this machine has (a large figure where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**50


def require_memory(need: float, what: str, advice: str) -> None:
    """Refuse work of about `need` bytes beyond this machine's memory, in one line:
    "{what} would need about N GiB, more than this machine's M GiB of memory; {advice}"."""
    memory = physical_memory()
    if need > memory:
        raise SeqmodelsError(f"{what} would need about {large_number(need / 2**30)} GiB, more "
                             f"than this machine's {memory / 2**30:,.0f} GiB of memory; {advice}")


def large_number(value: float) -> str:
    """A large figure written for people: 1,234,567 or 1.2e+30."""
    return f"{value:,.0f}" if value < 1e15 else f"{value:.2g}"
