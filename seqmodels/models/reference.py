"""NumPy reference for SimpleRNN, LSTM and GRU: forward pass, backprop through time, gradient norms.

Read it next to the equations. Weights use Keras' exact names and layouts, so they copy to and from
keras.layers.SimpleRNN / LSTM / GRU (GRU with reset_after=True, Keras' default). Sizes: B batch,
T time steps, I input features, H units; x is (B, T, I) and every state is (B, H).

SimpleRNN   kernel W (I, H), recurrent_kernel U (H, H), bias b (H,)
    a_t = x_t W + h_{t-1} U + b
    h_t = tanh(a_t)

LSTM        kernel W (I, 4H), recurrent_kernel U (H, 4H), bias b (4H,); gate order i, f, c, o
    [a_i, a_f, a_g, a_o] = x_t W + h_{t-1} U + b
    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

GRU         kernel W (I, 3H), recurrent_kernel U (H, 3H), bias (2, 3H) = [b_in, b_rec]; z, r, h
    [x_z, x_r, x_h] = x_t W + b_in          [u_z, u_r, u_h] = h_{t-1} U + b_rec
    z = sigmoid(x_z + u_z)   r = sigmoid(x_r + u_r)
    hh = tanh(x_h + r * u_h)                (the reset gate multiplies *after* the matmul)
    h_t = z * h_{t-1} + (1 - z) * hh

Two things the popular tutorial versions get wrong, done carefully here:
- the tanh derivative is 1 - tanh(a)^2, i.e. 1 - h_t^2 from the stored output; not 1 - a^2 and
  not 1 - tanh(h_t)^2 (and for the LSTM it is 1 - tanh(c_t)^2, taken at c_t, not at h_t);
- the gradient reaching h_t is the loss's own term at step t PLUS the recurrent term carried back
  from step t+1 (da_{t+1} U^T); that sum, not either part alone, is what flows further back.

Gradients come back in a dict keyed like the parameters ("kernel", "recurrent_kernel", "bias"),
plus "x" (B, T, I), the initial state(s) "h0" (and "c0"), and "h" (B, T, H) = dL/dh_t through every
path (and "c" for the LSTM). NumPy only: importing this module does not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]  # "kernel", "recurrent_kernel", "bias" in Keras' layout
Cache = dict[str, Any]  # what backward needs from forward
Grads = dict[str, np.ndarray]  # dL/d(name) for every parameter, "x", initial state(s), "h" ("c")

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")  # the order of layer.get_weights()
GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}  # Keras' order
STATES = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}  # Keras' initial_state list
CELLS = tuple(GATES)


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-a)), without overflow for large |a|."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ----------------------------------------------------------------------------- parameters


def init_params(
    cell: str, input_size: int, units: int, seed: int = 0, dtype: Any = np.float64
) -> Params:
    """Random Keras-layout parameters: N(0, 1/fan_in) weights and N(0, 0.1^2) biases."""
    n = len(_gates(cell)) * units
    rng = np.random.default_rng(seed)
    bias_shape = (2, n) if cell == "gru" else (n,)
    return {
        "kernel": rng.normal(0.0, input_size**-0.5, (input_size, n)).astype(dtype),  # (I, nH)
        "recurrent_kernel": rng.normal(0.0, units**-0.5, (units, n)).astype(dtype),  # (H, nH)
        "bias": rng.normal(0.0, 0.1, bias_shape).astype(dtype),  # (nH,) or GRU (2, 3H)
    }


def params_from_keras(layer: Any, dtype: Any = np.float64) -> Params:
    """Copy a built SimpleRNN/LSTM/GRU layer's (or cell's) weights into a params dict."""
    weights = layer.get_weights()
    if len(weights) != 3:
        raise ValueError("expected kernel, recurrent_kernel and bias: build with use_bias=True")
    return {name: np.asarray(w, dtype) for name, w in zip(WEIGHT_NAMES, weights)}


def params_to_keras(params: Params, layer: Any) -> None:
    """Load params into a built SimpleRNN/LSTM/GRU layer (or cell), cast to its weights' dtype."""
    current = layer.get_weights()
    layer.set_weights([np.asarray(params[n], w.dtype) for n, w in zip(WEIGHT_NAMES, current)])


def split_gates(cell: str, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Cut the last axis of a kernel, recurrent kernel or bias into its per-gate blocks."""
    names = _gates(cell)
    return dict(zip(names, np.split(np.asarray(matrix), len(names), axis=-1)))


def spectral_radius(matrix: np.ndarray) -> float:
    """Largest |eigenvalue| of a square matrix (for LSTM/GRU, of one gate's block of U)."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"need a square matrix, not {m.shape}: try split_gates(cell, U)[gate]")
    return float(np.max(np.abs(np.linalg.eigvals(m)))) if m.size else 0.0


# ----------------------------------------------------------------------------- checks


def _gates(cell: str) -> tuple[str, ...]:
    """The cell's gate names; ValueError for an unknown cell."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
    return GATES[cell]


def _prepare(cell: str, x: np.ndarray, params: Params) -> tuple[np.ndarray, Params]:
    """Check shapes against Keras' layout; return x and params in one common dtype."""
    n = len(_gates(cell))
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must be (B, T, I), not {x.shape}")
    w, u, b = (np.asarray(params[name]) for name in WEIGHT_NAMES)
    units = u.shape[0]
    want = {
        "kernel": (x.shape[2], n * units),
        "recurrent_kernel": (units, n * units),
        "bias": (2, 3 * units) if cell == "gru" else (n * units,),
    }
    for name, arr in zip(WEIGHT_NAMES, (w, u, b)):
        if arr.shape != want[name]:
            hint = " (only reset_after=True GRUs are covered)" if cell == "gru" else ""
            raise ValueError(f"{cell} {name} must be {want[name]}, not {arr.shape}{hint}")
    dtype = np.result_type(x, w, u, b)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)
    cast = {name: arr.astype(dtype, copy=False) for name, arr in zip(WEIGHT_NAMES, (w, u, b))}
    return x.astype(dtype, copy=False), cast


def _state(value: np.ndarray | None, shape: tuple[int, int], dtype: Any, name: str) -> np.ndarray:
    """A state or state gradient as an array of `shape`; zeros when None."""
    if value is None:
        return np.zeros(shape, dtype)
    value = np.asarray(value, dtype)
    if value.shape != shape:
        raise ValueError(f"{name} must be {shape}, not {value.shape}")
    return value


# ----------------------------------------------------------------------------- SimpleRNN


def rnn_forward(
    x: np.ndarray, params: Params, h0: np.ndarray | None = None
) -> tuple[np.ndarray, Cache]:
    """SimpleRNN over x (B, T, I) from h0 (B, H) (zeros if None); return h (B, T, H) and a cache."""
    x, p = _prepare("rnn", x, params)
    w, u, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    (bsz, steps, _), units = x.shape, u.shape[0]
    h = _state(h0, (bsz, units), x.dtype, "h0")  # (B, H)
    cache = {"cell": "rnn", "x": x, "params": p, "h0": h}
    xw = x @ w + b  # (B, T, H) input part of a_t for every step at once
    hs = np.empty((bsz, steps, units), x.dtype)  # (B, T, H)
    for t in range(steps):
        a = xw[:, t] + h @ u  # (B, H)  a_t = x_t W + h_{t-1} U + b
        h = np.tanh(a)  # (B, H)  h_t = tanh(a_t)
        hs[:, t] = h
    cache["h"] = hs
    return hs, cache


def rnn_backward(dh: np.ndarray | None, cache: Cache, dh_final: np.ndarray | None = None) -> Grads:
    """BPTT for SimpleRNN: dh = dL/dh_t from the loss (B, T, H); dh_final = extra dL/dh_T (B, H)."""
    x, p, hs, h0 = cache["x"], cache["params"], cache["h"], cache["h0"]
    w, u = p["kernel"], p["recurrent_kernel"]
    bsz, steps, units = hs.shape
    dh = np.zeros_like(hs) if dh is None else np.asarray(dh, hs.dtype)  # (B, T, H)
    dw, du, db = np.zeros_like(w), np.zeros_like(u), np.zeros_like(p["bias"])
    dx, dh_total = np.empty_like(x), np.empty_like(hs)  # (B, T, I), (B, T, H)
    dh_next = _state(dh_final, (bsz, units), hs.dtype, "dh_final")  # (B, H) from step t+1
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t > 0 else h0  # (B, H)
        g = dh[:, t] + dh_next  # (B, H)  dL/dh_t = loss term at t + recurrent term from t+1
        dh_total[:, t] = g
        da = g * (1.0 - hs[:, t] ** 2)  # (B, H)  h_t = tanh(a_t): dh_t/da_t = 1 - h_t^2
        dw += x[:, t].T @ da  # (I, H)  a_t = x_t W + h_{t-1} U + b
        du += h_prev.T @ da  # (H, H)
        db += da.sum(axis=0)  # (H,)
        dx[:, t] = da @ w.T  # (B, I)
        dh_next = da @ u.T  # (B, H)  the recurrent term: dL/dh_{t-1} through a_t
    return {"kernel": dw, "recurrent_kernel": du, "bias": db, "x": dx, "h0": dh_next, "h": dh_total}


# ----------------------------------------------------------------------------- LSTM


def lstm_forward(
    x: np.ndarray, params: Params, h0: np.ndarray | None = None, c0: np.ndarray | None = None
) -> tuple[np.ndarray, Cache]:
    """LSTM over x (B, T, I) from (h0, c0) (B, H) each; return h (B, T, H) and a cache."""
    x, p = _prepare("lstm", x, params)
    w, u, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    (bsz, steps, _), units = x.shape, u.shape[0]
    h = _state(h0, (bsz, units), x.dtype, "h0")  # (B, H)
    c = _state(c0, (bsz, units), x.dtype, "c0")  # (B, H)
    cache = {"cell": "lstm", "x": x, "params": p, "h0": h, "c0": c}
    xw = x @ w + b  # (B, T, 4H) input part of every gate's pre-activation, all steps at once
    hs = np.empty((bsz, steps, units), x.dtype)  # (B, T, H)
    cs, tanh_cs = np.empty_like(hs), np.empty_like(hs)  # (B, T, H) c_t and tanh(c_t)
    gates = np.empty((bsz, steps, 4 * units), x.dtype)  # (B, T, 4H) i, f, g, o after activation
    for t in range(steps):
        a_i, a_f, a_g, a_o = np.split(xw[:, t] + h @ u, 4, axis=1)  # (B, H) each
        i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)  # input, forget, output gates
        g = np.tanh(a_g)  # candidate cell ("c" in Keras' gate order)
        c = f * c + i * g  # c_t = f * c_{t-1} + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c  # h_t = o * tanh(c_t)
        gates[:, t] = np.concatenate([i, f, g, o], axis=1)
        hs[:, t], cs[:, t], tanh_cs[:, t] = h, c, tanh_c
    cache.update(h=hs, c=cs, tanh_c=tanh_cs, gates=gates)
    return hs, cache


def lstm_backward(
    dh: np.ndarray | None,
    cache: Cache,
    dh_final: np.ndarray | None = None,
    dc_final: np.ndarray | None = None,
) -> Grads:
    """BPTT for LSTM: dh = dL/dh_t (B, T, H); dh_final, dc_final = extra dL/dh_T, dL/dc_T (B, H)."""
    x, p, hs, cs = cache["x"], cache["params"], cache["h"], cache["c"]
    w, u = p["kernel"], p["recurrent_kernel"]
    bsz, steps, units = hs.shape
    dh = np.zeros_like(hs) if dh is None else np.asarray(dh, hs.dtype)  # (B, T, H)
    dw, du, db = np.zeros_like(w), np.zeros_like(u), np.zeros_like(p["bias"])
    dx, dh_total, dc_total = np.empty_like(x), np.empty_like(hs), np.empty_like(hs)
    dh_next = _state(dh_final, (bsz, units), hs.dtype, "dh_final")  # (B, H) from step t+1
    dc_next = _state(dc_final, (bsz, units), hs.dtype, "dc_final")  # (B, H) from step t+1
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t > 0 else cache["h0"]  # (B, H)
        c_prev = cs[:, t - 1] if t > 0 else cache["c0"]  # (B, H)
        i, f, g, o = np.split(cache["gates"][:, t], 4, axis=1)  # (B, H) each
        tanh_c = cache["tanh_c"][:, t]
        dh_t = dh[:, t] + dh_next  # dL/dh_t = loss term at t + recurrent term from t+1
        do = dh_t * tanh_c  # h_t = o * tanh(c_t)
        dc = dc_next + dh_t * o * (1.0 - tanh_c**2)  # c_t feeds c_{t+1} and h_t; tanh' at c_t
        dh_total[:, t], dc_total[:, t] = dh_t, dc
        di, dg, df = dc * g, dc * i, dc * c_prev  # c_t = f * c_{t-1} + i * g
        dc_next = dc * f  # dL/dc_{t-1} through c_t
        da = np.concatenate(  # (B, 4H) through the activations: sigmoid' = s(1-s), tanh' = 1-g^2
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)],
            axis=1,
        )
        dw += x[:, t].T @ da  # (I, 4H)  a_t = x_t W + h_{t-1} U + b
        du += h_prev.T @ da  # (H, 4H)
        db += da.sum(axis=0)  # (4H,)
        dx[:, t] = da @ w.T  # (B, I)
        dh_next = da @ u.T  # (B, H)  the recurrent term: dL/dh_{t-1} through all four gates
    return {
        "kernel": dw, "recurrent_kernel": du, "bias": db, "x": dx,
        "h0": dh_next, "c0": dc_next, "h": dh_total, "c": dc_total,
    }  # fmt: skip


# ----------------------------------------------------------------------------- GRU


def gru_forward(
    x: np.ndarray, params: Params, h0: np.ndarray | None = None
) -> tuple[np.ndarray, Cache]:
    """GRU (reset_after=True) over x (B, T, I) from h0 (B, H); return h (B, T, H) and a cache."""
    x, p = _prepare("gru", x, params)
    w, u = p["kernel"], p["recurrent_kernel"]
    b_in, b_rec = p["bias"]  # (3H,) each: input bias, recurrent bias
    (bsz, steps, _), units = x.shape, u.shape[0]
    h = _state(h0, (bsz, units), x.dtype, "h0")  # (B, H)
    cache = {"cell": "gru", "x": x, "params": p, "h0": h}
    xw = x @ w + b_in  # (B, T, 3H) [x_z, x_r, x_h] for every step at once
    hs = np.empty((bsz, steps, units), x.dtype)  # (B, T, H)
    gates = np.empty((bsz, steps, 3 * units), x.dtype)  # (B, T, 3H) z, r, hh after activation
    u_hs = np.empty_like(hs)  # (B, T, H) u_h = h_{t-1} U_h + b_rec_h, before the reset gate
    for t in range(steps):
        x_z, x_r, x_h = np.split(xw[:, t], 3, axis=1)  # (B, H) each
        u_z, u_r, u_h = np.split(h @ u + b_rec, 3, axis=1)  # (B, H) each
        z = sigmoid(x_z + u_z)  # update gate
        r = sigmoid(x_r + u_r)  # reset gate
        hh = np.tanh(x_h + r * u_h)  # candidate: reset applied after the matmul
        h = z * h + (1.0 - z) * hh  # h_t = z * h_{t-1} + (1 - z) * hh
        gates[:, t] = np.concatenate([z, r, hh], axis=1)
        hs[:, t], u_hs[:, t] = h, u_h
    cache.update(h=hs, gates=gates, u_h=u_hs)
    return hs, cache


def gru_backward(dh: np.ndarray | None, cache: Cache, dh_final: np.ndarray | None = None) -> Grads:
    """BPTT for GRU: dh = dL/dh_t from the loss (B, T, H); dh_final = extra dL/dh_T (B, H)."""
    x, p, hs = cache["x"], cache["params"], cache["h"]
    w, u = p["kernel"], p["recurrent_kernel"]
    bsz, steps, units = hs.shape
    dh = np.zeros_like(hs) if dh is None else np.asarray(dh, hs.dtype)  # (B, T, H)
    dw, du, db = np.zeros_like(w), np.zeros_like(u), np.zeros_like(p["bias"])  # db (2, 3H)
    dx, dh_total = np.empty_like(x), np.empty_like(hs)
    dh_next = _state(dh_final, (bsz, units), hs.dtype, "dh_final")  # (B, H) from step t+1
    for t in reversed(range(steps)):
        h_prev = hs[:, t - 1] if t > 0 else cache["h0"]  # (B, H)
        z, r, hh = np.split(cache["gates"][:, t], 3, axis=1)  # (B, H) each
        u_h = cache["u_h"][:, t]  # (B, H)
        g = dh[:, t] + dh_next  # dL/dh_t = loss term at t + recurrent term from t+1
        dh_total[:, t] = g
        dz = g * (h_prev - hh)  # h_t = z * h_{t-1} + (1 - z) * hh
        dhh = g * (1.0 - z)
        da_h = dhh * (1.0 - hh**2)  # hh = tanh(x_h + r * u_h): tanh' = 1 - hh^2
        dr = da_h * u_h
        du_h = da_h * r
        da_z = dz * z * (1.0 - z)  # z = sigmoid(x_z + u_z)
        da_r = dr * r * (1.0 - r)  # r = sigmoid(x_r + u_r)
        dxw = np.concatenate([da_z, da_r, da_h], axis=1)  # (B, 3H) into x_t W + b_in
        dhu = np.concatenate([da_z, da_r, du_h], axis=1)  # (B, 3H) into h_{t-1} U + b_rec
        dw += x[:, t].T @ dxw  # (I, 3H)
        du += h_prev.T @ dhu  # (H, 3H)
        db[0] += dxw.sum(axis=0)  # input bias
        db[1] += dhu.sum(axis=0)  # recurrent bias
        dx[:, t] = dxw @ w.T  # (B, I)
        dh_next = g * z + dhu @ u.T  # h_{t-1} enters directly (z * h_{t-1}) and through U
    return {"kernel": dw, "recurrent_kernel": du, "bias": db, "x": dx, "h0": dh_next, "h": dh_total}


# ----------------------------------------------------------------------------- any cell

_FORWARD = {"rnn": rnn_forward, "lstm": lstm_forward, "gru": gru_forward}
_BACKWARD = {"rnn": rnn_backward, "lstm": lstm_backward, "gru": gru_backward}


def forward(
    cell: str, x: np.ndarray, params: Params, state: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, Cache]:
    """Run `cell` ("rnn" | "lstm" | "gru") from state [h0] or [h0, c0] (Keras' initial_state)."""
    _gates(cell)
    return _FORWARD[cell](x, params, *(state or ()))


def backward(
    dh: np.ndarray | None, cache: Cache, dstate: Sequence[np.ndarray | None] | None = None
) -> Grads:
    """BPTT for whichever cell made `cache`; dstate = extra gradients for [h_T] or [h_T, c_T]."""
    return _BACKWARD[cache["cell"]](dh, cache, *(dstate or ()))


def final_state(cache: Cache) -> list[np.ndarray]:
    """The last state, as Keras' return_state gives it: [h_T] or, for the LSTM, [h_T, c_T]."""
    return [cache[name][:, -1] for name in STATES[cache["cell"]]]


def last_step_gradients(
    cell: str,
    x: np.ndarray,
    params: Params,
    state: Sequence[np.ndarray] | None = None,
    dh_last: np.ndarray | None = None,
) -> np.ndarray:
    """dL_T/dh_t (B, T, H) for t = 1..T, L_T a loss on h_T alone with dL_T/dh_T = dh_last."""
    hs, cache = forward(cell, x, params, state)
    seed = np.ones_like(hs[:, -1]) if dh_last is None else dh_last  # default L_T = sum(h_T)
    return backward(None, cache, [seed])["h"]  # the same BPTT recursion, loss only at step T


def hidden_state_gradients(
    cell: str,
    x: np.ndarray,
    params: Params,
    state: Sequence[np.ndarray] | None = None,
    dh_last: np.ndarray | None = None,
    per_example: bool = False,
) -> np.ndarray:
    """||dL_T/dh_t|| for t = 1..T: (T,) over the batch, or (B, T); small early t = vanishing."""
    g = last_step_gradients(cell, x, params, state, dh_last)  # (B, T, H)
    if per_example:
        return np.sqrt((g**2).sum(axis=2))  # (B, T)
    return np.sqrt((g**2).sum(axis=(0, 2)))  # (T,)
