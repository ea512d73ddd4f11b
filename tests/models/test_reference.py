"""seqmodels.models.reference: finite differences, agreement with Keras, gradient-norm decay."""

import subprocess
import sys

import numpy as np
import pytest

from seqmodels.backend import import_tf
from seqmodels.models import reference as ref

tf = import_tf()
import keras  # noqa: E402

B, T, N_IN, H = 2, 4, 3, 4  # batch, time steps, input features, units
CELLS = ["rnn", "lstm", "gru"]
LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def problem(cell: str, seed: int = 0, dtype=np.float64):
    """x (B, T, I), params, initial states, R (B, T, H) and one (B, H) weight per final state."""
    rng = np.random.default_rng(seed)
    params = ref.init_params(cell, N_IN, H, seed=seed + 1, dtype=dtype)
    x = rng.normal(size=(B, T, N_IN)).astype(dtype)
    state = [rng.normal(0.0, 0.5, (B, H)).astype(dtype) for _ in ref.STATES[cell]]
    r = rng.normal(size=(B, T, H)).astype(dtype)
    r_final = [rng.normal(size=(B, H)).astype(dtype) for _ in ref.STATES[cell]]
    return x, params, state, r, r_final


def loss(cell, x, params, state, r, r_final) -> float:
    """Scalar L = sum(h * R) + sum over final states s_T of sum(s_T * R_s)."""
    hs, cache = ref.forward(cell, x, params, state)
    finals = ref.final_state(cache)
    return float(np.sum(hs * r) + sum(np.sum(s * w) for s, w in zip(finals, r_final)))


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||), 0 when both are 0."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale else 0.0


def keras_layer(cell: str, params: ref.Params, state32: list) -> keras.layers.RNN:
    """A built Keras layer (return_sequences and return_state) holding `params` as float32."""
    layer = LAYERS[cell](H, return_sequences=True, return_state=True)
    layer(np.zeros((B, T, N_IN), np.float32), initial_state=state32)  # builds the weights
    ref.params_to_keras(params, layer)
    return layer


def close(ours: np.ndarray, theirs, what: str) -> None:
    """float32 TensorFlow vs float64 reference: 1e-4 relative, or 1e-4 of the largest entry."""
    theirs = np.asarray(theirs, np.float64)
    atol = 1e-4 * max(1.0, float(np.abs(ours).max()))
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=atol, err_msg=what)


def test_module_does_not_import_tensorflow():
    code = "import sys, seqmodels.models.reference; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cell", CELLS)
def test_keras_weight_layout(cell):
    n = len(ref.GATES[cell])
    layer = LAYERS[cell](H)
    layer.build((None, T, N_IN))
    params = ref.params_from_keras(layer)
    assert params["kernel"].shape == (N_IN, n * H)
    assert params["recurrent_kernel"].shape == (H, n * H)
    assert params["bias"].shape == ((2, 3 * H) if cell == "gru" else (n * H,))
    assert {k: v.shape for k, v in ref.init_params(cell, N_IN, H).items()} == {
        k: v.shape for k, v in params.items()
    }


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_central_finite_differences(cell):
    x, params, state, r, r_final = problem(cell)
    hs, cache = ref.forward(cell, x, params, state)
    grads = ref.backward(r, cache, r_final)
    names = ref.STATES[cell]
    variables = {**params, "x": x, **{f"{n}0": s for n, s in zip(names, state)}}

    def f(v: dict) -> float:
        p = {k: v[k] for k in ref.WEIGHT_NAMES}
        return loss(cell, v["x"], p, [v[f"{n}0"] for n in names], r, r_final)

    eps = 1e-6
    for name, value in variables.items():
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[idx] += eps
            minus[idx] -= eps
            diff = f({**variables, name: plus}) - f({**variables, name: minus})
            numeric[idx] = diff / (2 * eps)  # central difference
        assert grads[name].shape == value.shape
        assert rel_error(grads[name], numeric) < 1e-5, name


@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_gradients_match_keras(cell):
    x, params, state, r, r_final = problem(cell, seed=3)
    x32, state32 = x.astype(np.float32), [s.astype(np.float32) for s in state]
    layer = keras_layer(cell, params, state32)
    weights = [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]
    # the reference runs in float64 on exactly the float32 values Keras holds
    params64 = ref.params_from_keras(layer)
    x64, state64 = x32.astype(np.float64), [s.astype(np.float64) for s in state32]
    hs, cache = ref.forward(cell, x64, params64, state64)
    grads = ref.backward(r, cache, r_final)

    xt, st = tf.constant(x32), [tf.constant(s) for s in state32]
    with tf.GradientTape() as tape:
        tape.watch([xt, *st])
        seq, *finals = layer(xt, initial_state=st)
        total = tf.reduce_sum(seq * r.astype(np.float32)) + tf.add_n(
            [tf.reduce_sum(s * w.astype(np.float32)) for s, w in zip(finals, r_final)]
        )
    tf_grads = tape.gradient(total, [xt, *st, *weights])

    close(hs, seq, "h")
    for ours, theirs in zip(ref.final_state(cache), finals):
        close(ours, theirs, "final state")
    names = ["x", *(f"{n}0" for n in ref.STATES[cell]), *ref.WEIGHT_NAMES]
    for name, theirs in zip(names, tf_grads):
        close(grads[name], theirs, name)


@pytest.mark.parametrize("cell", CELLS)
def test_last_step_gradients_match_gradient_tape(cell):
    x, params, state, _, _ = problem(cell, seed=5)
    x32, state32 = x.astype(np.float32), [s.astype(np.float32) for s in state]
    layer = keras_layer(cell, params, state32)
    seed = np.random.default_rng(7).normal(size=(B, H))

    with tf.GradientTape() as tape:
        states, hs = [tf.constant(s) for s in state32], []
        for t in range(T):
            _, states = layer.cell(x32[:, t], states)  # one step: states = [h_t] or [h_t, c_t]
            states = list(states) if isinstance(states, (list, tuple)) else [states]
            hs.append(states[0])
        last = tf.reduce_sum(hs[-1] * seed.astype(np.float32))  # L_T, a loss on h_T only
    tape_grads = np.stack([g.numpy() for g in tape.gradient(last, hs)], axis=1)  # (B, T, H)

    params64 = ref.params_from_keras(layer)
    x64, state64 = x32.astype(np.float64), [s.astype(np.float64) for s in state32]
    ours = ref.last_step_gradients(cell, x64, params64, state64, seed)  # (B, T, H)
    close(ours, tape_grads, "dL_T/dh_t")
    norms = ref.hidden_state_gradients(cell, x64, params64, state64, seed)  # (T,)
    close(norms, np.sqrt((tape_grads**2).sum(axis=(0, 2))), "norms")
    per = ref.hidden_state_gradients(cell, x64, params64, state64, seed, per_example=True)
    assert per.shape == (B, T)
    np.testing.assert_allclose(np.sqrt((per**2).sum(axis=0)), norms)


@pytest.mark.parametrize("radius", [0.5, 3.0])
def test_simple_rnn_gradient_norms_vanish_or_explode_with_spectral_radius(radius):
    steps, units = 12, 16
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(units, units)))  # orthogonal: every singular value 1
    params = ref.init_params("rnn", N_IN, units, seed=12)
    params["recurrent_kernel"] = radius * q
    params["bias"][:] = 0.0
    assert ref.spectral_radius(params["recurrent_kernel"]) == pytest.approx(radius)
    x = 1e-9 * rng.normal(size=(B, steps, N_IN))  # tiny inputs: tanh stays in its linear regime
    norms = ref.hidden_state_gradients("rnn", x, params)  # (T,) ||dL_T/dh_t||, t = 1..T
    back = steps - 1 - np.arange(steps)  # steps back from T
    slope = np.polyfit(back, np.log(norms), 1)[0]  # log growth factor per step back in time
    assert np.sign(slope) == np.sign(np.log(radius))
    assert slope == pytest.approx(np.log(radius), abs=0.01)


def test_spectral_radius_and_split_gates():
    rotation = np.array([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues +-2i
    assert ref.spectral_radius(rotation) == pytest.approx(2.0)
    assert ref.spectral_radius(np.diag([0.1, -0.7, 0.3])) == pytest.approx(0.7)
    u = ref.init_params("lstm", N_IN, H)["recurrent_kernel"]  # (H, 4H)
    blocks = ref.split_gates("lstm", u)
    assert list(blocks) == ["i", "f", "c", "o"]
    np.testing.assert_array_equal(blocks["f"], u[:, H : 2 * H])
    with pytest.raises(ValueError, match="square"):
        ref.spectral_radius(u)


@pytest.mark.parametrize("cell", CELLS)
def test_dtype_follows_inputs(cell):
    x, params, state, r, r_final = problem(cell, dtype=np.float32)
    hs, cache = ref.forward(cell, x, params, state)
    grads = ref.backward(r, cache, r_final)
    assert hs.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    x64, params64, *_ = problem(cell)
    assert ref.forward(cell, x64, params64)[0].dtype == np.float64


def test_bad_shapes_are_clear_errors():
    params = ref.init_params("gru", N_IN, H)
    params["bias"] = params["bias"][0]  # a reset_after=False GRU's (3H,) bias
    with pytest.raises(ValueError, match="reset_after"):
        ref.gru_forward(np.zeros((B, T, N_IN)), params)
    with pytest.raises(ValueError, match="unknown cell"):
        ref.forward("transformer", np.zeros((B, T, N_IN)), params)
    with pytest.raises(ValueError, match=r"x must be \(B, T, I\)"):
        ref.rnn_forward(np.zeros((T, N_IN)), ref.init_params("rnn", N_IN, H))
