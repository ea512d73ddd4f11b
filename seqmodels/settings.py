"""Settings dataclasses read back from JSON: one strict rule for every config (no TensorFlow)."""

from __future__ import annotations

import dataclasses
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
    try:
        return cls(**data)
    except TypeError as exc:  # a required field missing
        raise SeqmodelsError(f"unreadable {what} settings ({exc})") from None


def option_name(field_name: str) -> str:
    """The command-line spelling of a setting: max_time -> --max-time."""
    return "--" + field_name.replace("_", "-")
