"""The history of a run (a row per validation) as CSV and as a plot."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from seqmodels.errors import SeqmodelsError
from seqmodels.files import atomic_path, read_regular, write_text_atomic
from seqmodels.plotting import one_at_a_time


def write_history(path: Path, rows: list[dict]) -> None:
    """Rewrite the history CSV from all rows, atomically."""
    buf = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))  # first-seen order
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


@one_at_a_time
def plot_history(path: Path, rows: list[dict], loss_label: str = "loss",
                 points: list | None = None) -> None:
    """A PNG of train and validation loss (in loss_label's units) and gradient norms
    against training tokens seen, one point per validation; points ([tokens, loss] pairs)
    draw the training loss between validations too."""
    from matplotlib.figure import Figure  # not pyplot: no global state, so threads may plot

    by_tokens = all(isinstance(r.get("tokens"), (int, float)) for r in rows)
    x = [r["tokens"] if by_tokens else r["epoch"] for r in rows]  # older runs: per epoch
    fig = Figure(figsize=(10, 4))
    a, b = fig.subplots(1, 2)
    if points and by_tokens:
        a.plot([t for t, _ in points], [v for _, v in points], "-", color="tab:blue",
               alpha=0.35, label="train (every few steps)")
    a.plot(x, [r["loss"] for r in rows], "o-", color="tab:blue",
           label="train (mean since the last validation)")
    a.plot(x, [r["val_loss"] for r in rows], "o-", color="tab:orange", label="validation")
    a.set_ylabel(loss_label)
    a.legend()
    b.plot(x, [r["grad_norm_mean"] for r in rows], "o-", label="mean")
    b.plot(x, [r["grad_norm_max"] for r in rows], "o-", label="max")
    if any(r["grad_norm_max"] > 0 for r in rows):  # all 0 (a constant series): linear, no warning
        b.set_yscale("log")
    b.set_ylabel("global gradient norm before clipping")
    b.legend()
    from matplotlib.ticker import EngFormatter, MaxNLocator

    for axis in (a, b):
        if by_tokens:
            axis.set_xlabel("training tokens seen")
            axis.xaxis.set_major_formatter(EngFormatter())
        else:
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)


MAX_HISTORY_BYTES = 256 * 2**20  # a row per validation: a few hundred bytes each


def read_history(path: Path) -> list[dict]:
    """Rows of a history CSV as dicts of numbers."""
    try:
        text = read_regular(path, MAX_HISTORY_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise SeqmodelsError(f"{path}: damaged (not UTF-8 text)") from None
    rows = []
    try:
        for line, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), 2):
            rows.append(_history_row(row, path, line))
    except csv.Error as e:  # a cell past the csv module's field size limit, a NUL byte
        raise SeqmodelsError(f"{path}: damaged ({e})") from None
    return rows


def _history_row(row: dict, path: Path, line: int) -> dict:
    """One history row as numbers; a short or non-numeric row is damage."""
    if None in row or None in row.values():
        raise SeqmodelsError(f"{path}: line {line} has a different number of cells than the "
                             f"header")
    try:
        return {k: (int(v) if k == "epoch" else float(v) if v else math.nan)
                for k, v in row.items()}
    except ValueError:
        raise SeqmodelsError(f"{path}: line {line} holds a cell that is not a number") from None


def best_val_loss(rows: list[dict]) -> float | None:
    """The lowest validation loss in history rows (None before the first validation)."""
    losses = [r["val_loss"] for r in rows if r.get("val_loss") is not None]
    return min(losses) if losses else None


def epochs_done(history: list[dict]) -> int:
    """The epoch of the last history row: rows are validations, more than one an epoch with
    `eval_every`."""
    return int(history[-1]["epoch"]) if history else 0


MAX_LOG_FLOAT = math.log(1.7976931348623157e308)  # exp of more overflows a float


def perplexity(loss: float) -> float | None:
    """exp(loss), or None where it is too large for a float (a diverged model)."""
    return math.exp(loss) if loss <= MAX_LOG_FLOAT else None
