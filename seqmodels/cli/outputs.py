"""What a command writes: its own output files (never one it must not replace), and text as
standard output can write it."""

from __future__ import annotations

from pathlib import Path

from seqmodels.files import check_output, real_location
from seqmodels.training.rundir import RunDir


def check_output_file(path: str | Path, force: bool,
                      inputs: list[tuple[str | Path, str]] = ()) -> Path:
    """files.check_output, the files of any run the path lies in (or in its checkpoints) and
    the installed data files counted among the inputs: an output never replaces a run's
    settings or model (present or to come), nor the built-in corpus or series."""
    path = Path(path)
    RunDir.check_not_reserved(path)
    run = RunDir.of_file(real_location(path))
    own = run.own_files() if run is not None else []
    return check_output(path, force, [*inputs, *own, *installed_files()])


def installed_files() -> list[tuple[Path, str]]:
    """The data files installed with seqmodels (the built-in series and corpus)."""
    from seqmodels.data.corpus import kjv_path
    from seqmodels.forecast.series import DATA_FOLDER

    files = [(p, "a built-in series' own file") for p in sorted(DATA_FOLDER.glob("*.csv"))]
    return [*files, (kjv_path(), "the built-in corpus' own file")]


class TerminalText:
    """Text as standard output can write it: characters its encoding (the locale's) lacks are
    replaced by '?', and a warning says so once, where Python raised UnicodeEncodeError."""

    def __init__(self) -> None:
        self.warned = False

    def __call__(self, text: str) -> str:
        import click

        encoding = _unwritable(text)
        if encoding is None:
            return text
        if not self.warned:
            self.warned = True
            click.echo(f"warning: standard output's encoding ({encoding}, from the locale) "
                       f"cannot write some characters of the text; they are shown as '?' "
                       f"(a UTF-8 locale, such as LC_ALL=C.UTF-8, shows them)", err=True)
        return text.encode(encoding, "replace").decode(encoding)


def json_for_stdout(obj: object) -> str:
    """JSON text with its characters as written where standard output's encoding has them,
    and as \\u escapes (the same text, in ASCII) where it does not."""
    import json

    text = json.dumps(obj, ensure_ascii=False)
    return text if _unwritable(text) is None else json.dumps(obj)


def _unwritable(text: str) -> str | None:
    """Standard output's encoding when it lacks some character of text, else None (an
    encoding Python does not know is left to the stream)."""
    import sys

    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return encoding
    except LookupError:
        pass
    return None
