"""The compiled training step: optimizer, loss and penalties, gradient norms and clipping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seqmodels.errors import SeqmodelsError
from seqmodels.training.config import TrainConfig


def make_optimizer(config: TrainConfig):
    """The Keras optimizer named by the config (clipping is done by the train step)."""
    from seqmodels.backend import import_keras

    keras = import_keras()
    lr = config.learning_rate
    return {
        "adam": lambda: keras.optimizers.Adam(lr),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=config.momentum),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adagrad": lambda: keras.optimizers.Adagrad(lr),
    }[config.optimizer]()


def cross_entropy(y, logits):
    """Token cross-entropy in nats: (B, T) ids and (B, T, V) logits -> (B, T)."""
    from seqmodels.backend import import_tf

    return import_tf().nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


Objective = Callable[[Any, Any], Any]  # (targets, model outputs) -> per-element loss


def use_fused(model, fast: bool | None = None) -> bool:
    """Whether a step runs the model through seqmodels.models.fused (None: wherever it applies)."""
    if fast is False:
        return False
    from seqmodels.models import fused

    ok = fused.supported(model)
    if fast and not ok:
        raise SeqmodelsError("this model cannot take the fused path (see fused.supported)")
    return ok


def use_xla(model, fast: bool, xla: bool | None = None) -> bool:
    """Whether to compile a step with XLA (None: for the fused path when it pays off)."""
    if xla is not None:
        return xla
    from seqmodels.models import fused

    return fast and fused.xla_pays_off(model)


def outputs_of(model, x, training: bool = False, fast: bool = False):
    """The model's outputs, through the fused CPU recurrence when fast is True."""
    if fast:
        from seqmodels.models import fused

        return fused.logits(model, x, training)
    return model(x, training=training)


def loss_terms(model, x, y, training: bool = False, objective: Objective = cross_entropy,
               fast: bool = False):
    """Mean objective (default cross-entropy, nats/token) of the model's outputs, and the L1/L2
    penalty."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    outputs = outputs_of(model, x, training, fast)  # (B, T, V) logits for a language model
    penalty = tf.add_n(model.losses) if model.losses else tf.constant(0.0)
    return tf.reduce_mean(objective(y, outputs)), penalty


def dense_gradients(grads: list) -> list:
    """The embedding's sparse gradient made dense.

    It repeats rows for repeated tokens, so densifying makes the global norm (and its
    clipping) that of the gradient actually applied.
    """
    from seqmodels.backend import import_tf

    tf = import_tf()
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


def clip_gradients(grads: list, norm, config: TrainConfig) -> list:
    """Gradients clipped to --clipnorm (by their global norm) and then to --clipvalue."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    if config.clipnorm is not None:
        grads, _ = tf.clip_by_global_norm(grads, config.clipnorm, use_norm=norm)
    if config.clipvalue is not None:
        grads = [tf.clip_by_value(g, -config.clipvalue, config.clipvalue) for g in grads]
    return grads


def make_steps(model, optimizer, config: TrainConfig, objective: Objective = cross_entropy,
               fast: bool | None = None):
    """Compiled train and eval steps; the train step reports the pre-clipping gradient norm.

    eval_step(x, y) returns (sum of the objective, number of elements) so means over a whole
    split are exact. fast: the fused CPU recurrence (None: wherever it applies; same maths);
    both steps are compiled with XLA as config.xla says.
    """
    from seqmodels.backend import import_tf

    tf = import_tf()
    variables = model.trainable_variables
    fast = use_fused(model, fast)
    jit = use_xla(model, fast, config.xla)

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss, penalty = loss_terms(model, x, y, training=True, objective=objective,
                                       fast=fast)
            total = loss + penalty
        grads = dense_gradients(tape.gradient(total, variables))
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(total) & tf.math.is_finite(norm)
        grads = clip_gradients(grads, norm, config)
        if finite:
            optimizer.apply(grads, variables)
        return loss, norm, finite

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def eval_step(x, y):
        losses = objective(y, outputs_of(model, x, False, fast))
        return tf.reduce_sum(losses), tf.size(losses)

    return train_step, eval_step
