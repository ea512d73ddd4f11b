"""The compiled training step of any task: optimizer, loss and penalties, gradient norms and
clipping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


Objective = Callable[[Any, Any], Any]  # (targets, model outputs) -> per-element loss
Forward = Callable[..., Any]  # (x, training) -> model outputs


def loss_terms(model, x, y, objective: Objective, forward: Forward | None = None,
               training: bool = False):
    """Mean objective of the model's outputs (forward: how to compute them, default calling the
    model), and the model's L1/L2 penalty."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    outputs = (forward or model)(x, training=training)
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
    """Gradients clipped to `clipnorm` (by their global norm) and then to `clipvalue`."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    if config.clipnorm is not None:
        grads, _ = tf.clip_by_global_norm(grads, config.clipnorm, use_norm=norm)
    if config.clipvalue is not None:
        grads = [tf.clip_by_value(g, -config.clipvalue, config.clipvalue) for g in grads]
    return grads


def make_steps(model, optimizer, config: TrainConfig, objective: Objective,
               forward: Forward | None = None, jit: bool = False,
               training: tuple[Objective, Forward] | None = None):
    """Compiled train and eval steps; the train step reports the pre-clipping gradient norm.

    eval_step(x, y) returns (sum of the objective, number of elements) so means over a whole
    split are exact. forward(x, training) computes the model's outputs (default: calling the
    model; a task may give a faster path with the same maths); jit compiles with XLA.
    training: the (objective, forward) the train step uses instead (a cheaper loss).
    """
    from seqmodels.backend import import_tf

    tf = import_tf()
    variables = model.trainable_variables
    forward = forward or model
    train_objective, train_forward = training or (objective, forward)

    # autograph=False: the steps are written in TensorFlow ops (tf.cond, tf.while_loop), so
    # converting their Python (seconds of every run's start) buys nothing
    @tf.function(reduce_retracing=True, jit_compile=jit, autograph=False)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss, penalty = loss_terms(model, x, y, train_objective, train_forward,
                                       training=True)
            total = loss + penalty
        grads = dense_gradients(tape.gradient(total, variables))
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(total) & tf.math.is_finite(norm)
        grads = clip_gradients(grads, norm, config)
        tf.cond(finite, lambda: _applied(optimizer, grads, variables), tf.no_op)
        return loss, norm, finite

    @tf.function(reduce_retracing=True, jit_compile=jit, autograph=False)
    def eval_step(x, y):
        losses = objective(y, forward(x, training=False))
        return tf.reduce_sum(losses), tf.size(losses)

    return train_step, eval_step


def _applied(optimizer, grads: list, variables: list):
    """The optimizer's update as a branch of tf.cond (which needs an op to return)."""
    from seqmodels.backend import import_tf

    optimizer.apply(grads, variables)
    return import_tf().no_op()
