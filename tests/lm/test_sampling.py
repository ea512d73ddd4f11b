"""Sampling maths on fake logits (no model): greedy, temperature, top-k, top-p, seeds, tracing."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqmodels.backend import import_tf
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.sampling import TOP_P_TOLERANCE, filter_logits, sample_next, validate_sampling

tf = import_tf()

# chi-square critical values at p = 0.001, by degrees of freedom (standard tables)
CHI2_CRIT_001 = {3: 16.266, 7: 24.322}
HUGE = float(np.float32(1e30))


def _seed(a: int, b: int = 0) -> tf.Tensor:
    """Return a shape-[2] int32 seed tensor."""
    return tf.constant([a, b], tf.int32)


def _kept(filtered: tf.Tensor) -> np.ndarray:
    """Return the boolean mask of entries that filtering kept (finite)."""
    return np.isfinite(filtered.numpy())


def _softmax(x: np.ndarray) -> np.ndarray:
    """Return softmax along the last axis in float64."""
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def test_zero_temperature_is_argmax():
    logits = np.random.default_rng(0).normal(size=(64, 50)).astype(np.float32)
    ids = sample_next(logits, 0.0, seed=_seed(1))
    assert ids.dtype == tf.int32 and ids.shape == (64,)
    np.testing.assert_array_equal(ids.numpy(), logits.argmax(axis=-1))
    np.testing.assert_array_equal(sample_next(logits, 0, top_k=5, top_p=0.5), logits.argmax(-1))


def test_tiny_temperature_is_argmax():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(256, 40)).astype(np.float32)
    logits[np.arange(256), logits.argmax(-1)] += 0.01  # top gap >= 0.01, i.e. >= 100 at T=1e-4
    for s in range(3):
        ids = sample_next(logits, 1e-4, seed=_seed(s))
        np.testing.assert_array_equal(ids.numpy(), logits.argmax(axis=-1))


def test_top_k_never_outside_k_largest():
    logits = np.random.default_rng(2).normal(size=(4000, 20)).astype(np.float32)
    kth = np.sort(logits, axis=-1)[:, -3]
    ids = sample_next(logits, 2.0, top_k=3, seed=_seed(3)).numpy()
    assert (logits[np.arange(4000), ids] >= kth).all()
    assert len(np.unique(ids)) > 3  # the draws really are spread, not argmax


@settings(max_examples=40, deadline=None)
@given(
    logits=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 30)),
        # no subnormals: TensorFlow flushes them to zero on the CPU ([1.4e-40, 0.0] ties there)
        elements=st.floats(-HUGE, HUGE, width=32, allow_subnormal=False),
    ),
    k=st.integers(1, 35),
    temperature=st.sampled_from([1e-3, 1.0, 5.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_top_k_membership_property(logits, k, temperature, seed):
    batch, vocab = logits.shape
    many = np.repeat(logits, 50, axis=0)  # 50 draws per row
    ids = sample_next(many, temperature, top_k=k, seed=_seed(seed)).numpy()
    kth = np.sort(many, axis=-1)[:, -min(k, vocab)]
    assert ((ids >= 0) & (ids < vocab)).all()
    assert (many[np.arange(len(many)), ids] >= kth).all()


@pytest.mark.parametrize("p, n_kept", [(0.3, 1), (0.5, 1), (0.7, 2), (0.8, 2), (0.81, 3),
                                       (0.95, 3), (0.96, 4), (1.0, 4)])
def test_top_p_keeps_smallest_set_reaching_p(p, n_kept):
    probs = np.array([0.15, 0.5, 0.05, 0.3])  # ranked: 1 (0.5), 3 (0.3), 0 (0.15), 2 (0.05)
    logits = np.log(probs)[None].astype(np.float32)
    kept = _kept(filter_logits(logits, top_p=p))[0]
    expected = np.zeros(4, bool)
    expected[[1, 3, 0, 2][:n_kept]] = True
    np.testing.assert_array_equal(kept, expected)
    ids = sample_next(np.repeat(logits, 2000, 0), 1.0, top_p=p, seed=_seed(4)).numpy()
    assert set(np.unique(ids)) == set(np.flatnonzero(expected))


@settings(max_examples=40, deadline=None)
@given(
    # no subnormals: TensorFlow flushes them to zero on the CPU, so 1e-40 would tie with 0.0 and
    # ties at the threshold are kept together (documented), which is not what this checks
    values=st.lists(st.floats(-20, 20, width=32, allow_subnormal=False), min_size=1, max_size=40,
                    unique=True),
    p=st.floats(0.01, 1.0),
)
def test_top_p_set_is_minimal_property(values, p):
    logits = np.array([values], np.float32)
    kept = _kept(filter_logits(logits, top_p=p))[0]
    probs = _softmax(logits.astype(np.float64))[0]
    # ranked by logit: two that differ by a float32 step (0 and 1.2e-38) tie in probability
    ranked = np.argsort(-logits[0], kind="stable")
    n = int(kept.sum())
    assert kept[ranked[:n]].all()  # a prefix of the ranking
    assert probs[ranked[:n]].sum() >= p - TOP_P_TOLERANCE - 1e-5  # reaches p
    assert probs[ranked[: n - 1]].sum() < p + 1e-5  # one fewer would not


@pytest.mark.parametrize("temperature, top_k", [(0.5, None), (1.0, None), (2.0, None), (1.0, 4)])
def test_frequencies_match_softmax(temperature, top_k):
    logits = np.array([1.2, 0.9, 0.5, 0.3, 0.0, -0.4, -0.8, -1.0], np.float32)
    n = 20_000
    ids = sample_next(np.tile(logits, (n, 1)), temperature, top_k=top_k, seed=_seed(5, 7))
    counts = np.bincount(ids.numpy(), minlength=8)
    k = top_k or 8
    expected = n * _softmax(logits[:k].astype(np.float64) / temperature)  # logits are sorted
    assert counts[k:].sum() == 0
    assert expected.min() >= 5  # the chi-square approximation holds
    chi2 = float(((counts[:k] - expected) ** 2 / expected).sum())
    assert chi2 < CHI2_CRIT_001[k - 1], (chi2, counts, expected.round())


def test_same_seed_same_samples_different_seed_different():
    logits = np.zeros((500, 10), np.float32)
    a = sample_next(logits, 1.0, top_p=0.9, seed=_seed(11, 3)).numpy()
    b = sample_next(logits, 1.0, top_p=0.9, seed=_seed(11, 3)).numpy()
    c = sample_next(logits, 1.0, top_p=0.9, seed=_seed(12, 3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5
    d, e = (sample_next(logits, 1.0, seed=42).numpy() for _ in range(2))  # a Python int seed
    np.testing.assert_array_equal(d, e)


@pytest.mark.parametrize("temperature", [1e-4, 1.0, 100.0])
@pytest.mark.parametrize("top_k, top_p", [(None, None), (1, None), (2, 1e-3), (None, 0.01),
                                          (50, 0.999)])
def test_extreme_logits_give_no_nan(temperature, top_k, top_p):
    big = np.float32(3e38)
    logits = np.array(
        [
            [1e30, -1e30, 0.0, 5.0, -1e30, 1.0],  # one dominant token
            [-1e30, -1e30, -1e30, -1e30, -1e30, -1e30],  # all tiny but equal
            [1e30, 1e30, -1e30, 0.0, 0.0, 0.0],  # two tied dominant tokens
            [big, -big, 0.0, -big, 1.0, 2.0],  # near float32 max: x - max overflows to -inf
        ],
        np.float32,
    )
    many = np.repeat(logits, 200, axis=0)
    ids = sample_next(many, temperature, top_k=top_k, top_p=top_p, seed=_seed(6)).numpy()
    rows = ids.reshape(4, 200)
    assert ((ids >= 0) & (ids < 6)).all()
    assert (rows[0] == 0).all() and (rows[3] == 0).all()
    assert set(np.unique(rows[2])) <= {0, 1}
    filtered = filter_logits(many, top_k=top_k, top_p=top_p)
    assert not np.isnan(filtered.numpy()).any()
    assert _kept(filtered).any(axis=-1).all()  # every row keeps a token
    assert np.isfinite(tf.nn.softmax(filtered).numpy()).all()
    assert not np.isnan(tf.nn.log_softmax(filtered).numpy()).any()


def test_works_in_tf_function_generation_loop():
    logits = tf.constant(np.random.default_rng(7).normal(size=(8, 30)), tf.float32)
    steps = 5

    @tf.function
    def generate(logits, temperature, seed):
        out = tf.TensorArray(tf.int32, size=steps)

        def body(i, out):
            step_seed = tf.random.experimental.stateless_fold_in(seed, i)
            return i + 1, out.write(i, sample_next(logits, temperature, 5, 0.9, step_seed))

        _, out = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), out))
        return out.stack()  # (steps, B)

    seed = _seed(9, 1)
    traced = generate(logits, tf.constant(1.0), seed).numpy()
    eager = [sample_next(logits, 1.0, 5, 0.9, tf.random.experimental.stateless_fold_in(seed, i))
             for i in range(steps)]
    np.testing.assert_array_equal(traced, np.stack(eager))
    greedy = generate(logits, tf.constant(0.0), seed).numpy()  # tensor temperature 0 -> argmax
    np.testing.assert_array_equal(greedy, np.tile(logits.numpy().argmax(-1), (steps, 1)))


def test_compiles_with_xla():
    logits = tf.constant(np.random.default_rng(8).normal(size=(16, 30)), tf.float32)
    step = tf.function(lambda x, s: sample_next(x, 0.7, top_k=3, top_p=0.9, seed=s),
                       jit_compile=True)
    ids = step(logits, _seed(1)).numpy()
    kth = np.sort(logits.numpy(), axis=-1)[:, -3]
    assert (logits.numpy()[np.arange(16), ids] >= kth).all()


@pytest.mark.parametrize(
    "temperature, top_k, top_p",
    [(-0.1, None, None), (math.nan, None, None), (math.inf, None, None), ("1", None, None),
     (1.0, 0, None), (1.0, -3, None), (1.0, 2.5, None), (1.0, None, 0.0), (1.0, None, -0.5),
     (1.0, None, 1.01), (1.0, None, math.nan)],
)
def test_validate_sampling_rejects_bad_values(temperature, top_k, top_p):
    with pytest.raises(SeqmodelsError, match="temperature|top_k|top_p"):
        validate_sampling(temperature, top_k, top_p)
    with pytest.raises(SeqmodelsError):
        sample_next(np.zeros((1, 4), np.float32), temperature, top_k, top_p, seed=0)


def test_validate_sampling_accepts_good_values():
    for args in [(0.0, None, None), (0, 1, 1.0), (2.5, 40, 0.9), (np.float32(0.7), np.int64(3),
                                                                  1e-9)]:
        validate_sampling(*args)
