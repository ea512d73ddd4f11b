"""The one exception type the library raises for problems a user can fix."""



class SeqmodelsError(Exception):
    """A plain-English problem with input, files or settings (not a bug)."""


def describe(exc: BaseException) -> str:
    """'TypeError: message' of someone else's exception, even one whose __str__ fails."""
    try:
        said = str(exc)
    except Exception:  # an exception whose own __str__ raises or returns no string
        said = "(its message cannot be shown)"
    return f"{type(exc).__name__}: {said}"


class UndecodableText(SeqmodelsError):
    """A file that is not text in the encoding it is read with; the message ends with a hint
    naming the options that change it, which commands without them replace."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem} ({hint})")
        self.problem = problem


class NewerFormatError(SeqmodelsError):
    """A file written by a newer seqmodels than this one (never silently skipped)."""
