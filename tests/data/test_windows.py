"""Contiguous splits, aligned (x, y) windows, seeded shuffling, and the stateful stream layout."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodels.data.windows import (
    num_windows,
    split_ids,
    stream_dataset,
    stream_layout,
    window_dataset,
)
from seqmodels.errors import SeqmodelsError


def collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_splits_are_contiguous_views():
    ids = np.arange(1000, dtype=np.int32)
    s = split_ids(ids)
    assert s.sizes() == {"train": 900, "val": 50, "test": 50}
    assert np.array_equal(np.concatenate([s.train, s.val, s.test]), ids)
    assert s.train.base is ids and s.test.base is ids
    s = split_ids(ids, (0.8, 0.2, 0.0))
    assert s.sizes() == {"train": 800, "val": 200, "test": 0}


@pytest.mark.parametrize(
    "fractions", [(0.9, 0.1), (0.5, 0.2, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]
)
def test_bad_fractions(fractions):
    with pytest.raises(SeqmodelsError):
        split_ids(np.arange(10), fractions)


def test_num_windows():
    assert num_windows(101, 100) == 1
    assert num_windows(100, 100) == 0
    assert num_windows(1000, 10, 3) == 330  # starts 0, 3, ..., 987 (987 + 11 <= 1000)
    assert num_windows(11, 10, 1) == 1


@given(
    n=st.integers(2, 400),
    seq_len=st.integers(1, 40),
    stride=st.integers(1, 50),
    batch=st.integers(1, 9),
    shuffle=st.booleans(),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_window_is_aligned_and_present_once(n, seq_len, stride, batch, shuffle):
    ids = np.arange(n, dtype=np.uint16)  # value == position, so a window names its own start
    count = num_windows(n, seq_len, stride)
    if count == 0:
        with pytest.raises(SeqmodelsError, match="too few for one window"):
            window_dataset(ids, seq_len, batch, stride)
        return
    x, y = collect(window_dataset(ids, seq_len, batch, stride, shuffle=shuffle, seed=n))
    assert x.shape == y.shape == (count, seq_len) and x.dtype == y.dtype == np.int32
    assert sorted(x[:, 0].tolist()) == [k * stride for k in range(count)]
    offsets = np.arange(seq_len)
    assert np.array_equal(x, x[:, :1] + offsets)  # x = ids[s : s + T]
    assert np.array_equal(y, x + 1)  # y = ids[s + 1 : s + T + 1]
    assert x[:, 0].max() + seq_len + 1 <= n


def test_shuffle_is_a_permutation_fixed_by_seed_and_epoch():
    ids = np.arange(5000, dtype=np.int32)
    def starts(**kw):
        x, _ = collect(window_dataset(ids, 10, 16, stride=7, **kw))
        return x[:, 0].tolist()
    plain = starts()
    assert plain == list(range(0, 7 * len(plain), 7))
    a = starts(shuffle=True, seed=3, epoch=0)
    assert sorted(a) == plain and a != plain
    assert starts(shuffle=True, seed=3, epoch=0) == a
    assert starts(shuffle=True, seed=3, epoch=1) != a
    assert starts(shuffle=True, seed=4, epoch=0) != a


def test_drop_remainder_and_skip_resume():
    ids = np.arange(1000, dtype=np.int32)
    ds = window_dataset(ids, 9, 8, shuffle=True, seed=1, drop_remainder=True)
    batches = [x.numpy() for x, _ in ds]
    assert all(b.shape == (8, 9) for b in batches) and len(batches) == num_windows(1000, 9) // 8
    resumed = [x.numpy() for x, _ in window_dataset(ids, 9, 8, shuffle=True, seed=1,
                                                    drop_remainder=True).skip(3)]
    assert all(np.array_equal(a, b) for a, b in zip(batches[3:], resumed))


def test_memory_mapped_path_equals_in_memory_path(tmp_path):
    path = tmp_path / "ids.npy"
    np.save(path, np.random.default_rng(0).integers(0, 60000, 3000).astype(np.uint16))
    ids = np.load(path, mmap_mode="r")
    kw = dict(seq_len=20, batch_size=7, stride=5, shuffle=True, seed=2)
    a = collect(window_dataset(ids, **kw))
    b = collect(window_dataset(ids, in_memory_limit=0, **kw))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_stream_layout_rows_continue_across_steps():
    ids = np.arange(1001, dtype=np.int32)
    streams = stream_layout(ids, batch_size=4, seq_len=10)
    assert streams.x.shape == (4, 250) and streams.steps == 25
    batches = [(x.numpy(), y.numpy()) for x, y in stream_dataset(streams)]
    assert len(batches) == 25
    for (x0, y0), (x1, _) in zip(batches, batches[1:]):
        assert np.array_equal(x1[:, 0], x0[:, -1] + 1)  # row i of step k+1 continues row i
        assert np.array_equal(y0, x0 + 1)
    assert np.array_equal(batches[0][0][:, 0], [0, 250, 500, 750])


def test_stream_layout_too_short():
    with pytest.raises(SeqmodelsError, match="too few for 8 streams"):
        stream_layout(np.arange(50), batch_size=8, seq_len=10)


def test_batches_come_from_a_fixed_pipeline_without_autotuning():
    """With tf.data's autotuning, deleting an iterator (each epoch's end, each validation, a
    budget's stop) waited for its tuning thread: 0.5-4.6 s at random on 2 cores."""
    from seqmodels.data.windows import Streams

    ids = np.arange(500, dtype=np.int32)
    for ds in (window_dataset(ids, 10, 4, shuffle=True, drop_remainder=True),
               window_dataset(ids, 10, 4),
               stream_dataset(Streams(ids[:480].reshape(4, 120), ids[1:481].reshape(4, 120),
                                      10))):
        assert ds.options().autotune.enabled is False
        assert sum(1 for _ in ds) > 0
