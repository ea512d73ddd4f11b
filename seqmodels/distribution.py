"""The name seqmodels is installed by: `seqmodels` on the package index is another project."""

from __future__ import annotations

DISTRIBUTION = "seqmodels-rnn"


def pip_install(extra: str = "") -> str:
    """The command that installs seqmodels, or one of its extras."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"
