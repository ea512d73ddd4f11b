"""The language-model task the Trainer trains: windows of a prepared corpus in batches, the
cross-entropy and its metrics, carried states, and the best model kept as the run's model."""

from __future__ import annotations

import math
from typing import Any

from seqmodels.data.prepare import PreparedCorpus
from seqmodels.data.tokenizers import Tokenizer
from seqmodels.data.windows import require_windows, stream_dataset, stream_layout, window_dataset
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.model import LanguageModel
from seqmodels.training.config import TrainConfig
from seqmodels.training.history import perplexity
from seqmodels.training.rundir import RunDir
from seqmodels.training.trainer import Task


def cross_entropy(y, logits):
    """Token cross-entropy in nats: (B, T) ids and (B, T, V) logits -> (B, T)."""
    from seqmodels.backend import import_tf

    return import_tf().nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


def language_metrics(val_loss: float, tokens_per_char: float) -> dict[str, float]:
    """History columns of a validation cross-entropy: perplexity, bits per token, and nats and
    bits per character (so levels compare), at the validation text's tokens per character."""
    per_char = val_loss * tokens_per_char
    return {"val_perplexity": perplexity(val_loss),  # None (an empty cell) if it overflows
            "val_bits_per_token": val_loss / math.log(2),
            "val_nats_per_char": per_char, "val_bits_per_char": per_char / math.log(2)}


SAMPLED_TOKENS = 200_000  # tokens per character is measured on at most this many


def tokens_per_char(tokenizer: Tokenizer, ids: Any) -> float:
    """Tokens per character of the text that ids stand for (the first SAMPLED_TOKENS of them,
    decoded; at word level the characters are those NLTK's detokenizer writes back, within
    about 0.2% of the text's own on the built-in corpus)."""
    from seqmodels.lm.evaluate import decoded_characters

    sample = ids[:SAMPLED_TOKENS]
    return len(sample) / max(1, decoded_characters(tokenizer, sample))


def validation_ids(prepared: PreparedCorpus, windows: WindowConfig) -> tuple[Any, str]:
    """The validation ids one validation reads (eval_tokens of them, and the target after), and
    what they are, in words."""
    val = prepared.splits.val
    if windows.eval_tokens:
        return val[:windows.eval_tokens + 1], (
            f"validation split (its first `eval_tokens` {windows.eval_tokens:,} and the target "
            f"after them)")
    return val, "validation split"


def steps_per_epoch(prepared: PreparedCorpus, config: TrainConfig, windows: WindowConfig) -> int:
    """Training steps in one pass over the training split; every split is checked to hold a
    window (or a stream per batch row) first."""
    train_ids = prepared.splits.train
    val, val_what = validation_ids(prepared, windows)
    B, T = config.batch_size, windows.seq_len
    if windows.stateful:
        stream_layout(val, B, T, val_what)
        steps = stream_layout(train_ids, B, T, "training split").steps
    else:
        stride = windows.stride or T
        count = require_windows(len(train_ids), T, stride, "training split")
        require_windows(len(val), T, T, val_what)
        steps = count // B
        if steps == 0:
            raise SeqmodelsError(
                f"the training split has {count:,} window(s) of `seq_len` {T}"
                + (f" at `stride` {stride}" if windows.stride else "")
                + f", fewer than one batch of {B}; use a smaller `batch_size` or `seq_len`"
                + (" or `stride`" if windows.stride else ""))
    return min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps


def language_steps(network: Any, optimizer: Any, config: TrainConfig, fast: bool | None = None):
    """The compiled (train_step, eval_step) of a language network, as `seqmodels train` runs
    them: through the fused CPU recurrence where it applies (fast=None), with XLA where that
    pays off (unless config.xla says), on a sampled softmax where the config or the vocabulary
    size asks for one."""
    from seqmodels.models import fused
    from seqmodels.training.step import make_steps

    fast = fused.use_fused(network, fast)
    return make_steps(network, optimizer, config, cross_entropy, fused.forward(network, fast),
                      jit=fused.use_xla(network, fast, config.xla),
                      training=sampled_training(network, config, fast).get("training"))


def language_task(model: LanguageModel, prepared: PreparedCorpus, config: TrainConfig,
                  windows: WindowConfig) -> Task:
    """The Task of training model on a prepared corpus's windows."""
    from seqmodels.models import fused

    splits = prepared.splits
    B, T = config.batch_size, windows.seq_len
    steps = steps_per_epoch(prepared, config, windows)
    val, _ = validation_ids(prepared, windows)
    tokenizer = prepared.tokenizer()
    ratio = tokens_per_char(tokenizer, val[1:])  # the targets validation predicts
    network = model.network
    fast = fused.use_fused(network)  # on CPU devices; GPUs keep Keras' cuDNN kernels
    if windows.stateful:
        streams = stream_layout(splits.train, B, T, "training split")
        val_streams = stream_layout(val, B, T, "validation split")

    def dataset(epoch: int):
        if windows.stateful:
            return stream_dataset(streams)
        return window_dataset(splits.train, T, B, windows.stride, shuffle=True, seed=config.seed,
                              epoch=epoch, drop_remainder=True)

    def validation_batches():
        if windows.stateful:
            model.reset_states()
            return stream_dataset(val_streams)
        return window_dataset(val, T, B)

    def write_files(run: RunDir) -> None:
        if not run.vocab.exists():  # a kill may have come before it was written
            prepared.vocab.save(run.vocab)

    def load_best(run: RunDir):
        from seqmodels.models.saving import load_model

        return load_model(run.model)

    return Task(network, cross_entropy, dataset, steps, validation_batches,
                save_best=model.save, load_best=load_best, write_files=write_files,
                val_metrics=lambda loss: language_metrics(loss, ratio), val_tokens=len(val) - 1,
                batch_tokens=B * T,
                loss_label="cross-entropy (nats/token)",
                start_epoch=model.reset_states if windows.stateful else None,
                state_variables=model.carried_states, batch_size=B,
                forward=fused.forward(network, fast), jit=fused.use_xla(network, fast),
                **sampled_training(network, config, fast, tokenizer.ranked))


def sampled_training(network: Any, config: TrainConfig, fast: bool,
                     ranked: bool = True) -> dict[str, Any]:
    """The Task settings of a sampled-softmax training loss, when the run uses one (ranked:
    whether the vocabulary's ids are ranked by frequency)."""
    from seqmodels.lm.sampled import features, sampled_objective, samples_for

    V = int(network.get_layer("logits").units)
    k = samples_for(config.sampled_softmax, V, ranked)
    if not k:
        return {}
    return {"training": (sampled_objective(network, k), features(network, fast)),
            "training_note": f"training loss: a softmax over the true token and {k:,} sampled "
                             f"of {V:,} ids (validation: the full softmax)"}
