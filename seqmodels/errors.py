"""The one exception type the library raises for problems a user can fix.

Messages name settings as they are spelt in Python, between backticks: "`lr` must be
positive". str() shows them plain ("lr must be positive"); the command line shows each as its
option ("--lr must be positive"), in one place (seqmodels.cli.main).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")
_NAMER: list[Callable[[str], str]] = [lambda setting: setting]  # how settings are shown now


def render(message: str, name: Callable[[str], str] | None = None) -> str:
    """A message with each `setting` written as name(setting) (default: as they are shown now,
    their Python names unless a command line shows its options)."""
    name = name or _NAMER[0]
    return SETTING.sub(lambda m: name(m.group(1)), message)


@contextmanager
def settings_shown_as(name: Callable[[str], str]) -> Iterator[None]:
    """While the block runs, messages name each setting as name(setting) does (the command line
    shows its options)."""
    before = _NAMER[0]
    _NAMER[0] = name
    try:
        yield
    finally:
        _NAMER[0] = before


class SeqmodelsError(Exception):
    """A plain-English problem with input, files or settings (not a bug)."""

    exit_code = 1  # what the command line exits with

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message  # with the settings marked, for the command line

    def __str__(self) -> str:
        return render(self.message)

    def __format__(self, spec: str) -> str:
        """In an f-string (one error's message inside another's) the settings stay marked, so
        the command line still shows them as options."""
        return format(self.message, spec)


def describe(exc: BaseException) -> str:
    """'TypeError: message' of someone else's exception, even one whose __str__ fails."""
    try:
        said = str(exc)
    except Exception:  # an exception whose own __str__ raises or returns no string
        said = "(its message cannot be shown)"
    return f"{type(exc).__name__}: {said}"


class UndecodableText(SeqmodelsError):
    """A file that is not text in the encoding it is read with; the message ends with a hint
    naming the settings that change it, which callers without them replace."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem} ({hint})")
        self.problem = problem


class NewerFormatError(SeqmodelsError):
    """A file written by a newer seqmodels than this one (never silently skipped)."""


class UnreadableFileError(SeqmodelsError):
    """A file that is there but this process may not read (its permissions): not damage, so
    never skipped for an older copy."""


class ResumableError(SeqmodelsError):
    """Training stopped, or could not go on, with the run's files whole: resuming the run
    continues it. The caller says how (`resume_with`); the training engine does not know."""

    def __init__(self, problem: str, run_dir: object, lead: str = "Resume with",
                 exit_code: int = 1, separator: str = ". ") -> None:
        super().__init__(problem)
        self.problem, self.run_dir, self.lead = problem, run_dir, lead
        self.exit_code, self.separator = exit_code, separator
        self.command: str | None = None
        self.reason: str | None = None  # what failed, for a caller that words it otherwise

    def resume_with(self, command: str) -> ResumableError:
        """Name the command that resumes the run (say, 'seqmodels train --resume runs/x')."""
        self.command = command
        self.message = f"{self.problem}{self.separator}{self.lead}: {command}"
        return self
