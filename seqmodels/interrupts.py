"""Ctrl-C that is never lost: Python drops a KeyboardInterrupt raised inside a `__del__` method
(a regex object freed while a corpus is tokenized, say), so the command line also records each
Ctrl-C and the long loops (tokenizing, training) look at the record."""

from __future__ import annotations

import signal
import threading

_pressed = False


def record_ctrl_c() -> None:
    """From now on a Ctrl-C is recorded as well as raised (main thread, default handler only)."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _record)


def _record(signum, frame) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def ctrl_c_pressed() -> bool:
    """Whether a recorded Ctrl-C came (raised, and perhaps swallowed where it landed)."""
    return _pressed


def check_ctrl_c() -> None:
    """Raise KeyboardInterrupt again for a recorded Ctrl-C that was swallowed."""
    if _pressed:
        raise KeyboardInterrupt
