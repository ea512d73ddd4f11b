"""Windowing 50 MB of ids must not materialise windows: memory O(corpus), not O(corpus x T)."""

import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    from seqmodels.backend import import_tf
    from seqmodels.data.windows import window_dataset

    tf = import_tf()
    for _ in window_dataset(np.arange(1000, dtype=np.int32), 10, 4, shuffle=True).take(2):
        pass  # start the TF runtime and tf.data threads before the baseline
    ids = np.random.default_rng(0).integers(0, 200, 50 * 2**20 // 4, dtype=np.int32)
    reset_peak()
    before = status("VmRSS")
    # stride 1: 13 million overlapping windows of T = 200 (10 GB if materialised)
    ds = window_dataset(ids, seq_len=200, batch_size=64, stride=1, shuffle=True, seed=0)
    seen = 0
    for x, y in ds.take(300):
        seen += int(x.shape[0])
        assert bool(tf.reduce_all(x[:, 1:] == y[:, :-1]))
    print(json.dumps({"array": ids.nbytes, "growth": status("VmHWM") - before, "windows": seen}))
    """
)


@pytest.mark.slow
def test_windowing_50mb_keeps_peak_rss_below_3x_array(measure_rss):
    result = measure_rss(SCRIPT)
    assert result["windows"] == 300 * 64
    assert result["growth"] < 3 * result["array"], result
