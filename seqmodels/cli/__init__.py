"""The `seqmodels` command line: thin click commands over the library, one module each."""

from seqmodels.cli.main import cli, main

__all__ = ["cli", "main"]
