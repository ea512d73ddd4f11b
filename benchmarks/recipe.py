"""The default recipe, chosen by measurement: each variant trains for the same budget (char
level, 2 x 256 LSTM unless the variant says otherwise) and its best weights are scored on the
test split, in windows of 100 tokens from a zero state whatever T the variant trained with,
in nats per token and in bits per character (the characters the scored tokens stand for), so
that levels compare.

Run as `python -m benchmarks.recipe [--corpus kjv|pydoc|manpages] [--budget 3m]
[--only NAME ...]`; prints one row a variant. `kjv` is the built-in corpus; `pydoc` is the
English text of Python's own documentation topics (the standard library's `pydoc_data`, 0.47
MB on Python 3.11), a second corpus every Python ships; `manpages` is 3 MB of this machine's
section-1 manual pages rendered as text (see benchmarks/finetune.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from benchmarks.bench import train_for

EVAL_CONTEXT = 100  # every variant's test loss uses the same windows
BEFORE = {"embedding_init": "uniform", "lr": 2e-3, "schedule": "constant"}
NOW = {"embedding_init": "normal", "lr": 4e-3}
VARIANTS = {  # name -> settings of the Data, Model, Train and Window configs (the rest: defaults)
    "keras-init": BEFORE,
    "normal-init": {**BEFORE, "embedding_init": "normal"},
    "normal-lr4e-3": {**BEFORE, **NOW},
    "normal-lr4e-3-cosine": {**NOW, "schedule": "cosine"},
    "normal-lr6e-3-cosine-warmup": {**NOW, "lr": 6e-3, "schedule": "cosine", "warmup": 20},
    "normal-lr4e-3-cosine-batch32": {**NOW, "schedule": "cosine", "batch_size": 32},
    # the shape at a fixed budget (the defaults now, otherwise)
    "1x512": {**NOW, "layers": 1, "units": 512},
    "3x256": {**NOW, "layers": 3},
    "2x64": {**NOW, "units": 64},
    "2x128": {**NOW, "units": 128},
    "2x512": {**NOW, "units": 512},
    "T50": {**NOW, "seq_len": 50},
    "T200": {**NOW, "seq_len": 200},
    # GRU and word level: the defaults before and now
    "gru-keras-init": {**BEFORE, "cell": "gru"},
    "gru-normal-lr4e-3": {**NOW, "cell": "gru"},
    "word-keras-init": {**BEFORE, "level": "word"},
    "word-normal-lr4e-3": {**NOW, "level": "word"},
    # levels that compare (issue 30), by bits per character; the defaults otherwise
    "char": {},
    "word-full-softmax": {"level": "word", "sampled_softmax": 0},
    "word-sampled-256": {"level": "word", "sampled_softmax": 256},
    "word-sampled-1024": {"level": "word", "sampled_softmax": 1024},
    "subword-384": {"level": "subword", "max_vocab": 384},
    "subword-512": {"level": "subword", "max_vocab": 512},
    "subword-1024": {"level": "subword", "max_vocab": 1024},
    "subword-2048": {"level": "subword", "max_vocab": 2048},
    "subword-8192": {"level": "subword", "max_vocab": 8192},
    "subword-2048-gru": {"level": "subword", "max_vocab": 2048, "cell": "gru"},
}


def corpus_files(name: str, folder: str) -> list[str]:
    """The corpus argument for a benchmark corpus: [] for the built-in one, else a file."""
    if name == "kjv":
        return []
    if name == "manpages":
        from benchmarks.finetune import manpages

        return [str(manpages(Path(folder) / "manpages.txt"))]
    from pydoc_data.topics import topics

    path = Path(folder) / "pydoc.txt"
    path.write_text("\n\n".join(topics[key].strip() for key in sorted(topics)) + "\n",
                    encoding="utf-8")
    return [str(path)]


def main(argv: list[str] | None = None) -> None:
    """Train every variant for the budget and print its test loss."""
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus
    from seqmodels.lm.config import WindowConfig
    from seqmodels.lm.generate import SamplingConfig
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig, parse_duration

    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("kjv", "pydoc", "manpages"), default="kjv")
    parser.add_argument("--budget", default="3m", help="training time of each variant")
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="these variants only")
    parser.add_argument("--samples", action="store_true",
                        help="print 60 tokens each model writes (temperature 0.8, seed 1)")
    args = parser.parse_args(argv)
    budget = parse_duration(args.budget)
    fields = {cls: {f.name for f in dataclasses.fields(cls)}
              for cls in (DataConfig, ModelConfig, TrainConfig, WindowConfig)}
    print(f"{f'variant ({args.corpus}, {args.budget})':<34}{'test nats/token':>16}"
          f"{'bits/char':>10}{'steps':>8}{'tokens/s':>10}{'around steps':>14}", flush=True)
    with tempfile.TemporaryDirectory(prefix="seqmodels-recipe-") as tmp:
        corpus = corpus_files(args.corpus, tmp)
        for name in args.only or VARIANTS:
            settings = VARIANTS[name]
            parts = {cls: {k: v for k, v in settings.items() if k in fields[cls]}
                     for cls in fields}
            data = DataConfig(corpus=corpus, **parts[DataConfig])
            model = ModelConfig(**parts[ModelConfig])
            config = TrainConfig(**parts[TrainConfig])
            windows = WindowConfig(**parts[WindowConfig])
            prepared = prepare_corpus(data)
            result = train_for(prepared, data, model, config, windows, budget,
                               context=EVAL_CONTEXT)
            print(f"{name:<34}{result['test']:>16.3f}{result['bits_per_char']:>10.3f}"
                  f"{result['steps']:>8,}{result['tokens_per_s']:>10,.0f}"
                  f"{result['around']:>14.1%}", flush=True)
            if args.samples:
                [sample] = result["model"].generate("\n", 60, SamplingConfig(temperature=0.8,
                                                                             seed=1))
                print("    " + sample["text"].replace("\n", "\n    "), flush=True)


if __name__ == "__main__":
    main()
