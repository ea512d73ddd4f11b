"""Option parsers shared by the command modules (cli, cli_forecast)."""

from __future__ import annotations

import click

from seqmodels.errors import SeqmodelsError


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """--max-time: seconds from '90s', '10m', '2h'; a budget of 0 is refused."""
    from seqmodels.training import parse_duration

    try:
        seconds = None if value is None else parse_duration(value)
    except SeqmodelsError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds is not None and seconds <= 0:
        raise click.BadParameter(f"{value!r} is no time at all; give a budget above 0")
    return seconds
