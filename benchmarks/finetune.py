"""Fine-tuning the built-in model against training from scratch, on text it never saw.

Run as `python -m benchmarks.finetune [--minutes 1 3 10] [--corpus manpages cheaders]
[--only NAME ...]`. The corpora are made from this machine's own files, and neither is in the
built-in model's pretraining text (see data/pretrain.py):

- manpages: section-1 manual pages rendered as plain text (`man -P cat`, 80 columns), in the
  order of their file names, the first 3 MB: English prose about programs, with options;
- cheaders: the C headers under /usr/include, in path order, the first 3 MB: code.

For every corpus and budget (`--max-time`), each recipe trains into its own run, and its best
model is scored on the same held-out text (the end of the corpus that is in the test split of
both levels: the last 5% or so), with the state carried through it, in nats per character: a
byte-level model's nats per byte x bytes / characters. Prints one table row a run and a sample
of each; first, the built-in model's score on that text with no training at all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

CORPUS_BYTES = 3_000_000
PROMPTS = {"manpages": "NAME\n", "cheaders": "#include <"}


def manpages(path: Path) -> Path:
    """Section-1 manual pages rendered to text."""
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        for page in sorted(Path("/usr/share/man/man1").glob("*.1.gz")):
            text = subprocess.run(["man", "-P", "cat", "-l", str(page)], capture_output=True,
                                  text=True, env=env, errors="replace").stdout
            text = "".join(ch for ch in text if ch == "\n" or ch >= " ").rstrip() + "\n\n"
            out.write(text)
            size += len(text.encode())
            if size >= CORPUS_BYTES:
                break
    return path


def cheaders(path: Path) -> Path:
    """C headers, in path order."""
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        for header in sorted(Path("/usr/include").rglob("*.h")):
            try:
                text = header.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            out.write(text)
            size += len(text.encode())
            if size >= CORPUS_BYTES:
                break
    return path


CORPORA = {"manpages": manpages, "cheaders": cheaders}


def recipes() -> dict:
    """name -> (data settings, model: a ModelConfig's settings or 'builtin', training settings).
    The from-scratch ones are the best of README's 'Quality per minute' at 3 minutes."""
    return {
        "scratch LSTM 2x256": ({"level": "char"}, {}, {}),
        "scratch LSTM 2x128": ({"level": "char"}, {"units": 128}, {}),
        "scratch GRU 2x256": ({"level": "char"}, {"cell": "gru"}, {}),
        "fine-tune lr 1e-3": ({"level": "byte"}, "builtin", {"lr": 1e-3, "warmup": 20}),
        "fine-tune lr 2e-3": ({"level": "byte"}, "builtin", {"lr": 2e-3, "warmup": 20}),
        "fine-tune lr 4e-3": ({"level": "byte"}, "builtin", {"lr": 4e-3, "warmup": 20}),
    }


def run_recipe(corpus: Path, recipe, minutes: float, folder: Path, test_text: str) -> dict:
    """Train one recipe for the budget; its test loss in nats/char and a sample."""
    import seqmodels

    data, model, train = recipe
    model = seqmodels.load(model) if model == "builtin" else seqmodels.ModelConfig(**model)
    run = seqmodels.train(seqmodels.DataConfig(corpus=[str(corpus)], **data), model,
                          seqmodels.TrainConfig(epochs=10_000, max_time=minutes * 60, seed=1,
                                                **train),
                          out=folder)
    metrics = run.model.evaluate(text=test_text)
    tokens_per_char = (len(run.model.tokenizer.encode(test_text)) - 1) / (len(test_text) - 1)
    [sample] = run.model.generate(PROMPTS.get(corpus.stem, "\n"), 240,
                                  seqmodels.SamplingConfig(temperature=0.7, seed=1))
    return {"test": metrics.cross_entropy * tokens_per_char,
            "steps": int(run.history[-1]["global_step"]),
            "sample": sample["prompt"] + sample["text"]}


def zero_shot(test_text: str) -> float:
    """The built-in model's loss on the held-out text, untrained on the corpus, in nats/char."""
    import seqmodels

    model = seqmodels.load("builtin")
    tokens_per_char = (len(model.tokenizer.encode(test_text)) - 1) / (len(test_text) - 1)
    return model.evaluate(text=test_text).cross_entropy * tokens_per_char


def held_out_text(corpus: Path) -> str:
    """The end of the corpus that neither level trains on: the shorter of the char and byte
    test splits, taken from the text itself (a char model's test split may hold characters its
    vocabulary lacks, which would read back as unknown tokens)."""
    import seqmodels
    from seqmodels.data.corpus import read_corpus, resolve_sources

    text = read_corpus(resolve_sources([str(corpus)])).text
    chars = len(seqmodels.prepare_corpus(seqmodels.DataConfig(corpus=[str(corpus)])).splits.test)
    as_bytes = seqmodels.prepare_corpus(seqmodels.DataConfig(corpus=[str(corpus)], level="byte"))
    tail = text.encode()[-len(as_bytes.splits.test):].decode("utf-8", errors="ignore")
    return text[-min(chars, len(tail)):]


def main(argv: list[str] | None = None) -> None:
    """Measure each corpus, budget and recipe; print the table's rows and each sample."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 3, 10])
    parser.add_argument("--corpus", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--only", nargs="*", choices=list(recipes()), help="these recipes only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seqmodels-finetune-") as tmp:
        print(f"{'corpus':<10}{'minutes':>8}  {'recipe':<24}{'test nats/char':>15}{'steps':>8}",
              flush=True)
        for name in args.corpus:
            corpus = CORPORA[name](Path(tmp) / f"{name}.txt")
            test_text = held_out_text(corpus)
            print(f"{name:<10}{0:>8g}  {'built-in, no training':<24}"
                  f"{zero_shot(test_text):>15.3f}{0:>8,}", flush=True)
            for minutes in args.minutes:
                for label, recipe in recipes().items():
                    if args.only and label not in args.only:
                        continue
                    folder = Path(tmp) / f"{name}-{minutes:g}-{label.replace(' ', '-')}"
                    result = run_recipe(corpus, recipe, minutes, folder, test_text)
                    print(f"{name:<10}{minutes:>8g}  {label:<24}{result['test']:>15.3f}"
                          f"{result['steps']:>8,}\n    sample: {result['sample'][:300]!r}",
                          flush=True)

if __name__ == "__main__":
    main()
