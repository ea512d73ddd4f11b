"""Gradient diagnostics: per-timestep ||dL_T/dh_t||, its decay rate, verdicts, spectral radii.

For a language model and a batch of real windows x, y (B, T), L_T is the cross-entropy of the
prediction at the last step T and h_t the hidden state of one recurrent layer at step t. The
gradient dL_T/dh_t is a product of T - t step Jacobians, so it shrinks or grows geometrically;
`gradient_norms` measures it by unrolling the Keras cells one step at a time under a
GradientTape (any cell, any number of layers), and `reference_gradient_norms` gets the same
numbers from the NumPy BPTT in seqmodels.models.reference (single-layer models), as a cross-check.

The verdict comes from the slope of a least-squares line through ln ||dL_T/dh_t|| against the
distance k = T - t, fitted over k = 1..T-1 (k = 0, the read-out itself, has no recurrence in it).
rate = exp(slope) is the factor the norm changes by per step back:

    vanishing   rate < 0.95   (the norm falls at least 10x every 45 steps, ~170x over 100)
    exploding   rate > 1.05   (it grows at least 10x every 47 steps), or a non-finite norm
    healthy     otherwise

TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.models import reference as ref
from seqmodels.models.config import CELL_NAMES
from seqmodels.plotting import one_at_a_time
from seqmodels.progress import progress_bar

if TYPE_CHECKING:
    from seqmodels.lm.model import LanguageModel

VANISHING_RATE = 0.95  # rate per step below this: vanishing
EXPLODING_RATE = 1.05  # rate per step above this: exploding
DEFAULT_CELLS = ("rnn", "lstm", "gru")  # the order they are compared in
OFFSETS = (0, 1, 2, 5, 10, 20, 50, 100, 200)  # steps back shown in the table (those < T)


@dataclass
class CellDiagnosis:
    """Gradient norms of one recurrent layer and what they say."""

    label: str  # "rnn", "lstm", "gru", or the run and layer
    cell: str  # "rnn" | "lstm" | "gru"
    units: int
    norms: list[float]  # norms[t - 1] = mean over the batch of ||dL_T/dh_t||, t = 1..T
    slope: float  # fitted d ln(norm) per step back
    rate: float  # exp(slope): factor per step back
    verdict: str  # "vanishing" | "exploding" | "healthy"
    spectral_radius: dict[str, float]  # per gate block of the recurrent kernel

    def norm_at(self, k: int) -> float:
        """||dL_T/dh_{T-k}||: the norm k steps before the loss."""
        return self.norms[len(self.norms) - 1 - k]


@dataclass
class Diagnosis:
    """The diagnoses of several cells (or a run) on the same windows."""

    seq_len: int
    batch_size: int
    corpus: str
    seed: int
    cells: list[CellDiagnosis] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite norms become null)."""
        d = asdict(self)
        for c in d["cells"]:
            c["norms"] = [v if math.isfinite(v) else None for v in c["norms"]]
            for key in ("slope", "rate"):
                c[key] = c[key] if math.isfinite(c[key]) else None
        d["thresholds"] = {"vanishing_rate_below": VANISHING_RATE,
                           "exploding_rate_above": EXPLODING_RATE}
        return d


# ----------------------------------------------------------------------------- measuring


def sample_windows(
    ids: np.ndarray, seq_len: int, batch_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """batch_size random windows of real text: x = ids[s:s+T], y = ids[s+1:s+T+1], (B, T) int32."""
    n = len(ids)
    if n < seq_len + 1:
        raise SeqmodelsError(f"the text has {n:,} tokens, too few for one window of length "
                             f"{seq_len}; use a shorter `seq_len` or more text")
    starts = np.random.default_rng(seed).integers(0, n - seq_len, batch_size)
    rows = np.stack([np.asarray(ids[s : s + seq_len + 1], dtype=np.int32) for s in starts])
    return rows[:, :-1], rows[:, 1:]


FLOATS_PER_UNIT_STEP = 36  # what the tape keeps per unit and step (measured: 29-34 floats)


def check_memory(batch_size: int, seq_len: int, vocab_size: int, widths: list[int]) -> None:
    """Refuse a measurement whose taped unrolling would not fit in this machine's memory.

    widths: the embedding size, then the units of each recurrent layer.
    """
    from seqmodels.settings import large_number, require_memory

    per_step = 8 + 4 * widths[0] + 4 * FLOATS_PER_UNIT_STEP * sum(widths[1:])  # ids, floats
    need = batch_size * (seq_len * per_step + 12 * vocab_size)  # + logits and their gradient
    require_memory(need, f"`batch_size` {large_number(batch_size)} windows of `seq_len` "
                         f"{seq_len:,}",
                   "use a smaller `batch_size` or `seq_len` (or fewer `units`)")


def gradient_norms(model: LanguageModel, x: np.ndarray, y: np.ndarray,
                   layer: int = -1) -> np.ndarray:
    """Mean over the batch of ||dL_T/dh_t|| for t = 1..T, (T,), by unrolling the cells."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    layers = model.recurrent_layers
    if not layers:
        raise SeqmodelsError("this model has no recurrent layers to diagnose")
    which = range(len(layers))[layer]
    x = tf.convert_to_tensor(np.asarray(x, np.int32))  # (B, T)
    bsz, steps = x.shape
    with tf.GradientTape() as tape:
        inputs = model.embedding(x)  # (B, T, E)
        states = [[tf.zeros((bsz, rl.units))] * n
                  for rl, n in zip(layers, model.state_counts, strict=True)]
        watched = []  # h_t of the chosen layer, t = 1..T, (B, H) each
        # a long -T takes minutes: a bar on a terminal after 2 s shows that it is not stuck
        for t in progress_bar(range(steps), delay=2, leave=False, unit="step",
                              desc=f"unrolling {steps:,} steps (then the backward pass)"):
            h = inputs[:, t]  # (B, E)
            for i, rl in enumerate(layers):
                h, new = rl.cell(h, states[i], training=False)  # (B, H)
                states[i] = list(new)
                if i == which:
                    watched.append(h)
        logits = model.head(h)  # (B, V) prediction at step T
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.convert_to_tensor(np.asarray(y)[:, -1], tf.int32), logits=logits)
        loss = tf.reduce_sum(ce)  # per-example losses: row b of each gradient is example b's
    grads = tape.gradient(loss, watched)
    norms = [tf.reduce_mean(tf.norm(g, axis=1)) for g in grads]  # mean_b ||dL_T^b/dh_t^b||
    return np.array([float(v) for v in norms], np.float64)


def reference_gradient_norms(model: LanguageModel, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The same (T,) norms from the NumPy BPTT of models.reference (one-layer models only)."""
    layers = model.recurrent_layers
    if len(layers) != 1:
        raise SeqmodelsError("the NumPy reference covers one recurrent layer only")
    cell = model.cells[0]
    table = np.asarray(model.embedding.embeddings, np.float64)  # (V, E)
    w_out, b_out = (np.asarray(w, np.float64) for w in model.head.get_weights())
    inputs = table[np.asarray(x)]  # (B, T, E)
    params = ref.params_from_keras(layers[0])
    hs, _ = ref.forward(cell, inputs, params)  # (B, T, H)
    logits = hs[:, -1] @ w_out + b_out  # (B, V)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(p)), np.asarray(y)[:, -1]] -= 1.0  # dCE/dlogits = softmax - one-hot
    dh_last = p @ w_out.T  # (B, H) dL_T/dh_T
    per_example = ref.hidden_state_gradients(cell, inputs, params, dh_last=dh_last,
                                             per_example=True)  # (B, T)
    return per_example.mean(axis=0)


def fit_decay(norms: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ln(norm) per step back over k = 1..T-1, and rate = exp(slope)."""
    by_distance = np.asarray(norms, np.float64)[::-1]  # k = 0..T-1
    if not np.all(np.isfinite(by_distance)):
        return math.inf, math.inf
    k = np.arange(len(by_distance))[1:]
    values = by_distance[1:]
    if len(values) < 2:
        raise SeqmodelsError("need a sequence length of at least 3 to fit a decay rate")
    positive = values > 0  # a norm that underflowed to 0 after positive ones is vanishing
    if positive.sum() < 2:
        return -math.inf, 0.0
    slope = float(np.polyfit(k[positive], np.log(values[positive]), 1)[0])
    return slope, math.exp(slope)


def verdict(rate: float) -> str:
    """'vanishing' below VANISHING_RATE per step, 'exploding' above EXPLODING_RATE, else healthy."""
    if math.isnan(rate) or rate > EXPLODING_RATE:  # inf and nan count as exploding
        return "exploding"
    return "vanishing" if rate < VANISHING_RATE else "healthy"


def spectral_radii(layer: Any) -> dict[str, float]:
    """Spectral radius of each gate's square block of a recurrent layer's recurrent kernel."""
    from seqmodels.models.builders import cell_name

    cell = cell_name(layer)  # the layer's own class: a bare layer has no model to ask
    kernel = np.asarray(layer.cell.recurrent_kernel, np.float64)  # (H, nH)
    return {g: ref.spectral_radius(block) for g, block in ref.split_gates(cell, kernel).items()}


def diagnose_model(model: LanguageModel, x: np.ndarray, y: np.ndarray, label: str,
                   layer: int = -1, recurrent_scale: float | None = None) -> CellDiagnosis:
    """Measure, fit and judge one recurrent layer of a language model on windows x, y
    (recurrent_scale: that of a fresh model, for the advice if nothing fits)."""
    rl, cell = model.recurrent_layers[layer], model.cells[layer]
    norms = gradient_norms(model, x, y, layer)
    scale = recurrent_scale
    if not np.isfinite(norms).all():
        raise SeqmodelsError(f"{label}: the gradient norms overflow float32 (first at distance "
                             f"{int(np.flatnonzero(~np.isfinite(norms))[0])}), so there is no "
                             f"figure to report; try a shorter `seq_len`" + (
                                 "" if scale is None else " or a smaller `recurrent_scale`"))
    slope, rate = fit_decay(norms)
    if not (math.isfinite(slope) and math.isfinite(rate)):
        advice = ("" if scale is None else " or a larger `recurrent_scale`" if scale <= 1 else
                  f" or a `recurrent_scale` nearer 1 ({scale:g} saturates the cell's "
                  f"activations, which stops the gradients too)")
        raise SeqmodelsError(f"{label}: the gradient norms fall to 0 in float32 within `seq_len` "
                             f"{len(norms)} steps (they vanish beyond measuring); try a shorter "
                             f"`seq_len`{advice}")
    return CellDiagnosis(label, cell, rl.units, norms.tolist(), slope, rate,
                         verdict(rate), spectral_radii(rl))


def parse_cells(text: str) -> list[str]:
    """'rnn,lstm,gru' -> ['rnn', 'lstm', 'gru'], refusing unknown names."""
    cells = [c.strip().lower() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELL_NAMES]
    if unknown or not cells:
        raise SeqmodelsError(f"unknown cell {', '.join(unknown) or repr(text)}: "
                             f"choose from {', '.join(DEFAULT_CELLS)} (comma-separated)")
    if len(set(cells)) != len(cells):
        raise SeqmodelsError(f"`cells` {text!r} names a cell twice")
    return cells


def fresh_model(cell: str, vocab_size: int, units: int, seed: int = 0,
                recurrent_scale: float = 1.0) -> LanguageModel:
    """A freshly initialised 1-layer language model; recurrent_scale multiplies its kernel U.

    Its embedding starts at Keras' uniform(+-0.05), so the inputs are small and the measured
    decay is the recurrence's own (the defaults' N(0, 1) embedding saturates a SimpleRNN's
    tanh at once).
    """
    from seqmodels.backend import import_keras
    from seqmodels.lm.model import LanguageModel
    from seqmodels.models.config import ModelConfig

    import_keras().utils.set_random_seed(seed)
    config = ModelConfig(cell=cell, layers=1, units=units, embedding_init="uniform")
    model = LanguageModel.build(config, vocab_size=vocab_size)
    if recurrent_scale != 1.0:
        u = model.recurrent_layers[0].cell.recurrent_kernel
        scaled = u * recurrent_scale  # in float32, as the measured figures were
        if not np.isfinite(np.asarray(scaled)).all():
            raise SeqmodelsError(f"`recurrent_scale` {recurrent_scale:g} makes the recurrent "
                                 f"kernel overflow float32; choose a smaller scale")
        u.assign(scaled)
    return model


def diagnose(
    cells: list[str] | None = None,
    run: str | Path | None = None,
    data: Any = None,
    units: int = 64,
    seq_len: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    recurrent_scale: float = 1.0,
) -> Diagnosis:
    """Diagnose fresh 1-layer models of `cells` (or a trained run's top layer) on real windows."""
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus

    if seq_len < 3 or batch_size < 1 or units < 1:
        raise SeqmodelsError("seq_len must be at least 3, batch_size and units at least 1")
    if run is not None:
        from seqmodels.lm.model import LanguageModel

        loaded = LanguageModel.load(run)
        data = loaded.data
    data = data or DataConfig()
    prepared = prepare_corpus(data, cache_dir=cache_dir)
    if run is not None:
        widths = [loaded.embedding.output_dim, *loaded.units]
    else:
        from seqmodels.models.config import ModelConfig

        for cell in cells or list(DEFAULT_CELLS):  # the models first: their size is `units`'
            ModelConfig(cell=cell, units=units, layers=1).check_size(len(prepared.vocab),
                                                                     len(prepared.vocab))
        widths = [ModelConfig().embedding_dim, units]
    check_memory(batch_size, seq_len, len(prepared.vocab), widths)
    x, y = sample_windows(prepared.splits.train, seq_len, batch_size, seed)
    corpus = ", ".join(data.corpus) or "kjv"
    result = Diagnosis(seq_len, batch_size, corpus, seed)
    if run is not None:
        if prepared.vocab != loaded.vocabulary:
            raise SeqmodelsError(f"{run}: the run's corpus has changed since training, so its "
                                 f"windows are not the text it learnt; diagnose fresh cells on "
                                 f"the new text with `corpus` PATH (no RUN)")
        n = len(loaded.recurrent_layers)  # what the model is, whatever its settings say
        label = f"{Path(run).name} ({loaded.cells[-1]}, layer {n} of {n})"
        result.cells.append(diagnose_model(loaded, x, y, label))
        return result
    for cell in cells or list(DEFAULT_CELLS):
        model = fresh_model(cell, len(prepared.vocab), units, seed, recurrent_scale)
        result.cells.append(diagnose_model(model, x, y, cell, recurrent_scale=recurrent_scale))
    return result


# ----------------------------------------------------------------------------- reporting


def format_table(diagnosis: Diagnosis) -> str:
    """Norms at a few distances, then one verdict line per cell."""
    t = diagnosis.seq_len
    offsets = [k for k in OFFSETS if k < t] + ([t - 1] if t - 1 not in OFFSETS else [])
    width = max(8, *(len(c.label) for c in diagnosis.cells))
    lines = [f"||dL_T/dh_t|| averaged over {diagnosis.batch_size} windows of T={t} "
             f"({diagnosis.corpus})", "",
             f"{'T - t':>6}  " + "  ".join(f"{c.label:>{width}}" for c in diagnosis.cells)]
    for k in offsets:
        lines.append(f"{k:>6}  " + "  ".join(f"{c.norm_at(k):>{width}.3e}"
                                            for c in diagnosis.cells))
    lines.append("")
    for c in diagnosis.cells:
        radius = " ".join(f"{g} {r:.2f}" for g, r in c.spectral_radius.items())
        lines.append(f"{c.label:<{width}}  {c.verdict:<9}  x{c.rate:.3f} per step "
                     f"(slope {c.slope:+.4f})  spectral radius {radius}")
    lines.append(f"(vanishing: rate < {VANISHING_RATE}; exploding: rate > {EXPLODING_RATE}; "
                 f"fitted over T - t = 1..{t - 1})")
    verdicts = {c.verdict for c in diagnosis.cells}
    lines.extend(ADVICE[v] for v in ("vanishing", "exploding") if v in verdicts)
    return "\n".join(lines)


ADVICE = {  # what to try, by verdict, in the train command's options
    "vanishing": ("What to try when gradients vanish: a gated cell (train --cell lstm or gru) "
                  "keeps them over long spans where SimpleRNN loses them; with a gated cell "
                  "already, shorter windows (-T) train on what the gradient reaches, and "
                  "--stateful carries the state from window to window."),
    "exploding": ("What to try when gradients explode: clip them (train --clipnorm 1, the "
                  "default; never --no-clip here), lower --lr, or use a gated cell (--cell lstm "
                  "or gru)."),
}


@one_at_a_time
def plot_gradient_norms(diagnosis: Diagnosis, path: str | Path) -> Path:
    """Write a log-scale PNG of ||dL_T/dh_t|| against T - t, one line per cell."""
    from matplotlib.figure import Figure  # not pyplot: no global state, so threads may plot

    from seqmodels.files import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for c in diagnosis.cells:
        norms = np.asarray(c.norms, np.float64)[::-1]  # k = 0..T-1
        shown = np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)
        ax.plot(np.arange(len(norms)), shown,
                label=f"{c.label}: {c.verdict}, x{c.rate:.3f}/step")
    ax.set_yscale("log")
    ax.set_xlabel("steps back from the loss, T - t")
    ax.set_ylabel("||dL_T / dh_t|| (mean over the batch)")
    ax.set_title(f"Gradient reaching the hidden state, T = {diagnosis.seq_len}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    return path


def top_recurrent_layer(model: LanguageModel) -> Any:
    """The model's last recurrent layer."""
    return model.recurrent_layers[-1]
