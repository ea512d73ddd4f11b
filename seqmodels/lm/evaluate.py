"""Evaluation: cross-entropy, perplexity, bits per token, accuracy, over text with carried state."""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqmodels.data.vocab import UNK_ID
from seqmodels.errors import SeqmodelsError, UndecodableText
from seqmodels.progress import progress_bar
from seqmodels.training.history import perplexity

if TYPE_CHECKING:
    from seqmodels.lm.model import LanguageModel

CHUNK = 512  # tokens per compiled call when walking text with carried state


@dataclass
class Metrics:
    """What `seqmodels evaluate` reports."""

    tokens: int  # tokens predicted
    cross_entropy: float  # nats per token
    perplexity: float
    bits_per_token: float  # bits per character at char level
    characters: int | None  # characters of the text scored (None: a model without tokenizer)
    nats_per_char: float | None  # the cross-entropy of all predictions over those characters
    bits_per_char: float | None
    accuracy: float  # next-token top-1
    top5_accuracy: float
    oov: int  # predicted tokens that are <unk> in the evaluated text
    oov_rate: float
    context: int | None  # None: all previous context (state carried)

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def text_and_characters(model: LanguageModel, corpus: str | Path | list[str] | None = None,
                        text: str | None = None, cache_dir: str | Path | None = None,
                        progress: bool = False) -> tuple[np.ndarray, int | None]:
    """The ids of what LanguageModel.evaluate scores: corpus files read as the run's corpus
    was, a string, or (neither) the test split of the run's own corpus; and the characters of
    the text read (None for a test split: its tokens are decoded to count them)."""
    from seqmodels.data.prepare import corpus_test_ids, corpus_text

    tokenizer = model._text()
    if corpus and text is not None:
        raise SeqmodelsError("give `corpus` files or a `text`, not both")
    if text is not None:
        return tokenizer.encode(text), len(tokenizer.normalise(text))
    if not corpus:
        if not model.settings:
            raise SeqmodelsError("this model was not trained in a run, so it has no test split; "
                                 "give `corpus` files or a `text`")
        from seqmodels.training.rundir import RunDir

        run = RunDir(model.path) if model.path is not None else None
        return corpus_test_ids(model.data, model.settings.get("corpus_digest"),
                               tokenizer.vocabulary, cache_dir, progress,
                               (run.config, run.vocab) if run else ("its settings",
                                                                     "its vocabulary")), None
    if isinstance(corpus, (str, Path)):  # one file, not the characters of its name
        corpus = [str(corpus)]
    if _is_the_runs_corpus(model, list(corpus)):  # the run travelled, its corpus given again
        import dataclasses

        return corpus_test_ids(dataclasses.replace(model.data, corpus=list(corpus)),
                               model.settings.get("corpus_digest"), tokenizer.vocabulary,
                               cache_dir, progress), None
    data = model.data
    try:
        read = corpus_text(data, list(corpus))
    except UndecodableText as exc:  # its hint names settings evaluate does not have
        raise SeqmodelsError(f"{exc.problem}; text is read as the run's was ({data.encoding}, "
                             f"errors {data.errors}): convert the file to "
                             f"{data.encoding}") from None
    return tokenizer.vocabulary.encode(tokenizer.tokenize(read)), len(read)


def _is_the_runs_corpus(model: LanguageModel, corpus: list[str]) -> bool:
    """Whether corpus files hold exactly the corpus the model's run was trained on (the same
    content digest): then its test split is what is scored, not the whole text."""
    digest = model.settings.get("corpus_digest") if model.settings else None
    if not digest:
        return False
    from seqmodels.data.chunks import stream_digest
    from seqmodels.data.corpus import resolve_sources

    try:
        return stream_digest(resolve_sources(corpus)) == digest
    except SeqmodelsError:  # unreadable: reading it as text says why
        return False


COUNT_BLOCK = 1 << 18  # tokens decoded at a time when counting characters


def decoded_characters(tokenizer, ids: np.ndarray) -> int:
    """Characters the ids decode to, a block at a time (ids may be a memory map)."""
    return sum(len(tokenizer.decode(np.asarray(ids[start:start + COUNT_BLOCK])))
               for start in range(0, len(ids), COUNT_BLOCK))


def metric_step(network, jit_compile: bool | None = None):
    """A compiled (x, y) -> (sum CE, top-1 hits, top-5 hits) over one batch of a network.

    A network that qualifies runs through the fused CPU recurrence; jit_compile=None compiles
    with XLA where that pays off.
    """
    from seqmodels.backend import import_tf
    from seqmodels.models import fused

    tf = import_tf()
    fast = fused.use_fused(network)
    jit_compile = fused.use_xla(network, fast, jit_compile)
    forward = fused.forward(network, fast)

    @tf.function(reduce_retracing=True, autograph=False, jit_compile=jit_compile)
    def step(x, y):
        logits = forward(x, training=False)  # (B, L, V)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)  # (B, L)
        flat = tf.reshape(logits, [-1, tf.shape(logits)[-1]])
        target = tf.reshape(y, [-1])
        top1 = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(flat, -1, output_type=tf.int32),
                                              target), tf.int32))
        k = tf.minimum(5, tf.shape(logits)[-1])
        top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(target, flat, k), tf.int32))
        return tf.reduce_sum(ce), top1, top5

    return step


def evaluate_ids(
    model: LanguageModel,
    ids: np.ndarray,
    context: int | None = None,
    batch_size: int = 64,
    progress: bool = False,
    characters: int | None = None,
) -> Metrics:
    """Predict every token of ids from the ones before it and summarise the errors; per
    character, over `characters` (the text's own count, when ids are a whole text) or the
    characters the predicted tokens decode to.

    With context=None the model walks the text once with its state carried, so each token is
    predicted from all the text before it. With context=T the text is cut into windows of T
    predictions, each starting from a zero state (what a windowed evaluation measures).
    """
    from seqmodels.backend import first_traces
    from seqmodels.data.windows import window_dataset

    ids = np.asarray(ids)
    n = len(ids) - 1
    if n < 1:
        raise SeqmodelsError("evaluation needs at least two tokens")
    total, top1, top5 = 0.0, 0, 0
    bar = progress_bar(total=n, desc="evaluating", unit="tok", unit_scale=True, leave=False,
                       show=progress)
    with bar:
        if context is None:
            if "carried" not in model._cache:  # a twin that carries its state, compiled once
                twin = model.stateful_copy(batch_size=1)
                # XLA fuses the per-token recurrence: 5x faster for one stream on a CPU
                model._cache["carried"] = twin, metric_step(twin.network, jit_compile=True)
            twin, step = model._cache["carried"]
            twin.network.set_weights(model.network.get_weights())  # trained since, perhaps
            twin.reset_states()
            for start in range(0, n, CHUNK):  # a chunk at a time: ids may be a memory map
                stop = min(start + CHUNK, n)
                data = np.asarray(ids[start : stop + 1], dtype=np.int32)
                s, a, b = step(data[None, :-1], data[None, 1:])
                total, top1, top5 = total + float(s), top1 + int(a), top5 + int(b)
                bar.update(stop - start)
        else:
            if context < 1:
                raise SeqmodelsError("`context` must be at least 1")
            new = "windowed" not in model._cache  # its first pass traces each batch shape
            if new:
                model._cache["windowed"] = metric_step(model.network)
            step = model._cache["windowed"]
            usable = (n // context) * context
            if usable == 0:
                raise SeqmodelsError(f"the text has {len(ids)} tokens, too few for one "
                                     f"window of `context` {context}")
            with first_traces() if new else nullcontext():
                for x, y in window_dataset(ids[: usable + 1], context, batch_size):
                    s, a, b = step(x, y)
                    total, top1, top5 = total + float(s), top1 + int(a), top5 + int(b)
                    bar.update(int(x.shape[0] * x.shape[1]))
            n = usable
    ce = total / n
    if not math.isfinite(ce):
        raise SeqmodelsError("the model's cross-entropy is not a finite number (its weights "
                             "hold NaN or infinite values); nothing to report")
    if perplexity(ce) is None:
        raise SeqmodelsError(f"the model's cross-entropy is {ce:.4g} nats/token: its perplexity "
                             f"exp({ce:.4g}) is too large for a float (the model diverged, e.g. "
                             f"with too high an `lr`); nothing to report")
    targets = ids[1 : n + 1]
    oov = int(np.count_nonzero(targets == UNK_ID))
    if (characters is None or n < len(ids) - 1) and model.tokenizer is not None:
        characters = decoded_characters(model.tokenizer, targets)  # windows leave a tail
    per_char = total / max(1, characters) if characters is not None else None
    return Metrics(tokens=n, cross_entropy=ce, perplexity=perplexity(ce),
                   bits_per_token=ce / math.log(2), characters=characters,
                   nats_per_char=per_char,
                   bits_per_char=None if per_char is None else per_char / math.log(2),
                   accuracy=top1 / n, top5_accuracy=top5 / n,
                   oov=oov, oov_rate=oov / n, context=context)
