"""Next-token sampling in TensorFlow ops: greedy, temperature, top-k and top-p (nucleus).

Everything works on a batch of logits (B, V) and traces inside `tf.function` / `tf.while_loop`
(also with `jit_compile=True`). Excluded tokens get the logit -inf, which softmax, log_softmax and
`tf.random.stateless_categorical` all treat as probability 0 without producing NaN, because every
row always keeps at least one finite logit. Logits are expected finite (no NaN, no +inf).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from seqmodels.backend import import_tf
from seqmodels.errors import SeqmodelsError
from seqmodels.settings import FLOAT32_MAX

tf = import_tf()


# A top-p prefix whose probability falls short of p by less than this (float32 rounding of a
# cumulative sum) counts as reaching p, so probs [0.5, 0.3, ...] with p=0.8 keep 2 tokens, not 3.
TOP_P_TOLERANCE = 1e-6
# float32's smallest normal number: a temperature below it is 0 once cast (sampling treats it
# as greedy, which is what it tends to), never the 1 a division by zero would be replaced with
SMALLEST_TEMPERATURE = 1.1754944e-38


def validate_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise SeqmodelsError with a plain message if a sampling setting is out of range."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, Real)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise SeqmodelsError(
            f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}"
        )
    if temperature > FLOAT32_MAX:  # float32, where the logits are divided by it, makes it inf
        raise SeqmodelsError(f"temperature {temperature:g} is too large for float32 (above "
                             f"{FLOAT32_MAX:.2g}); a temperature of 100 already samples "
                             f"nearly uniformly")
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, Integral) or top_k < 1
    ):
        raise SeqmodelsError(f"top_k must be a whole number >= 1, got {top_k!r}")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, Real) or not 0 < top_p <= 1
    ):
        raise SeqmodelsError(f"top_p must be a number in (0, 1], got {top_p!r}")


def filter_logits(
    logits: tf.Tensor, top_k: int | None = None, top_p: float | None = None
) -> tf.Tensor:
    """Set logits (B, V) outside the top-k, then outside the top-p nucleus, to -inf."""
    logits = tf.convert_to_tensor(logits)
    neg_inf = tf.constant(-math.inf, logits.dtype)
    if top_k is not None:
        vocab = logits.shape[-1] if logits.shape[-1] is not None else tf.shape(logits)[-1]
        k = tf.minimum(top_k, vocab) if isinstance(vocab, tf.Tensor) else min(top_k, vocab)
        kth = tf.math.top_k(logits, k=k).values[:, -1:]  # (B, 1); ties with it are kept too
        logits = tf.where(logits >= kth, logits, neg_inf)
    if top_p is not None and top_p < 1:
        ranked = tf.sort(logits, axis=-1, direction="DESCENDING")  # (B, V)
        above = tf.cumsum(tf.nn.softmax(ranked, axis=-1), axis=-1, exclusive=True)  # (B, V)
        # keep a ranked token while the tokens above it have not yet reached p: this includes
        # the token that crosses p and gives the smallest set whose probability reaches p
        n_keep = tf.reduce_sum(tf.cast(above < top_p - TOP_P_TOLERANCE, tf.int32), axis=-1)
        n_keep = tf.maximum(n_keep, 1)  # (B,)
        threshold = tf.gather(ranked, n_keep[:, None] - 1, batch_dims=1)  # (B, 1)
        logits = tf.where(logits >= threshold, logits, neg_inf)
    return logits


def _seed_tensor(seed: int | tf.Tensor | None) -> tf.Tensor:
    """Return a shape-[2] seed for the stateless draw; None gives a fresh random one."""
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    if isinstance(seed, Integral):
        return tf.constant([int(seed), 0], tf.int64)
    return tf.convert_to_tensor(seed)


def sample_next(
    logits: tf.Tensor,
    temperature: float | tf.Tensor,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | tf.Tensor | None = None,
) -> tf.Tensor:
    """Draw one next-token id per row of logits (B, V) -> int32 (B,); temperature 0 is argmax.

    `seed` is a shape-[2] int tensor (fold a step counter in with
    `tf.random.experimental.stateless_fold_in`), a Python int, or None for an unseeded draw.
    `temperature` may be a scalar tensor; top_k and top_p are Python values.
    """
    python_t = not tf.is_tensor(temperature)
    validate_sampling(temperature if python_t else 1.0, top_k, top_p)
    logits = tf.convert_to_tensor(logits)
    if logits.dtype in (tf.float16, tf.bfloat16):
        logits = tf.cast(logits, tf.float32)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)  # (B,)
    if python_t and temperature < SMALLEST_TEMPERATURE:  # 0, or one float32 flushes to 0
        return greedy
    t = tf.cast(temperature, logits.dtype)
    safe_t = tf.where(t > 0, t, tf.ones_like(t))
    # top-k first on the raw logits (temperature does not change the ranking, and rounding in
    # the shift below could tie a token outside the k largest with the k-th)
    logits = filter_logits(logits, top_k=top_k)
    # shift each row's max to exactly 0: a tiny temperature then overflows only to -inf, never +inf
    scaled = (logits - tf.reduce_max(logits, axis=-1, keepdims=True)) / safe_t
    scaled = filter_logits(scaled, top_p=top_p)
    drawn = tf.random.stateless_categorical(scaled, 1, _seed_tensor(seed), dtype=tf.int32)
    return drawn[:, 0] if python_t else tf.where(t > 0, drawn[:, 0], greedy)
