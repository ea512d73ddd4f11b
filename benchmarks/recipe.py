"""The default recipe, chosen by measurement: each variant trains for the same budget on the
built-in corpus (char level, 2 x 256 LSTM) and is scored on the test split.

Run as `python -m benchmarks.recipe [--budget 3m] [--only NAME ...]`; prints one row a variant.
"""

from __future__ import annotations

import argparse
import dataclasses

from benchmarks.bench import train_for

BEFORE = {"embedding_init": "uniform", "lr": 2e-3, "schedule": "constant"}
VARIANTS = {  # name -> settings of ModelConfig and TrainConfig (the rest: their defaults)
    "keras-init": BEFORE,
    "normal-init": {**BEFORE, "embedding_init": "normal"},
    "normal-lr4e-3": {**BEFORE, "embedding_init": "normal", "lr": 4e-3},
    "normal-lr4e-3-cosine": {"embedding_init": "normal", "lr": 4e-3, "schedule": "cosine"},
    "normal-lr6e-3-cosine-warmup": {"embedding_init": "normal", "lr": 6e-3, "schedule": "cosine",
                                    "warmup": 20},
    "normal-lr4e-3-cosine-batch32": {"embedding_init": "normal", "lr": 4e-3,
                                     "schedule": "cosine", "batch_size": 32},
}


def main(argv: list[str] | None = None) -> None:
    """Train every variant for the budget and print its test loss."""
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig, parse_duration

    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__)
    parser.add_argument("--budget", default="3m", help="training time of each variant")
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="these variants only")
    args = parser.parse_args(argv)
    budget = parse_duration(args.budget)
    data = DataConfig()
    prepared = prepare_corpus(data)
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    print(f"{'variant (built-in corpus, ' + args.budget + ')':<34}{'test nats/char':>15}"
          f"{'steps':>8}{'tokens/s':>10}", flush=True)
    for name in args.only or VARIANTS:
        settings = VARIANTS[name]
        model = ModelConfig(**{k: v for k, v in settings.items() if k in model_fields})
        config = TrainConfig(**{k: v for k, v in settings.items() if k not in model_fields})
        result = train_for(prepared, data, model, config, budget)
        print(f"{name:<34}{result['test']:>15.3f}{result['steps']:>8,}"
              f"{result['tokens_per_s']:>10,.0f}", flush=True)


if __name__ == "__main__":
    main()
