"""LanguageModel: a trained network you hold, with its tokenizer, vocabulary and settings.

It is the one place that knows the network's shape (its embedding, recurrent layers, states and
logits layer); generation, evaluation, export, checkpoints and the gradient diagnostics ask it.
Each compiled piece (the sampling loop, the evaluation step, the one-step model) is built on
first use and kept, so a held model answers its second call at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqmodels.data.config import DataConfig
from seqmodels.data.tokenizers import Tokenizer, make_tokenizer
from seqmodels.data.vocab import Vocabulary
from seqmodels.errors import SeqmodelsError
from seqmodels.models.config import STATES_PER_LAYER, ModelConfig
from seqmodels.training.rundir import RunDir

if TYPE_CHECKING:
    from seqmodels.lm.evaluate import Metrics
    from seqmodels.lm.generate import SamplingConfig

KIND = "language-model"  # config.json's kind (runs of older versions have none)
WINDOW_SETTINGS = ("seq_len", "stride", "stateful", "eval_tokens")  # in "train" in version 1


def read_settings(run: RunDir) -> dict[str, Any]:
    """config.json of a language-model run (a forecasting run is refused by name); a version-1
    file's window settings are read from its training section."""
    config = run.read_config()
    if config.get("kind", KIND) != KIND:
        raise SeqmodelsError(f"{run} is a {config['kind']} run, not a language model; use "
                             f"seqmodels forecast evaluate, predict or train --resume on it")
    if config["version"] == 1 and "windows" not in config:
        train = config["train"]
        config["windows"] = {k: train.pop(k) for k in WINDOW_SETTINGS if k in train}
    if not isinstance(config.get("windows", {}), dict):
        raise SeqmodelsError(f"{run.config}: the 'windows' section is not an object")
    return config


class LanguageModel:
    """A recurrent language model: token ids (B, T) -> next-token logits (B, T, V)."""

    def __init__(self, network: Any, config: ModelConfig, tokenizer: Tokenizer | None = None,
                 settings: dict[str, Any] | None = None, path: str | Path | None = None) -> None:
        from seqmodels.models.builders import cell_name, recurrent_layers

        self.network = network  # the keras.Model
        self.config = config
        self.tokenizer = tokenizer  # with its vocabulary; None for a model without text
        self.settings = settings or {}  # the run's config.json, when it has one
        self.path = Path(path) if path is not None else None
        self.recurrent_layers = recurrent_layers(network)
        self.cells = [cell_name(layer) for layer in self.recurrent_layers]
        self.embedding = network.get_layer("embedding")
        self.head = network.get_layer("logits")
        self._cache: dict[Any, Any] = {}  # compiled pieces, built on first use

    # ------------------------------------------------------------------ making one

    @classmethod
    def build(cls, config: ModelConfig, tokenizer: Tokenizer | None = None,
              vocab_size: int | None = None, batch_size: int | None = None,
              stateful: bool = False) -> LanguageModel:
        """A freshly initialised model over the tokenizer's vocabulary (or vocab_size ids);
        stateful carries the state between calls, for a fixed batch_size."""
        from seqmodels.models.builders import build_language_model

        size = len(tokenizer.vocabulary) if tokenizer is not None else vocab_size
        if size is None:
            raise SeqmodelsError("a language model needs a tokenizer with a vocabulary, or a "
                                 "vocab_size")
        return cls(build_language_model(size, config, batch_size, stateful), config, tokenizer)

    @classmethod
    def load(cls, run: str | Path | RunDir) -> LanguageModel:
        """The best model of a run directory (or of a built-in model, by its name), with the
        run's tokenizer and settings."""
        from seqmodels.lm.pretrained import resolve

        run = run if isinstance(run, RunDir) else RunDir(resolve(run))
        settings = read_settings(run)
        vocab = Vocabulary.load(run.vocab)
        data = _stored(run, DataConfig, settings["data"])
        tokenizer = make_tokenizer(data)
        tokenizer.set_vocabulary(vocab, str(run.vocab))
        if not run.model.exists():
            holder = run.training_now()
            if holder is not None:
                raise SeqmodelsError(f"{run} is still training ({holder}) and has no model yet: "
                                     f"its model is written at its first validation; try again "
                                     f"then")
            raise SeqmodelsError(f"{run.model}: file not found (the run has no trained model "
                                 f"yet; resuming its training makes one)")
        config = _stored(run, ModelConfig, settings["model"])
        network = load_network(run, len(vocab), config)
        return cls(network, config, tokenizer, settings, run.path)

    # ------------------------------------------------------------------ what it is

    @property
    def vocabulary(self) -> Vocabulary:
        """The ids of its tokens."""
        return self._text().vocabulary

    @property
    def vocab_size(self) -> int:
        """Ids it predicts."""
        return int(self.head.units)

    @property
    def data(self) -> DataConfig:
        """The data settings it was trained with (how its corpus became ids)."""
        if "data" not in self.settings:
            raise SeqmodelsError("this model was not trained in a run, so it has no corpus")
        return _stored(self.path, DataConfig, self.settings["data"]).in_run(self.path)

    @property
    def units(self) -> list[int]:
        """Units of each recurrent layer."""
        return [layer.units for layer in self.recurrent_layers]

    @property
    def state_counts(self) -> list[int]:
        """States each recurrent layer carries: 2 for an LSTM ([h, c]), 1 for GRU/SimpleRNN."""
        return [STATES_PER_LAYER[cell] for cell in self.cells]

    @property
    def state_sizes(self) -> list[int]:
        """The width of each state tensor, flat, in order: per layer [h, c] or [h]."""
        return [units for units, n in zip(self.units, self.state_counts) for _ in range(n)]

    @property
    def stateful(self) -> bool:
        """Whether its layers carry their state from one call to the next."""
        return any(layer.stateful for layer in self.recurrent_layers)

    def count_params(self) -> int:
        """Its number of weights."""
        return int(self.network.count_params())

    def __call__(self, ids: Any, training: bool = False) -> Any:
        """Logits (B, T, V) of ids (B, T)."""
        return self.network(ids, training=training)

    def __repr__(self) -> str:
        shape = f"{len(self.units)} x {self.units[0]} {self.cells[0]}"
        where = f", {self.path}" if self.path else ""
        return f"<LanguageModel {shape}, {self.vocab_size:,} tokens{where}>"

    # ------------------------------------------------------------------ states

    def carried_states(self) -> list[tuple[str, Any]]:
        """The states stateful layers carry between calls, each with a stable name."""
        return [(f"{layer.name}/state_{i}", s) for layer in self.recurrent_layers
                if layer.stateful for i, s in enumerate(layer.states)]

    def reset_states(self) -> None:
        """Zero the state of every stateful layer (Keras 3 dropped Model.reset_states)."""
        for layer in self.recurrent_layers:
            if layer.stateful:
                layer.reset_state()

    def initial_state(self, batch: int = 1) -> list[Any]:
        """Zero states for `batch` streams, flat: per layer [h, c] (LSTM) or [h], each (B, H)."""
        from seqmodels.backend import import_keras

        keras = import_keras()
        return [keras.ops.zeros((batch, size)) for size in self.state_sizes]

    def step_model(self) -> Any:
        """A keras.Model over the same weights that reads one token a call:
        (ids (B,), states) -> (logits (B, V), states)."""
        if "step_model" not in self._cache:
            from seqmodels.lm.step_model import StepModel

            self._cache["step_model"] = StepModel(
                self.embedding, [layer.cell for layer in self.recurrent_layers],
                self.state_counts, self.head)
        return self._cache["step_model"]

    def step(self, tokens: Any, state: list[Any] | None = None) -> tuple[np.ndarray, list[Any]]:
        """Feed one token per stream (B,) from `state` (default: zeros); returns the next-token
        logits (B, V) and the new state. O(1) per token; compiled on the first call."""
        from seqmodels.backend import import_tf

        tf = import_tf()
        tokens = tf.constant(np.asarray(tokens, dtype=np.int32).reshape(-1))
        if state is None:
            state = self.initial_state(int(tokens.shape[0]))
        if "step" not in self._cache:
            self._cache["step"] = tf.function(self.step_model(), reduce_retracing=True)
        logits, new = self._cache["step"](tokens, list(state))
        return logits.numpy(), list(new)

    def stateful_copy(self, batch_size: int = 1) -> LanguageModel:
        """A twin with the same weights that carries its state from call to call."""
        twin = LanguageModel.build(self.config, self.tokenizer, self.vocab_size, batch_size,
                                   stateful=True)
        twin.network.set_weights(self.network.get_weights())
        return twin

    def stateless_copy(self) -> LanguageModel:
        """This model as a plain one (any batch size, no carried state), same weights."""
        if not self.stateful:
            return self
        plain = LanguageModel.build(self.config, self.tokenizer, self.vocab_size)
        plain.network.set_weights(self.network.get_weights())
        return plain

    # ------------------------------------------------------------------ using it

    def generate(self, prompt: str | None = None, length: int = 300,
                 sampling: SamplingConfig | None = None, num_samples: int = 1,
                 stop_at: str | None = None, on_text: Callable[[str], None] | None = None,
                 skip_unknown: bool = False) -> list[dict]:
        """Continue a prompt (default: a newline, or the first token of a random training line)
        by `length` tokens, num_samples times at once; on_text receives a single sample's text as
        it grows. Each sample: {"prompt", "text", "tokens", and the sampling settings}."""
        from seqmodels.lm.generate import generate

        return generate(self, prompt, length, sampling, num_samples, stop_at, on_text,
                        skip_unknown)

    def beam_search(self, prompt: str | None = None, length: int = 100, beam: int = 4,
                    num_samples: int = 1, stop_at: str | None = None,
                    length_penalty: float = 1.0, skip_unknown: bool = False) -> list[dict]:
        """The num_samples most likely continuations of a prompt that a beam of `beam` finds,
        each of at most `length` tokens (ended early by stop_at), ranked by log-probability /
        tokens ** length_penalty. Each: {"prompt", "text", "tokens", "log_prob", "score",
        "beam", "length_penalty"}."""
        from seqmodels.lm.generate import beam_samples

        return beam_samples(self, prompt, length, beam, num_samples, stop_at, length_penalty,
                            skip_unknown)

    def evaluate(self, corpus: str | Path | list[str] | None = None, text: str | None = None,
                 context: int | None = None, cache_dir: str | Path | None = None,
                 progress: bool = False) -> Metrics:
        """Cross-entropy (per token and per character), perplexity and accuracy on text: corpus
        files (paths, folders, globs) or a string, read as the run's corpus was; neither: the
        run's own test split. context=None carries the state through the whole text; context=T
        scores windows of T predictions from a zero state."""
        from seqmodels.lm.evaluate import evaluate_ids, text_and_characters

        ids, characters = text_and_characters(self, corpus, text, cache_dir, progress)
        return evaluate_ids(self, ids, context=context, progress=progress,
                            characters=characters)

    def export(self, fmt: str = "savedmodel", out: str | Path | None = None,
               force: bool = False) -> Path:
        """Write the model for serving: a SavedModel folder (savedmodel), or a TensorFlow Lite or
        ONNX file of its one-step signature; out defaults to the run's export/ folder."""
        from seqmodels.lm.export import export

        if out is None:
            from seqmodels.lm.pretrained import export_folder

            if self.path is None:
                raise SeqmodelsError("this model has no run directory; give `out`")
            out = RunDir(export_folder(self.path)).export_path(fmt)
        return export(self, fmt, Path(out), force)

    def take_weights(self, source: LanguageModel) -> dict[str, int]:
        """Start from another model's weights (the same shape, its own vocabulary): recurrent
        layers as they are, and for each token the two vocabularies share, its embedding row
        and its logits column and bias. A token the source never had keeps the fresh
        embedding row and logits column it was built with, and the lowest logit bias of the
        source's tokens: a new token starts as unlikely as the source's rarest. Returns the
        counts of shared and new tokens."""
        if (source.cells, source.units) != (self.cells, self.units) or \
                source.embedding.output_dim != self.embedding.output_dim:
            raise SeqmodelsError(f"{self!r} cannot start from {source!r}: not the same shape")
        for mine, theirs in zip(self.recurrent_layers, source.recurrent_layers, strict=True):
            mine.set_weights(theirs.get_weights())
        old, new = source.vocabulary, self.vocabulary
        pairs = [(i, old.index[t]) for i, t in enumerate(new.tokens) if t in old.index]
        mine_rows, their_rows = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
        table = self.embedding.embeddings.numpy().copy()
        table[mine_rows] = source.embedding.embeddings.numpy()[their_rows]
        self.embedding.embeddings.assign(table)
        kernel, bias = self.head.get_weights()
        their_kernel, their_bias = source.head.get_weights()
        bias[:] = their_bias.min()
        kernel[:, mine_rows] = their_kernel[:, their_rows]
        bias[mine_rows] = their_bias[their_rows]
        self.head.set_weights([kernel, bias])
        return {"shared_tokens": len(pairs), "new_tokens": len(new) - len(pairs)}

    @property
    def name(self) -> str:
        """What a run started from this model records: a built-in model's name, else the
        absolute path of its run."""
        from seqmodels.lm.pretrained import name_of

        if self.path is None:
            raise SeqmodelsError("this model has no run directory, so no name")
        return name_of(self.path) or str(self.path.resolve())

    def digest(self) -> str:
        """SHA-256 of the run's model file (what a run started from it records)."""
        import hashlib

        if self.path is None:
            raise SeqmodelsError("this model has no run directory, so no file to name")
        with open(RunDir(self.path).model, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def save(self, run: RunDir) -> None:
        """Write the network as the run's model file (a stateful one as its plain twin, so every
        reader gets a normal model), atomically."""
        from seqmodels.models.saving import save_model_atomic

        save_model_atomic(self.stateless_copy().network, run.model)

    def _text(self) -> Tokenizer:
        if self.tokenizer is None:
            raise SeqmodelsError("this model has no tokenizer, so it reads and writes no text")
        return self.tokenizer


def load(run: str | Path | Any) -> LanguageModel:
    """The trained model of a run: a run directory's path, or the Run that train() returned."""
    path = getattr(run, "path", run)
    if path is None:
        raise SeqmodelsError("this run has no directory (a cluster worker that is not the chief "
                             "writes none); load the chief's run")
    return LanguageModel.load(path)


def load_network(run: RunDir, vocab_size: int, config: ModelConfig | None = None):
    """A run's model file, checked to be a seqmodels language model over vocab_size tokens (and,
    given the run's model settings, of that shape)."""
    from seqmodels.models.builders import check_model
    from seqmodels.models.saving import load_model

    network = load_model(run.model)
    out_dim = network.outputs[0].shape[-1] if len(network.outputs) == 1 else None
    if out_dim is not None and out_dim != vocab_size:
        raise SeqmodelsError(f"{run.vocab}: {vocab_size} tokens, but the model predicts {out_dim}")
    check_model(network, str(run.model), "int", vocab_size, config)
    return network


def _stored(where: Any, cls: Any, data: dict) -> Any:
    """A settings dataclass read from a run's config.json, the file named in any error."""
    try:
        return cls.from_json(data)
    except SeqmodelsError as exc:
        if where is None:
            raise
        where = where if isinstance(where, RunDir) else RunDir(where)
        raise SeqmodelsError(f"{where.config}: {exc}") from None
