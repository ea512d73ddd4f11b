"""A trained language-model run: its settings, vocabulary, best model and history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqmodels.data.vocab import Vocabulary
from seqmodels.errors import SeqmodelsError
from seqmodels.models.saving import load_model
from seqmodels.training import checkpoint
from seqmodels.training.history import best_val_loss, read_history
from seqmodels.training.lock import training_now
from seqmodels.training.rundir import read_config


def read_language_config(run_dir: str | Path) -> dict[str, Any]:
    """config.json of a language-model run (a forecasting run is refused by name)."""
    config = read_config(run_dir)
    if config.get("kind", "language-model") != "language-model":
        raise SeqmodelsError(f"{run_dir} is a {config['kind']} run, not a language model; use "
                             f"seqmodels forecast evaluate, predict or train --resume on it")
    return config


@dataclass
class Run:
    """A trained run: its directory, configuration, vocabulary and best model."""

    path: Path | None  # None: a worker that is not the chief (it wrote no run directory)
    config: dict
    vocab: Vocabulary
    model: Any
    history: list[dict]
    stop_reason: str = "completed"
    full_val_loss: float | None = None  # with --eval-tokens: the best model on the whole split

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation loss of any epoch."""
        return best_val_loss(self.history)


def check_resumable(run_dir: Path, vocab: Vocabulary) -> None:
    """Refuse, before any training, a resume whose run files are damaged or do not match.

    vocab is the vocabulary rebuilt from the run's corpus. A run with trained epochs (history or
    model) but no checkpoint cannot go on without starting over, so it is refused too.
    """
    run_dir = Path(run_dir)
    stored = Vocabulary.load(run_dir / "vocab.json")
    if (run_dir / "model.keras").exists():
        load_language_model(run_dir, len(stored))
    if stored != vocab:
        raise SeqmodelsError(f"{run_dir / 'vocab.json'}: does not match the vocabulary of the "
                             f"run's corpus ({len(stored)} vs {len(vocab)} tokens)")
    trained = [n for n in ("history.csv", "model.keras") if (run_dir / n).exists()]
    if checkpoint.latest(run_dir) is None and trained:
        raise SeqmodelsError(f"{run_dir}: no checkpoint to resume from (checkpoints/ is missing "
                             f"or empty), but it has a {' and a '.join(trained)} that resuming "
                             f"would lose; train a new run with --out")


def load_language_model(run_dir: Path, vocab_size: int, config: dict | None = None):
    """A run's model.keras, checked to be a seqmodels language model over vocab_size tokens
    (and, given the run's config, of the shape it names)."""
    from seqmodels.models.builders import check_model
    from seqmodels.models.config import ModelConfig

    model = load_model(run_dir / "model.keras")
    out_dim = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if out_dim is not None and out_dim != vocab_size:
        raise SeqmodelsError(f"{run_dir / 'vocab.json'}: {vocab_size} tokens, but the model "
                             f"predicts {out_dim}")
    try:
        shape = ModelConfig.from_json(config["model"]) if config is not None else None
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: {exc}") from None
    check_model(model, str(run_dir / "model.keras"), "int", vocab_size, shape)
    return model


def load_run(run_dir: str | Path) -> Run:
    """Config, vocabulary, best model and history of a run directory."""
    run_dir = Path(run_dir)
    config = read_language_config(run_dir)
    vocab = Vocabulary.load(run_dir / "vocab.json")
    if config["data"].get("level") == "char":
        odd = next((t for t in vocab.tokens[2:] if len(t) != 1), None)
        if odd is not None:
            raise SeqmodelsError(f"{run_dir / 'vocab.json'}: the token {odd!r} is not one "
                                 f"character, in the vocabulary of a character-level run")
    if not (run_dir / "model.keras").exists():
        holder = training_now(run_dir)
        if holder is not None:
            raise SeqmodelsError(f"{run_dir} is still training ({holder}) and has no model yet: "
                                 f"model.keras is written at its first validation; try again "
                                 f"then")
        raise SeqmodelsError(f"{run_dir / 'model.keras'}: file not found (the run has no "
                             f"trained model yet; seqmodels train --resume {run_dir} makes one)")
    model = load_language_model(run_dir, len(vocab), config)
    return Run(run_dir, config, vocab, model, read_history(run_dir))
