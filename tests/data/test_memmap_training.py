"""Training from a 1 GB memory-mapped token file keeps resident memory far below its size."""

import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from seqmodels.backend import import_tf
    from seqmodels.models.config import ModelConfig
    from seqmodels.models.builders import build_language_model
    from seqmodels.training.config import TrainConfig
    from seqmodels.training.step import make_optimizer
    from seqmodels.lm.task import language_steps
    from seqmodels.data.windows import split_ids, window_dataset

    path, steps = sys.argv[1], int(sys.argv[2])
    tf = import_tf()
    T, B = 100, 64
    config = TrainConfig(batch_size=B, clipnorm=1.0)
    net = build_language_model(65, ModelConfig(layers=1, units=64, embedding_dim=16))
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    train_step, _ = language_steps(net, optimizer, config)
    warm = np.random.default_rng(0).integers(0, 65, 2_000_000, dtype=np.uint8)
    for x, y in window_dataset(warm, T, B, shuffle=True, in_memory_limit=0).take(2):
        train_step(x, y)  # trace the step and start tf.data before the baseline
    reset_peak()
    before = status("VmRSS")
    ids = np.load(path, mmap_mode="r")
    train = split_ids(ids).train
    losses = []
    for x, y in window_dataset(train, T, B, shuffle=True, seed=1, drop_remainder=True).take(steps):
        losses.append(float(train_step(x, y)[0]))
    print(json.dumps({"file": int(ids.nbytes), "dtype": str(ids.dtype), "steps": len(losses),
                      "growth": status("VmHWM") - before, "peak": status("VmHWM"),
                      "rss_file": status("RssFile"), "finite": bool(np.isfinite(losses).all())}))
    """
)


def write_token_file(path, n: int, vocab: int = 65) -> None:
    """A .npy of n random uint8 ids, written a block at a time (never all in memory)."""
    import numpy as np

    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n,))
    offset = header.offset
    del header
    rng = np.random.default_rng(0)
    with open(path, "r+b") as f:
        f.seek(offset)
        for start in range(0, n, 1 << 26):
            rng.integers(0, vocab, min(1 << 26, n - start), dtype=np.uint8).tofile(f)


@pytest.mark.slow
def test_one_gigabyte_token_file_trains_in_little_memory(tmp_path, measure_rss):
    path = tmp_path / "ids.npy"
    write_token_file(path, 2**30)
    result = measure_rss(SCRIPT, str(path), "30")
    print(result)
    assert result["file"] == 2**30 and result["dtype"] == "uint8"
    assert result["steps"] == 30 and result["finite"]
    assert result["growth"] < 64 * 2**20, result  # 1/16 of the file


def test_windows_read_from_the_file_equal_windows_of_the_array(tmp_path):
    import numpy as np

    from seqmodels.data.windows import split_ids, window_dataset

    ids = np.random.default_rng(1).integers(0, 300, 5000).astype(np.uint16)
    np.save(tmp_path / "ids.npy", ids)
    mapped = split_ids(np.load(tmp_path / "ids.npy", mmap_mode="r"), (0.5, 0.3, 0.2))
    plain = split_ids(ids, (0.5, 0.3, 0.2))
    for a, b in ((mapped.train, plain.train), (mapped.val, plain.val)):
        kw = dict(seq_len=7, batch_size=5, stride=3, shuffle=True, seed=2, in_memory_limit=0)
        got = [(x.numpy(), y.numpy()) for x, y in window_dataset(a, **kw)]
        want = [(x.numpy(), y.numpy()) for x, y in window_dataset(b, **kw)]
        assert len(got) == len(want) > 10
        assert all((gx == wx).all() and (gy == wy).all() for (gx, gy), (wx, wy) in zip(got, want))
