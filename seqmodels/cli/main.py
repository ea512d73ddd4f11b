"""The `seqmodels` command line: thin click commands over the library."""

from __future__ import annotations

import copy
import errno
import gc
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from seqmodels import __version__
from seqmodels.cli.corpus import corpus
from seqmodels.cli.diagnose import diagnose
from seqmodels.cli.evaluate import evaluate
from seqmodels.cli.export import export
from seqmodels.cli.forecast import forecast
from seqmodels.cli.generate import generate
from seqmodels.cli.options import CommandGroup, cli_message, option_name
from seqmodels.cli.train import train
from seqmodels.errors import SeqmodelsError, render, settings_shown_as
from seqmodels.progress import messages_shown


def _one_line(message: object) -> str:
    """A message on one line: the error output is always exactly one line."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


@contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """The library's warnings as 'warning: ...' lines on stderr, settings named as options."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        click.echo(f"warning: {_one_line(render(str(message), option_name))}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


class _Group(CommandGroup):
    """A click group that turns SeqmodelsError into a one-line error and its exit status."""

    def invoke(self, ctx: click.Context):
        try:
            with _warnings_on_stderr(), settings_shown_as(option_name), messages_shown():
                return super().invoke(ctx)
        except SeqmodelsError as exc:  # its settings named as this command line's options
            code, message = getattr(exc, "exit_code", 1), _one_line(cli_message(exc))
            exc.__context__ = exc.__traceback__ = None  # what the error's frames held may go
            if code == 1:
                raise click.ClickException(message) from None
            click.echo(message, err=True)
            ctx.exit(code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # stdout closed early (| head): stop quietly, as cat does
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            ctx.exit(141)
        except OSError as exc:  # a path the user gave cannot be created, read or written
            if exc.filename is None and exc.errno == errno.EAGAIN:  # fork or thread refused
                raise click.ClickException(
                    f"could not start a process or thread ({exc.strerror or exc}): the limit on "
                    f"processes (ulimit -u) may be reached; raise it, or give --workers 1 where "
                    f"the command takes it") from None
            where = exc.filename or "a file"
            raise click.ClickException(_one_line(f"{where}: {exc.strerror or exc}")) from None
        except MemoryError:
            raise click.ClickException("out of memory: the corpus or model is too large for "
                                       "this machine") from None
        except Exception as exc:
            if type(exc).__name__ == "ResourceExhaustedError":  # TensorFlow out of memory
                raise click.ClickException("out of memory: the model or batch is too large for "
                                           "this machine; use fewer --units or a smaller "
                                           "--batch-size") from None
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="seqmodels")
def cli() -> None:
    """Train, evaluate and sample recurrent sequence models (LSTM, GRU, SimpleRNN).

    With no corpus argument, commands use the built-in King James Bible text (kjv).
    """


for command in (corpus, train, evaluate, export, diagnose, forecast):
    cli.add_command(command)
cli.add_command(generate, "generate-text")  # the design card's name
cli.add_command(copy.copy(generate), "generate")  # its alias, as earlier releases named it
cli.commands["generate"].hidden = True


def main() -> None:
    """Console-script entry point."""
    from seqmodels.interrupts import record_ctrl_c
    from seqmodels.training.timing import mark_process_start

    mark_process_start()  # a --max-time budget counts from here
    record_ctrl_c()
    try:
        cli(prog_name="seqmodels", auto_envvar_prefix="SEQMODELS")
    finally:  # an error's frames may hold objects (TensorFlow's all-reduce thread pool) whose
        gc.collect()  # finalizers fail once the interpreter shuts down: they run here instead


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
