"""The one exception type the library raises for problems a user can fix."""



class SeqmodelsError(Exception):
    """A plain-English problem with input, files or settings (not a bug)."""


class NewerFormatError(SeqmodelsError):
    """A file written by a newer seqmodels than this one (never silently skipped)."""
