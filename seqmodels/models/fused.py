"""Fast CPU training path for Keras LSTM and GRU layers: the same maths and the same weights,
with the input projection done as one GEMM for all time steps and a hand-written BPTT.

Keras' TF backend runs a generic while-loop on the CPU: every step multiplies the input by the
kernel, and autodiff adds a per-step weight-gradient GEMM and a stack of small ops. Here:

- forward: Z = X @ W + b for all T at once (one GEMM), then per step only h @ U and the gates;
- backward (tf.custom_gradient): per step only the gate derivatives and dZ_t @ U^T; the weight
  gradients come after the loop from one GEMM each (H_prev^T @ dZ, X^T @ dZ).

Used for training and evaluation on the CPU when the model qualifies (supported()); the saved
model stays plain keras.layers, and a GPU keeps Keras' cuDNN kernels.
"""

from __future__ import annotations

from typing import Any

from seqmodels.backend import import_keras, import_tf
from seqmodels.errors import SeqmodelsError

tf, keras = import_tf(), import_keras()


def _eligible(layer: Any) -> bool:
    """An LSTM/GRU layer whose maths this module reproduces exactly."""
    cell = getattr(layer, "cell", None)
    if type(layer) not in (keras.layers.LSTM, keras.layers.GRU) or cell is None:
        return False
    float32 = all(v.dtype == "float32" for v in layer.weights) and layer.compute_dtype == "float32"
    plain = (float32 and layer.activity_regularizer is None
             and layer.return_sequences and not layer.stateful and not layer.go_backwards
             and not layer.unroll and not layer.return_state and cell.use_bias
             and cell.recurrent_dropout == 0 and cell.dropout == 0
             and cell.activation is keras.activations.tanh
             and cell.recurrent_activation is keras.activations.sigmoid)
    if type(layer) is keras.layers.GRU:
        plain = plain and cell.reset_after
    return plain


def supported(model: Any) -> bool:
    """True when model is a chain of layers whose recurrent ones all qualify, on the CPU."""
    if tf.config.list_logical_devices("GPU"):
        return False  # cuDNN is faster there, and Keras takes it by itself
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    if not recurrent or not all(_eligible(layer) for layer in recurrent):
        return False
    # a simple chain: every layer's input is the previous layer's output, and no masks
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if any(getattr(layer, "mask_zero", False) or isinstance(layer, keras.layers.Masking)
           for layer in layers):
        return False
    for prev, layer in zip(layers, layers[1:]):
        if layer.input is not prev.output:
            return False
    return bool(layers) and layers[-1].output is model.outputs[0]


def use_fused(model: Any, fast: bool | None = None) -> bool:
    """Whether to run the model through this module (None: wherever it applies)."""
    if fast is False:
        return False
    ok = supported(model)
    if fast and not ok:
        raise SeqmodelsError("this model cannot take the fused path (see fused.supported)")
    return ok


def use_xla(model: Any, fast: bool, xla: bool | None = None) -> bool:
    """Whether to compile a step with XLA (None: for the fused path when it pays off)."""
    if xla is not None:
        return xla
    return fast and xla_pays_off(model)


def forward(model: Any, fast: bool) -> Any:
    """(x, training=False) -> the model's outputs: through the fused recurrence when fast."""
    if fast:
        return lambda x, training=False: logits(model, x, training)
    return lambda x, training=False: model(x, training=training)


XLA_MIN_UNITS = 64  # below this a step takes ~1 ms and XLA's ~3 s compile does not pay off


def xla_pays_off(model: Any) -> bool:
    """Whether compiling a fused step with XLA is worth its few seconds (every layer wide)."""
    units = [layer.units for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    return bool(units) and min(units) >= XLA_MIN_UNITS


def logits(model: Any, x: Any, training: bool = False, fast: bool = True,
           head: bool = True) -> Any:
    """The model's outputs for x, with every recurrent layer on the fused path (unless fast
    is False: Keras' own layers); head=False stops under the last layer (the logits).

    training=False runs the forward recurrence alone (nothing kept for a backward pass).
    """
    sequences = ({} if not fast else
                 {keras.layers.LSTM: lstm_sequence, keras.layers.GRU: gru_sequence} if training
                 else {keras.layers.LSTM: lstm_recurrence, keras.layers.GRU: gru_recurrence})
    h = x
    for layer in model.layers if head else model.layers[:-1]:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if type(layer) in sequences:
            h = _time_major(sequences[type(layer)], h, layer.cell)
        else:
            h = layer(h, training=training)
    return h


def _time_major(sequence, x, cell):
    """(B, T, I) -> one input GEMM -> the recurrence over time -> (B, T, H)."""
    B, T = tf.shape(x)[0], tf.shape(x)[1]
    kernel = tf.convert_to_tensor(cell.kernel)
    inputs = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, kernel.shape[0]])  # (T*B, I)
    bias = tf.convert_to_tensor(cell.bias)
    z = tf.reshape(tf.matmul(inputs, kernel), [T, B, kernel.shape[1]])  # (T, B, G*H)
    h = sequence(z, tf.convert_to_tensor(cell.recurrent_kernel), bias)
    return tf.transpose(h, [1, 0, 2])  # (B, T, H)


def _gate_scale(units: int, gates: int, which: int, value: float):
    """A (gates*H,) vector of ones with `value` in gate block `which`."""
    blocks = [tf.fill([units], value if g == which else 1.0) for g in range(gates)]
    return tf.concat(blocks, 0)


def _zeros(z, units: int):
    """(B, units) zeros for the batch of z (T, B, G*H)."""
    return tf.zeros(tf.stack([tf.shape(z)[1], units]), z.dtype)


def _lstm_cell(zt, h, c, u, two):
    """One LSTM step from its input projection zt (B, 4H): new h, new c, gate activations."""
    a = tf.sigmoid((zt + tf.matmul(h, u)) * two)  # (B, 4H); tanh(x) = 2 sigmoid(2x) - 1
    i, f, g, o = tf.split(a, 4, axis=1)
    c = f * c + i * (2.0 * g - 1.0)
    return o * tf.tanh(c), c, a


def _gru_cell(xt, h, u, b_rec, H: int):
    """One GRU step (reset_after) from its input projection xt (B, 3H): new h, the update and
    reset gates (B, 2H), the candidate hh and the candidate's recurrent part r_h."""
    inner = tf.matmul(h, u) + b_rec  # (B, 3H)
    zr = tf.sigmoid(xt[:, :2 * H] + inner[:, :2 * H])
    r_h = inner[:, 2 * H:]
    hh = tf.tanh(xt[:, 2 * H:] + zr[:, H:] * r_h)
    return zr[:, :H] * h + (1.0 - zr[:, :H]) * hh, zr, hh, r_h


def lstm_recurrence(z, u, b):
    """lstm_sequence's h without what a backward pass needs (for evaluation)."""
    H = u.shape[0]
    two = _gate_scale(H, 4, 2, 2.0)

    def step(carry, zt):
        return _lstm_cell(zt, *carry, u, two)[:2]

    zero = _zeros(z, H)
    return tf.scan(step, z + b, initializer=(zero, zero))[0]


def gru_recurrence(z, u, b):
    """gru_sequence's h without what a backward pass needs (for evaluation)."""
    H = u.shape[0]
    return tf.scan(lambda h, xt: _gru_cell(xt, h, u, b[1], H)[0], z + b[0],
                   initializer=_zeros(z, H))


@tf.custom_gradient
def lstm_sequence(z, u, b):
    """h (T, B, H) of an LSTM (Keras' i, f, c, o gate order) from Z = X @ W (T, B, 4H)."""
    H = u.shape[0]
    zb = z + b  # (T, B, 4H)
    two = _gate_scale(H, 4, 2, 2.0)
    zero = _zeros(z, H)  # (B, H)

    def step(carry, zt):
        h, c, _ = carry
        return _lstm_cell(zt, h, c, u, two)

    hs, cs, acts = tf.scan(step, zb, initializer=(zero, zero, tf.tile(zero, [1, 4])))

    def grad(dhs):
        c_prev = tf.concat([zero[None], cs[:-1]], 0)
        four = _gate_scale(H, 4, 2, 4.0)
        ut = tf.transpose(u)

        def back(carry, inputs):
            dh_next, dc_next, _ = carry
            dh_out, a, c, cp = inputs
            dh = dh_out + dh_next
            i, f, g, o = tf.split(a, 4, axis=1)
            g = 2.0 * g - 1.0
            tc = tf.tanh(c)
            dc = dc_next + dh * o * (1.0 - tc * tc)
            dgates = tf.concat([dc * g, dc * cp, dc * i, dh * tc], 1) * a * (1.0 - a) * four
            return tf.matmul(dgates, ut), dc * f, dgates

        _, _, dz = tf.scan(back, (dhs, acts, cs, c_prev), initializer=(zero, zero, acts[0]),
                           reverse=True)
        h_prev = tf.concat([zero[None], hs[:-1]], 0)
        flat = tf.reshape(dz, [-1, 4 * H])
        du = tf.matmul(tf.reshape(h_prev, [-1, H]), flat, transpose_a=True)
        return dz, du, tf.reduce_sum(flat, 0)

    return hs, grad


@tf.custom_gradient
def gru_sequence(z, u, b):
    """h (T, B, H) of a GRU with reset_after (Keras' z, r, h order) from Z = X @ W (T, B, 3H).

    b is Keras' (2, 3H) bias: input bias, recurrent bias.
    """
    H = u.shape[0]
    zb = z + b[0]
    zero = _zeros(z, H)  # (B, H)

    hs, zrs, hhs, rhs = tf.scan(lambda carry, xt: _gru_cell(xt, carry[0], u, b[1], H), zb,
                                initializer=(zero, tf.tile(zero, [1, 2]), zero, zero))

    def grad(dhs):
        h_prev = tf.concat([zero[None], hs[:-1]], 0)
        ut = tf.transpose(u)

        def back(carry, inputs):
            dh_next = carry[0]
            dh_out, zr, hh, r_h, hp = inputs
            dh = dh_out + dh_next
            zg, rg = zr[:, :H], zr[:, H:]
            da_h = dh * (1.0 - zg) * (1.0 - hh * hh)
            dzr = tf.concat([dh * (hp - hh), da_h * r_h], 1) * zr * (1.0 - zr)
            dinner = tf.concat([dzr, da_h * rg], 1)  # d(h @ U + b_rec)
            dx = tf.concat([dzr, da_h], 1)  # d(x @ W + b_in)
            return dh * zg + tf.matmul(dinner, ut), dinner, dx

        _, dinner, dz = tf.scan(back, (dhs, zrs, hhs, rhs, h_prev),
                                initializer=(zero, tf.tile(zero, [1, 3]), tf.tile(zero, [1, 3])),
                                reverse=True)
        flat = tf.reshape(dinner, [-1, 3 * H])
        du = tf.matmul(tf.reshape(h_prev, [-1, H]), flat, transpose_a=True)
        db = tf.stack([tf.reduce_sum(tf.reshape(dz, [-1, 3 * H]), 0), tf.reduce_sum(flat, 0)])
        return dz, du, db

    return hs, grad
