"""`make bench`: training, evaluation and generation speed, ours next to the baselines, one run.

Run as `python -m benchmarks.bench [--quick] [--prepare] [--held] [--quality [--budget 3m]]`.
Every speed is the median of several timed repetitions after a warm-up; the baselines are
measured in the same process. --quality trains each for the budget and compares their test
losses; --held times generating from a run with a held model against loading it per call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

V, E, H, LAYERS, T, B = 65, 64, 256, 2, 100, 64


def alternating_rates(works: dict[str, Callable[[], int] | None], reps: int
                      ) -> dict[str, float | None]:
    """Median items/second of each work, timed in turns (a, b, c, a, b, c, ...) after one
    warm-up each, so a machine whose speed drifts treats them alike; None stays None."""
    live = {name: work for name, work in works.items() if work is not None}
    for work in live.values():
        work()  # warm-up: tracing, compilation, allocation
    rates: dict[str, list[float]] = {name: [] for name in live}
    for _ in range(reps):
        for name, work in live.items():
            t = time.perf_counter()
            n = work()
            rates[name].append(n / (time.perf_counter() - t))
    return {name: statistics.median(rates[name]) if name in rates else None for name in works}


def median_rate(work: Callable[[], int], reps: int) -> float:
    """Median of items/second over reps calls of work() (which returns items done)."""
    work()  # warm-up: tracing, compilation, allocation
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        n = work()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def sgemm_flops(reps: int) -> float:
    """FLOP/s of a large float32 matrix product in NumPy: the machine's matmul ceiling."""
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    return median_rate(lambda: (a @ a, 2 * 2048**3)[1], reps)


def train_flops_per_token(cell: str) -> float:
    """About 3 x (2 x gates x H x (I + H)) per layer plus 3 x 2 x H x V for the softmax."""
    gates = {"lstm": 4, "gru": 3}[cell]
    rnn = sum(3 * 2 * gates * H * ((E if i == 0 else H) + H) for i in range(LAYERS))
    return rnn + 3 * 2 * H * V


def _batch(rng):
    x = rng.integers(0, V, (B, T)).astype(np.int32)
    return x, np.roll(x, -1, axis=1)


def _step_work(step, steps: int) -> Callable[[], int]:
    """Run a compiled (x, y) -> (value, ...) step `steps` times on one fixed batch; tokens."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    x, y = (tf.constant(a) for a in _batch(np.random.default_rng(0)))

    def work():
        for _ in range(steps):
            out = step(x, y)
        float(out[0])  # wait for the last step to finish
        return steps * B * T

    return work


def _step_rate(step, steps: int, reps: int) -> float:
    """Tokens/s of a compiled (x, y) -> (value, ...) step on one fixed batch."""
    return median_rate(_step_work(step, steps), reps)


def ours_train(cell: str, steps: int, fast: bool | None = None,
               xla: bool | None = None) -> Callable[[], int]:
    """Tokens/s of seqmodels' own compiled train step (what `seqmodels train` runs)."""
    from seqmodels.lm.task import language_steps
    from seqmodels.models.builders import build_language_model
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig
    from seqmodels.training.step import make_optimizer

    config = TrainConfig(batch_size=B, clipnorm=1.0, xla=xla)
    net = build_language_model(V, ModelConfig(cell=cell, layers=LAYERS, units=H,
                                              embedding_dim=E))
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    step, _ = language_steps(net, optimizer, config, fast=fast)
    return _step_work(step, steps)


def stock_keras_train(cell: str, steps: int) -> Callable[[], int]:
    """Tokens/s of a plain keras.layers model trained with model.fit, default settings."""
    from seqmodels.backend import import_keras

    keras = import_keras()
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    model = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(V, E)]
                             + [layer(H, return_sequences=True) for _ in range(LAYERS)]
                             + [keras.layers.Dense(V)])
    model.compile(keras.optimizers.Adam(2e-3, global_clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _batch(np.random.default_rng(0))
    xs, ys = np.tile(x, (steps, 1)), np.tile(y, (steps, 1))

    def work():
        model.fit(xs, ys, batch_size=B, epochs=1, verbose=0, shuffle=False)
        return steps * B * T

    return work


def torch_train(cell: str, steps: int) -> Callable[[], int] | None:
    """Tokens/s of PyTorch nn.LSTM/nn.GRU at the same configuration, if torch is installed."""
    try:
        import torch
    except ImportError:
        return None
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, E)
            self.rnn = rnn_cls(E, H, num_layers=LAYERS, batch_first=True)
            self.out = torch.nn.Linear(H, V)

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0])

    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in _batch(np.random.default_rng(0)))

    def work():
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x).reshape(-1, V), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        return steps * B * T

    return work


def ours_eval(cell: str, steps: int, reps: int) -> float:
    """Forward-only tokens/s (what evaluation with --context T runs per batch)."""
    from seqmodels.lm.evaluate import metric_step
    from seqmodels.models.builders import build_language_model
    from seqmodels.models.config import ModelConfig

    net = build_language_model(V, ModelConfig(cell=cell, layers=LAYERS, units=H,
                                              embedding_dim=E))
    step = metric_step(net)
    return _step_rate(step, steps, reps)


def generation(streams: int, tokens: int, reps: int) -> float:
    """Aggregate tokens/s of seqmodels' compiled sampling loop over `streams` samples."""
    from seqmodels.lm.generate import Generator, SamplingConfig
    from seqmodels.lm.model import LanguageModel
    from seqmodels.models.config import ModelConfig

    model = LanguageModel.build(ModelConfig(layers=LAYERS, units=H, embedding_dim=E),
                                vocab_size=V)
    gen = Generator(model, SamplingConfig(seed=0))
    prompts = np.full((streams, 8), 3, dtype=np.int32)
    return median_rate(lambda: sum(c.shape[1] for c in gen.stream(prompts, tokens)) * streams,
                       reps)


def window_refeed_generation(tokens: int, reps: int) -> float:
    """Tokens/s of the keras-io way: model.predict on the whole window for every new token."""
    from seqmodels.models.builders import build_language_model
    from seqmodels.models.config import ModelConfig

    net = build_language_model(V, ModelConfig(layers=LAYERS, units=H, embedding_dim=E))
    rng = np.random.default_rng(0)
    window = rng.integers(0, V, (1, T)).astype(np.int32)

    def work():
        w = window.copy()
        for _ in range(tokens):
            logits = net.predict(w, verbose=0)[0, -1]
            p = np.exp(logits - logits.max())
            nxt = rng.choice(V, p=p / p.sum())
            w = np.concatenate([w[:, 1:], [[nxt]]], axis=1).astype(np.int32)
        return tokens

    return median_rate(work, reps)


HELD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import seqmodels
run, length, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sampling = seqmodels.SamplingConfig(seed=1)
times = []
if mode == "held":  # load once, then call twice: what a LanguageModel you hold costs
    model = seqmodels.load(run)
    for _ in range(2):
        start = time.perf_counter()
        model.generate("And", length, sampling)
        times.append(time.perf_counter() - start)
else:  # load the run for every call, as generate_text(run, ...) did before there was a model
    for _ in range(2):
        start = time.perf_counter()
        seqmodels.load(run).generate("And", length, sampling)
        times.append(time.perf_counter() - start)
print(json.dumps({"first": times[0], "second": times[1], "process": time.perf_counter() - t0}))
"""


def held_generation(reps: int, length: int = 200) -> None:
    """Seconds of the second generate(length=200) call in a fresh process: a held model
    against loading the run for each call (the 2 x 256 LSTM char model, 1 training step)."""
    import json
    import subprocess
    import sys
    import tempfile

    from seqmodels import DataConfig, ModelConfig, TrainConfig, WindowConfig, train
    from seqmodels.data.prepare import corpus_text

    with tempfile.TemporaryDirectory(prefix="seqmodels-held-") as tmp:
        text = f"{tmp}/kjv-200k.txt"
        with open(text, "w", encoding="utf-8") as f:
            f.write(corpus_text(DataConfig(), ["kjv"])[:200_000])
        run = train(DataConfig(corpus=[text]), ModelConfig(layers=LAYERS, units=H,
                                                           embedding_dim=E),
                    TrainConfig(epochs=1, steps_per_epoch=1), WindowConfig(seq_len=T),
                    out=f"{tmp}/run").path
        results = {}
        for mode in ("reload", "held"):
            rows = [json.loads(subprocess.run(
                [sys.executable, "-c", HELD_SCRIPT, str(run), str(length), mode],
                capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
                for _ in range(reps)]
            results[mode] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    reload, held = results["reload"], results["held"]
    print(f"generation from a run, {length} tokens a call (LSTM {LAYERS} x {H}, median of {reps} "
          f"fresh processes):")
    print(f"  per-call reload (load + generate)   first {reload['first']:6.2f} s   "
          f"second {reload['second']:6.2f} s")
    print(f"  held model (load once)              first {held['first']:6.2f} s   "
          f"second {held['second']:6.3f} s")
    print(f"  second call: held {reload['second'] / held['second']:,.0f}x faster than "
          f"reloading the run")


def generated_corpus(path, mb: float, seed: int = 0, words: int = 5000) -> int:
    """Write about mb MiB of lines of invented words (a fixed list) to path; returns bytes."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(words)]
    vocab += [",", ".", "'s", "!", "?", "--"]
    line = np.array([v + " " for v in vocab] + [v + "\n" for v in vocab], dtype=object)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < mb * 2**20:
            picks = rng.integers(0, len(vocab), 100_000) + len(vocab) * (rng.random(100_000) < .08)
            text = "".join(line[picks])
            f.write(text)
            written += len(text)
    return written


def preparation(levels_mb: dict[str, float]) -> None:
    """Print streaming preparation MB/s for each level with 1 and 2 worker processes."""
    import os
    import tempfile
    from pathlib import Path

    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus

    print(f"\npreparation MB/s (generated corpus, no cache, one run each; "
          f"{os.cpu_count()} cores):", flush=True)
    print(f"  {'level':<8}{'corpus MB':>10}{'1 worker':>10}{'2 workers':>11}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as d:
        for level, size in levels_mb.items():
            path = Path(d) / f"{level}.txt"
            nbytes = generated_corpus(path, size)
            rates = []
            for workers in (1, 2):
                config = DataConfig(corpus=[str(path)], level=level)
                t = time.perf_counter()
                prepare_corpus(config, use_cache=False, workers=workers)
                rates.append(nbytes / 2**20 / (time.perf_counter() - t))
            print(f"  {level:<8}{nbytes / 2**20:>10.0f}{rates[0]:>10.2f}{rates[1]:>11.2f}"
                  f"{rates[1] / rates[0]:>7.2f}x", flush=True)
            path.unlink()


def _torch_quality(prepared, budget: float, seed: int, lr: float = 2e-3) -> dict | None:
    """A plain PyTorch script at PyTorch's defaults: the same split, model size, Adam (at lr),
    clipping, batches and budget as seqmodels' default; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    vocab, train_ids, test_ids = len(prepared.vocab), prepared.splits.train, prepared.splits.test

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, E)
            self.rnn = torch.nn.LSTM(E, H, num_layers=LAYERS, batch_first=True)
            self.out = torch.nn.Linear(H, vocab)

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0])

    def windows(ids, starts):
        x = np.stack([ids[s:s + T] for s in starts]).astype(np.int64)
        y = np.stack([ids[s + 1:s + T + 1] for s in starts]).astype(np.int64)
        return torch.from_numpy(x), torch.from_numpy(y)

    torch.manual_seed(seed)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr)
    rng = np.random.default_rng(seed)
    starts = np.arange(0, len(train_ids) - T - 1, T)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget:
        order = rng.permutation(starts)
        for i in range(0, len(order) - B + 1, B):
            x, y = windows(train_ids, order[i:i + B])
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x).reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            steps += 1
            if time.perf_counter() - started >= budget:
                break
    seconds = time.perf_counter() - started
    total, count = 0.0, 0
    test_starts = np.arange(0, (len(test_ids) - 1) // T * T, T)
    net.eval()
    with torch.no_grad():
        for i in range(0, len(test_starts), B):
            x, y = windows(test_ids, test_starts[i:i + B])
            ce = torch.nn.functional.cross_entropy(net(x).reshape(-1, vocab), y.reshape(-1),
                                                   reduction="sum")
            total, count = total + float(ce), count + y.numel()
    return {"test": total / count, "steps": steps, "tokens_per_s": steps * B * T / seconds}


def train_for(prepared, data, model, config, windows, budget: float, seed: int = 1,
              context: int | None = None) -> dict:
    """Train with seqmodels' train() for budget seconds; the test loss (windows of context,
    default the run's T, from a zero state, nats/token, and bits/char), steps made, training
    tokens/s (wall) and the best model."""
    import dataclasses
    import tempfile

    from seqmodels.lm.evaluate import evaluate_ids
    from seqmodels.lm.train import train
    from seqmodels.training.timing import around_steps

    config = dataclasses.replace(config, max_time=budget, epochs=10_000, seed=seed)
    with tempfile.TemporaryDirectory(prefix="seqmodels-quality-") as tmp:
        run = train(data, model, config, windows, out=f"{tmp}/run")
        last = run.history[-1]
        test = evaluate_ids(run.model, prepared.splits.test, context=context or windows.seq_len)
    return {"test": test.cross_entropy, "bits_per_char": test.bits_per_char,
            "steps": int(last["global_step"]), "model": run.model,
            "tokens_per_s": last["tokens"] / sum(r["seconds"] for r in run.history),
            "around": around_steps(run.time_spent)}


def quality(budget: float, seed: int = 1) -> None:
    """Test nats/char after `budget` seconds of training on the built-in corpus: seqmodels'
    default `train` next to a PyTorch script at PyTorch's defaults, both on windows of T from
    a zero state over the same test split."""
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus
    from seqmodels.lm.config import WindowConfig
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import TrainConfig

    data, model, config, windows = DataConfig(), ModelConfig(), TrainConfig(), WindowConfig()
    print(f"quality per minute: built-in corpus (char level), {budget:g} s of training each, "
          f"seed {seed}; seqmodels' defaults: {model.layers} x {model.units} {model.cell}, "
          f"embedding {model.embedding_dim}, batch {config.batch_size}, T {windows.seq_len}, "
          f"{config.optimizer} {config.learning_rate:g}, schedule {config.schedule}\n", flush=True)
    prepared = prepare_corpus(data)
    ours = train_for(prepared, data, model, config, windows, budget, seed)
    rates = sorted({2e-3, config.learning_rate})  # the usual Adam rate, and ours
    theirs = {lr: _torch_quality(prepared, budget, seed, lr) for lr in rates}
    print(f"{'':<32}{'test nats/char':>15}{'steps':>8}{'tokens/s':>10}")
    print(f"{'seqmodels default':<32}{ours['test']:>15.3f}{ours['steps']:>8,}"
          f"{ours['tokens_per_s']:>10,.0f}")
    for lr, result in theirs.items():
        if result is None:
            print("PyTorch reference: torch is not installed (pip install torch)")
            return
        print(f"{f'PyTorch, its defaults, Adam {lr:g}':<32}{result['test']:>15.3f}"
              f"{result['steps']:>8,}{result['tokens_per_s']:>10,.0f}")
    best = min(result["test"] for result in theirs.values())
    print(f"\nseqmodels - the better PyTorch: {ours['test'] - best:+.3f} nats/char")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions")
    parser.add_argument("--prepare", action="store_true",
                        help="only corpus preparation MB/s: 200 MB char and word corpora "
                             "(--quick: 20 MB char, 4 MB word), 1 and 2 workers")
    parser.add_argument("--quality", action="store_true",
                        help="only quality per minute: test loss after --budget of training, "
                             "seqmodels' default next to a PyTorch script (when torch is "
                             "installed)")
    parser.add_argument("--budget", default="3m", help="--quality: training time of each")
    parser.add_argument("--held", action="store_true",
                        help="only generation from a run: a held model's second call against "
                             "loading the run for every call, each in a fresh process")
    parser.add_argument("--profile", action="store_true",
                        help="only where a training step's time goes: XLA's trace of a few "
                             "steps, each operation's own time added up by kind (matrix "
                             "products, element-wise work, buffer fills and copies, ...)")
    parser.add_argument("--forecast", action="store_true",
                        help="only forecasting: rolling-origin backtests of seqmodels' defaults "
                             "next to the naive forecasts and, when statsforecast is installed, "
                             "AutoETS and AutoARIMA (series from pmdarima and statsmodels)")
    parser.add_argument("--origins", type=int, default=3, help="--forecast: origins per series")
    parser.add_argument("--series", default=None,
                        help="--forecast: comma-separated series names [default: all]")
    parser.add_argument("--seeds", type=int, default=1,
                        help="--forecast: models per origin, their forecasts averaged")
    parser.add_argument("--save", default=None,
                        help="--forecast: also write every origin's results to this JSON file")
    args = parser.parse_args(argv)
    if args.forecast:
        from benchmarks.forecast import forecast_bench

        forecast_bench(args.origins, args.series.split(",") if args.series else None, args.save,
                       args.seeds)
        return
    if args.profile:
        from benchmarks.profile import print_profile

        print_profile(steps=3 if args.quick else 5)
        return
    if args.held:
        held_generation(reps=3 if args.quick else 5)
        return
    if args.quality:
        from seqmodels.training.config import parse_duration

        quality(parse_duration(args.budget))
        return
    if args.prepare:
        preparation({"char": 20, "word": 4} if args.quick else {"char": 200, "word": 200})
        return
    reps = 3 if args.quick else 5
    steps = 2 if args.quick else 4
    print(f"char model V={V}, embedding {E}, {LAYERS} x {H} units, T={T}, batch {B}, Adam, "
          f"clipnorm 1.0; median of {reps} repetitions after a warm-up (training: ours and the "
          f"baselines timed in turns)\n", flush=True)
    ceiling = sgemm_flops(reps)
    print(f"numpy sgemm 2048^3: {ceiling / 1e9:.1f} GFLOP/s (the matmul ceiling)\n", flush=True)
    print("ours: seqmodels train's step (fused recurrence, XLA); keras layers: the same step "
          "with keras.layers.LSTM/GRU, as before the fused path\n")
    print(f"{'training tokens/s':<20}{'ours':>9}{'keras layers':>14}{'stock Keras':>13}"
          f"{'PyTorch':>10}{'ours/Keras':>12}{'ours/PyTorch':>14}{'MFU':>6}")
    for cell in ("lstm", "gru"):
        rates = alternating_rates({
            "ours": ours_train(cell, steps), "layers": ours_train(cell, steps, False, False),
            "stock": stock_keras_train(cell, steps), "torch": torch_train(cell, steps)}, reps)
        ours, layers, stock, torch_rate = (rates[k] for k in ("ours", "layers", "stock", "torch"))
        mfu = train_flops_per_token(cell) * ours / ceiling
        tr = f"{torch_rate:,.0f}" if torch_rate else "n/a"
        ratio = f"{ours / torch_rate:.2f}x" if torch_rate else "n/a"
        print(f"{cell.upper():<20}{ours:>9,.0f}{layers:>14,.0f}{stock:>13,.0f}{tr:>10}"
              f"{ours / stock:>11.2f}x{ratio:>14}{100 * mfu:>5.0f}%", flush=True)
        ev = ours_eval(cell, steps, reps)
        print(f"{'  evaluation':<20}{ev:>9,.0f}   (forward only: {ev / ours:.1f}x training)",
              flush=True)
    n = 256 if args.quick else 1024
    one = generation(1, n, reps)
    many = generation(64, n, reps)
    refeed = window_refeed_generation(10 if args.quick else 20, 3)
    print(f"\ngeneration tokens/s (LSTM {LAYERS} x {H}):")
    print(f"  ours, 1 stream            {one:>10,.0f}   ({one / refeed:,.0f}x the window re-feed)")
    print(f"  ours, 64 streams (total)  {many:>10,.0f}")
    print(f"  window re-feed per token  {refeed:>10,.1f}   (model.predict on T={T} per token)")


if __name__ == "__main__":
    main()
