"""Progress bars and messages. Bars: tqdm.auto's (widgets in a Jupyter notebook), shown on a
terminal and in a notebook, not in a log file. Messages: the `seqmodels` logger, silent unless
the program shows them (the command line does; `show_messages()` or logging's own
configuration in a script or notebook)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("seqmodels")


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's kernel application)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too new to ask: a terminal's rules
        return False


def bar_drawn() -> bool:
    """Whether a bar shows here: stderr is a terminal, or this is a notebook."""
    try:
        return sys.stderr.isatty() or in_notebook()
    except (AttributeError, ValueError):  # stderr replaced, or closed
        return False


def progress_bar(iterable=None, *, show: bool = True, **kwargs):
    """A tqdm bar (the notebook flavour in a kernel) when `show`, on a terminal or in a
    notebook; a bar that draws nothing otherwise (stderr is a file or a pipe)."""
    from tqdm.auto import tqdm

    disable = True if not show else (False if in_notebook() else None)  # None: a tty only
    return tqdm(iterable, disable=disable, **kwargs)


class _BarSafeHandler(logging.Handler):
    """Writes messages to stderr above a progress bar (tqdm.write), one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's own rule: a failing handler does not stop the program
            self.handleError(record)


def show_messages(level: int = logging.INFO) -> logging.Handler:
    """Show seqmodels' messages on stderr from `level` on (the command line's way); returns
    the handler, added once however often this is called."""
    for handler in logger.handlers:
        if isinstance(handler, _BarSafeHandler):
            handler.setLevel(level)
            break
    else:
        handler = _BarSafeHandler(level)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:  # unset, or set higher: messages from `level` on
        logger.setLevel(level)
    return handler


@contextmanager
def messages_shown(level: int = logging.INFO) -> Iterator[None]:
    """Show seqmodels' messages on stderr while the block runs (a command), then put the
    logger back as it was."""
    before = (list(logger.handlers), logger.level, [h.level for h in logger.handlers])
    show_messages(level)
    try:
        yield
    finally:
        logger.handlers[:] = before[0]
        logger.setLevel(before[1])
        for handler, handler_level in zip(before[0], before[2]):
            handler.setLevel(handler_level)
