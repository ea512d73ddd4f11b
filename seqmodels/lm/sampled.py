"""Sampled softmax: a training loss over the true token and K sampled ones instead of every id,
for vocabularies large enough that the output layer dominates a step (validation and
evaluation keep the full softmax)."""

from __future__ import annotations

import math
from typing import Any

AUTO_SAMPLES = 256  # samples when the setting is left to the run (see the README's table)
AUTO_FROM = 8192  # ... for vocabularies of at least this many ids; smaller: the full softmax


def samples_for(setting: int | None, vocab_size: int, ranked: bool = True) -> int:
    """Samples per step a run uses (0: the full softmax): the setting, or the automatic rule
    when it is None (only for a vocabulary ranked by frequency, which the log-uniform draws
    assume); never as many as the vocabulary holds."""
    auto = AUTO_SAMPLES if vocab_size >= AUTO_FROM and ranked else 0
    k = auto if setting is None else setting
    return k if 0 < k < vocab_size - 1 else 0


def features(model: Any, fast: bool):
    """(x, training) -> the outputs of the layer under the logits (B, T, H)."""
    from seqmodels.models import fused

    return lambda x, training=False: fused.logits(model, x, training, fast=fast, head=False)


def sampled_objective(model: Any, samples: int):
    """(targets (B, T), features (B, T, H)) -> each token's sampled-softmax loss (B, T), as
    TensorFlow's sampled_softmax_loss computes it (Jean et al. 2015) with draws taken with
    replacement: a softmax over the true id and `samples` ids drawn log-uniformly over every id
    but <pad> (<unk> the first: a target where a vocabulary was capped), every logit less the
    log of its expected count among the draws (a
    draw of the true id is masked). Written out so that XLA compiles it. Its value is not the
    cross-entropy (with many draws it tends to log(Z - e^s_y) - s_y + log(K q_y)); only the
    gradient's direction is what training wants from it."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    head = model.get_layer("logits")
    V = int(head.units)
    span = V - 1  # ids 1..V-1; a frequency-ranked vocabulary puts its common tokens first
    log_span = math.log(span + 1)

    def expected_log(ids):  # the log of an id's expected count among the draws
        r = tf.cast(tf.maximum(ids - 1, 0), tf.float32)  # <pad> is never a target
        q = (tf.math.log(r + 2.0) - tf.math.log(r + 1.0)) / log_span
        return tf.math.log(q * samples)

    def objective(y, h):
        kernel = tf.convert_to_tensor(head.kernel)  # (H, V)
        bias = tf.convert_to_tensor(head.bias)
        shape = tf.shape(y)
        flat = tf.reshape(h, [-1, kernel.shape[0]])
        labels = tf.cast(tf.reshape(y, [-1]), tf.int32)
        u = tf.random.uniform([samples])
        drawn = tf.cast(tf.exp(u * log_span), tf.int32)  # 1..span, log-uniformly
        drawn = tf.clip_by_value(drawn, 1, V - 1)  # ids; the clip only guards rounding
        w_true = tf.gather(kernel, labels, axis=1)  # (H, N)
        true_shift = expected_log(labels)
        true = (tf.reduce_sum(flat * tf.transpose(w_true), -1) + tf.gather(bias, labels)
                - true_shift)
        sampled = (tf.matmul(flat, tf.gather(kernel, drawn, axis=1)) + tf.gather(bias, drawn)
                   - expected_log(drawn))  # (N, K)
        hit = tf.equal(labels[:, None], drawn[None, :])
        sampled = tf.where(hit, tf.fill(tf.shape(sampled), -1e9), sampled)
        logits = tf.concat([true[:, None], sampled], axis=1)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.zeros_like(labels), logits=logits)
        return tf.reshape(loss, shape)

    return objective
