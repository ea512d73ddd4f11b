"""Figures drawn one at a time, without pyplot: matplotlib is not thread-safe (its mathtext
parser fails when two threads label a log axis at once), and pyplot's global state would
switch a notebook's backend."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)
_LOCK = threading.RLock()


def one_at_a_time(draw: F) -> F:
    """Run a drawing function under the process's one plotting lock."""

    @functools.wraps(draw)
    def locked(*args, **kwargs):
        with _LOCK:
            return draw(*args, **kwargs)

    return locked  # type: ignore[return-value]
