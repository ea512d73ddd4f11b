"""Where a run's wall time goes (start-up, compilation, steps, validation, writes, callbacks),
and the time budget that counts all of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from seqmodels.errors import SeqmodelsError
from seqmodels.settings import is_finite

PARTS = ("startup", "compile", "steps", "validation", "writes", "callbacks")
MEASURED = PARTS[1:2] + PARTS[3:]  # timed as they happen; steps are the rest of the loop
LABELS = {"startup": "start-up", "compile": "compilation", "steps": "steps",
          "validation": "validation", "writes": "writes", "callbacks": "samples and callbacks"}
OVERHEAD = ("compile", "validation", "writes", "callbacks")  # around the steps, inside training


def check_time_spent(value: object, where: str) -> dict[str, float]:
    """A checkpoint's time_spent: seconds >= 0 by part (parts this version does not know are
    left out, missing ones are 0)."""
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and is_finite(v) and v >= 0 for k, v in value.items()):
        raise SeqmodelsError(f"{where}: progress field 'time_spent' must be an object of "
                             f"seconds >= 0")
    return {part: float(value.get(part, 0.0)) for part in PARTS}


class TimeSpent:
    """Wall seconds by part: those of the run's earlier processes, and this process's own from
    `started` (the moment its budget counts from) on; training begins at construction."""

    def __init__(self, before: dict | None = None, started: float | None = None) -> None:
        self.before = {part: float((before or {}).get(part, 0.0)) for part in PARTS}
        self.began = time.monotonic()
        self.started = self.began if started is None else min(started, self.began)
        self.here = dict.fromkeys(MEASURED, 0.0)
        self.last = dict.fromkeys(MEASURED, 0.0)  # the latest stretch of each part
        self._open: list[list] = []  # [part, start, seconds of parts inside it]

    @contextmanager
    def on(self, part: str) -> Iterator[None]:
        """Count the block's seconds to part (less those of parts timed inside it)."""
        self._open.append([part, time.monotonic(), 0.0])
        try:
            yield
        finally:
            name, start, inner = self._open.pop()
            seconds = time.monotonic() - start
            self.here[name] += seconds - inner
            self.last[name] = seconds - inner
            if self._open:
                self._open[-1][2] += seconds

    def elapsed(self) -> float:
        """Seconds since this process's budget began (its start-up included)."""
        return time.monotonic() - self.started

    def training(self) -> float:
        """Seconds since training began in this process."""
        return time.monotonic() - self.began

    def totals(self) -> dict[str, float]:
        """Seconds by part over the whole run, this process up to now included (the blocks
        open now counted up to now)."""
        here, now, inside = dict(self.here), time.monotonic(), 0.0
        for part, start, inner in reversed(self._open):  # the innermost first
            here[part] += now - start - inner - inside
            inside = now - start
        mine = {**here, "startup": self.began - self.started,
                "steps": max(0.0, self.training() - sum(here.values()))}
        return {part: self.before[part] + mine[part] for part in PARTS}

    def columns(self) -> dict[str, float]:
        """The totals as history.csv columns."""
        return {f"{part}_seconds": seconds for part, seconds in self.totals().items()}

    def summary(self) -> str:
        """One line: each part's seconds and share of the run's wall time."""
        totals = self.totals()
        wall = sum(totals.values()) or 1.0
        shown = [f"{LABELS[p]} {s:.1f} s ({100 * s / wall:.1f}%)" for p, s in totals.items()
                 if s >= 0.05 or p == "steps"]
        return (f"Time: {wall:.1f} s in all: {', '.join(shown)}; "
                f"{around_steps(totals):.1%} of the training time went around the steps.")


def around_steps(totals: dict[str, float]) -> float:
    """The share of a run's training time (all but start-up) that went around the steps."""
    training = sum(totals.values()) - totals["startup"]
    return sum(totals[part] for part in OVERHEAD) / training if training > 0 else 0.0



_PROCESS_STARTED: list[float] = []  # set by the console script: budgets count from it


def mark_process_start() -> None:
    """Budgets of commands in this process count from its start (the console script's)."""
    _PROCESS_STARTED[:] = [_process_started()]


def command_started() -> float:
    """The time.monotonic() a command's budget counts from: the process's start when the
    console script marked it, else now (a command run inside a longer-lived process)."""
    return _PROCESS_STARTED[0] if _PROCESS_STARTED else time.monotonic()


def _process_started() -> float:
    """The time.monotonic() this process started at (Linux: from /proc; elsewhere: now)."""
    import os

    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command's name
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time
    except (OSError, ValueError, IndexError):
        return time.monotonic()
    return time.monotonic() - max(0.0, min(age, 60.0))  # a suspend between: at most a minute
