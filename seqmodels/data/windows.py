"""Contiguous train/val/test splits of token ids; tf.data windows that are never materialised."""

from __future__ import annotations

import itertools
import mmap
import os
from dataclasses import dataclass

import numpy as np

from seqmodels.backend import import_tf
from seqmodels.data.config import DEFAULT_SPLITS, check_fractions
from seqmodels.errors import SeqmodelsError

# Arrays whose int32 copy fits in this many bytes are copied into a TensorFlow tensor and
# windows are gathered in-graph (that copy, and TF's own, cost about 2x). Larger arrays,
# memory-mapped ones included, are indexed a batch at a time with NumPy: the array is never
# copied or widened, only each batch's windows are (to int32).
IN_MEMORY_LIMIT = 16 * 2**20
# Batches are read by a fixed pipeline: with tf.data's autotuning, deleting an iterator (at every
# epoch's end, validation and budget stop) waited for its tuning thread, 0.5-4.6 s at random
# (measured on 2 cores); reading a batch is a gather, so two readers and two batches ahead do.
PARALLEL_READS, PREFETCH = 2, 2


# Pages of a memory-mapped array that were read stay mapped in this process (and count in
# its resident memory; this kernel maps up to 2 MB per fault) until released. Windows of a
# file-backed memmap are therefore read with os.pread, which maps nothing; other memmaps
# release their pages every RELEASE_EVERY batches (they stay in the page cache).
RELEASE_EVERY = 8


class _Pages:
    """Releases the read pages of a memory-mapped array every RELEASE_EVERY batches."""

    def __init__(self, ids: np.ndarray) -> None:
        base = ids
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        self.mm = base if hasattr(mmap, "MADV_DONTNEED") else None
        self.calls = itertools.count(1)

    def batch_read(self) -> None:
        """Call after each batch read."""
        if self.mm is not None and next(self.calls) % RELEASE_EVERY == 0:
            try:
                self.mm.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed or unsupported: only memory is at stake
                self.mm = None


class _FileWindows:
    """Reads rows of `width` ids at given offsets of a 1-D memmap's file with os.pread."""

    def __init__(self, ids: np.ndarray, width: int) -> None:
        root = ids
        while isinstance(root.base, np.ndarray):
            root = root.base
        self.pos = ids.offset + ids.ctypes.data - root.ctypes.data  # the view's first byte
        self.file = open(ids.filename, "rb", buffering=0)  # noqa: SIM115 (closed with self)
        self.dtype, self.width = ids.dtype, width

    @staticmethod
    def usable(ids: np.ndarray) -> bool:
        """True for a contiguous 1-D view of a memmap whose file still exists."""
        if not isinstance(ids, np.memmap) or ids.ndim != 1 or not ids.filename:
            return False
        root = ids
        while isinstance(root.base, np.ndarray):
            root = root.base
        return (ids.strides[0] == ids.itemsize and isinstance(root.base, mmap.mmap)
                and os.path.isfile(ids.filename))

    def __call__(self, starts: np.ndarray) -> np.ndarray:
        """(B,) offsets in ids -> (B, width) int32."""
        size, n = self.dtype.itemsize, self.width * self.dtype.itemsize
        fd = self.file.fileno()
        buf = b"".join(os.pread(fd, n, self.pos + int(s) * size) for s in starts)
        return np.frombuffer(buf, self.dtype).reshape(len(starts), self.width).astype(np.int32)


@dataclass(frozen=True)
class Splits:
    """Views of one id array: three contiguous blocks, in order."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Token count of each split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_bounds(n: int, fractions: tuple[float, ...] = DEFAULT_SPLITS) -> tuple[int, int]:
    """Token offsets where validation and test begin."""
    train, val, _ = check_fractions(fractions)
    a = int(round(n * train))
    b = int(round(n * (train + val)))
    return a, max(a, min(b, n))


def split_ids(ids: np.ndarray, fractions: tuple[float, ...] = DEFAULT_SPLITS) -> Splits:
    """Cut ids into contiguous train/val/test blocks (views, no copy)."""
    a, b = split_bounds(len(ids), fractions)
    return Splits(ids[:a], ids[a:b], ids[b:])


def num_windows(n: int, seq_len: int, stride: int | None = None) -> int:
    """How many (x, y) windows of length seq_len fit in n tokens at this stride."""
    stride = stride or seq_len
    if seq_len < 1 or stride < 1:
        raise SeqmodelsError("sequence length and stride must be at least 1")
    return 0 if n < seq_len + 1 else (n - seq_len - 1) // stride + 1


def require_windows(n: int, seq_len: int, stride: int | None = None, what: str = "text") -> int:
    """num_windows(), or a clear error when not even one window fits."""
    count = num_windows(n, seq_len, stride)
    if count == 0:
        raise SeqmodelsError(
            f"the {what} has {n:,} tokens, too few for one window of length {seq_len} "
            f"(it needs at least {seq_len + 1}); use a shorter `seq_len` or more text"
        )
    return count


def window_dataset(
    ids: np.ndarray,
    seq_len: int,
    batch_size: int,
    stride: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
    in_memory_limit: int = IN_MEMORY_LIMIT,
):
    """A tf.data.Dataset of (x, y) int32 batches: x = ids[s:s+T], y = ids[s+1:s+T+1].

    Window starts are s = k * stride; with shuffle they come in a permutation that depends
    only on (seed, epoch), computed per index (no buffer), so a resumed epoch replays exactly.
    """
    tf = import_tf()
    stride = stride or seq_len
    n = require_windows(len(ids), seq_len, stride)
    if batch_size < 1:
        raise SeqmodelsError("batch size must be at least 1")
    offsets = tf.range(seq_len + 1, dtype=tf.int64)
    ds = tf.data.Dataset.range(n).batch(batch_size, drop_remainder=drop_remainder)
    if shuffle:
        shuffle_seed = tf.constant([seed, epoch], dtype=tf.int64)

        def permute(k):
            return tf.random.experimental.index_shuffle(k, shuffle_seed, n - 1)

        ds = ds.map(permute)
    if len(ids) * 4 <= in_memory_limit:  # the size of its int32 copy
        table = tf.constant(np.asarray(ids, dtype=np.int32))

        def gather(k):  # k: (B,) window numbers -> (B, T+1) ids
            return tf.gather(table, k[:, None] * stride + offsets[None, :])

    else:

        offsets_np = np.arange(seq_len + 1)
        pages = _Pages(ids)
        from_file = _FileWindows(ids, seq_len + 1) if _FileWindows.usable(ids) else None

        def read(k):  # (B,) window numbers -> (B, T+1) int32, read a batch at a time
            if from_file is not None:
                return from_file(k * stride)
            w = np.asarray(ids[k[:, None] * stride + offsets_np], dtype=np.int32)
            pages.batch_read()
            return w

        def gather(k):
            w = tf.numpy_function(read, [k], tf.int32, stateful=False)
            return tf.ensure_shape(w, [None, seq_len + 1])

    ds = ds.map(gather, num_parallel_calls=PARALLEL_READS, deterministic=True)
    ds = ds.map(lambda w: (w[:, :-1], w[:, 1:]))
    return fixed_pipeline(ds)


@dataclass(frozen=True)
class Streams:
    """The stateful layout: B parallel streams, so row i of step k+1 continues row i of step k."""

    x: np.ndarray  # (B, L) ids[i*L : (i+1)*L]
    y: np.ndarray  # (B, L) the same, one token later
    seq_len: int

    @property
    def steps(self) -> int:
        """Batches per pass over the streams."""
        return self.x.shape[1] // self.seq_len

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Step k's (x, y), each (B, T)."""
        sl = slice(k * self.seq_len, (k + 1) * self.seq_len)
        return self.x[:, sl], self.y[:, sl]


def stream_layout(ids: np.ndarray, batch_size: int, seq_len: int, what: str = "text"
                  ) -> Streams:
    """Cut ids into batch_size contiguous streams for truncated BPTT with carried state."""
    if batch_size < 1 or seq_len < 1:
        raise SeqmodelsError("batch size and sequence length must be at least 1")
    length = (len(ids) - 1) // batch_size
    if length < seq_len:
        raise SeqmodelsError(
            f"the {what} has {len(ids):,} tokens, too few for {batch_size} streams of at least "
            f"{seq_len + 1} tokens; use a smaller `batch_size` or `seq_len`"
        )
    used = batch_size * length
    x = ids[:used].reshape(batch_size, length)
    y = ids[1 : used + 1].reshape(batch_size, length)
    return Streams(x, y, seq_len)


def fixed_pipeline(ds):
    """ds with PREFETCH batches read ahead and tf.data's autotuning off."""
    tf = import_tf()
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH).with_options(options)


def stream_dataset(streams: Streams):
    """A tf.data.Dataset of the streams' steps in order, (x, y) int32 of shape (B, T)."""
    tf = import_tf()
    B, T = streams.x.shape[0], streams.seq_len
    pages = _Pages(streams.x)

    def read(k):  # slices of the (possibly memory-mapped) ids: no copy of the corpus
        x, y = streams.batch(int(k))
        x, y = np.asarray(x, dtype=np.int32), np.asarray(y, dtype=np.int32)
        pages.batch_read()
        return x, y

    def step(k):
        x, y = tf.numpy_function(read, [k], (tf.int32, tf.int32), stateful=False)
        return tf.ensure_shape(x, [B, T]), tf.ensure_shape(y, [B, T])

    ds = tf.data.Dataset.range(streams.steps).map(step)
    return fixed_pipeline(ds)
