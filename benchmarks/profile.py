"""Where a training step's time goes: `python -m benchmarks.bench --profile`.

The bench's model (char LSTM or GRU, 2 x 256, embedding 64, batch 64 x 100) trains a few steps
of seqmodels' own compiled step under TensorFlow's profiler, with XLA's per-operation trace on.
Every operation XLA ran is a timed event on the thread that ran it; this module adds up each
event's own time (its time less that of the events nested in it) by kind of work: matrix
products, fused element-wise work (the gates, the softmax, Adam), buffer fills and copies,
the loops' own bookkeeping, and time a thread spent waiting for the other. The shares are of
the time in XLA's operations (a matrix product's event covers both cores working on it), next
to the step's wall time; tracing every operation slows the step by up to a fifth.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench import LAYERS, B, H, T, ours_train

TRACE_FLAG = "--xla_cpu_enable_xprof_traceme=true"
MOVES = ("copy", "memset", "dynamic-update-slice", "dynamic_update_slice", "transpose",
         "slice", "concatenate", "pad")
ELEMENT_WISE = ("add", "subtract", "multiply", "divide", "tanh", "logistic", "exponential",
                "log", "maximum", "minimum", "select", "compare", "negate", "reduce",
                "convert", "sqrt", "rsqrt", "power", "abs")
KINDS = (  # (kind, test on an operation's name), first match wins
    ("matrix products", lambda n: n.startswith(("MatMul", "dot", "Einsum", "custom-call"))),
    ("buffer fills and copies", lambda n: n.startswith(MOVES)
     or (n.startswith("broadcast") and "fusion" not in n)),  # broadcast_add_fusion: arithmetic
    ("fused element-wise work", lambda n: "fusion" in n or n.split(".")[0] in ELEMENT_WISE),
    ("waiting for the other thread", lambda n: "Await" in n),
    ("loops and dispatch", lambda n: n.startswith(("while", "ThunkExecutor", "conditional",
                                                   "call"))),
)
# the calling thread's own events around the compiled program (Python, eager dispatch, waiting
# for the result): not the step's work
CALLER = ("train_step", "TFE_", "Eager", "__inference", "CpuExecutable", "BlockUntilReady",
          "PjRt", "XlaLaunch", "Execute")


def _kind(name: str) -> str:
    """The kind of work an XLA operation's name says (a lone op XLA wrapped in a fusion of its
    own, wrapped_broadcast.2, is classed by the op)."""
    name = name.removeprefix("wrapped_")
    return next((kind for kind, test in KINDS if test(name)), "other")


def _self_times(events: list[tuple[int, int, str]]) -> collections.Counter:
    """Picoseconds of each name's own time on one thread: (start, duration, name) events that
    nest (a loop's event holds its body's) each count their time less their children's; an
    event that outlasts its parent counts as a child only up to the parent's end."""
    own: collections.Counter = collections.Counter()
    stack: list[list] = []  # [end, name, children's time]
    for start, duration, name in sorted(events, key=lambda e: (e[0], -e[1])):
        while stack and stack[-1][0] <= start:
            _, done, children = stack.pop()
            own[done] -= children
        if stack:
            stack[-1][2] += min(start + duration, stack[-1][0]) - start
        own[name] += duration
        stack.append([start + duration, name, 0])
    while stack:
        _, done, children = stack.pop()
        own[done] -= children
    return own


def profile(cell: str, steps: int = 5) -> tuple[float, dict[str, float]]:
    """(wall seconds per step, {kind: busy seconds per step}) of seqmodels' training step."""
    from seqmodels.backend import import_tf

    tf = import_tf()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    work = ours_train(cell, 1)
    work(), work()  # compiled and warm
    with tempfile.TemporaryDirectory(prefix="seqmodels-profile-") as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(steps):
            work()
        wall = (time.perf_counter() - started) / steps
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    busy: collections.Counter = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":  # the threads' own events; other planes derive from them
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            events = [(e.offset_ps, e.duration_ps, names.get(e.metadata_id, "?"))
                      for e in line.events]
            for name, ps in _self_times(events).items():
                if not name.startswith(CALLER):
                    busy[_kind(name)] += ps
    return wall, {kind: ps * 1e-12 / steps for kind, ps in busy.items()}


def print_profile(steps: int = 5) -> None:
    """Print profile() for LSTM and GRU: ms per step and shares of the time in operations."""
    if TRACE_FLAG not in os.environ.get("XLA_FLAGS", ""):
        if "tensorflow" in sys.modules:
            raise SystemExit("--profile needs XLA's trace flag set before TensorFlow loads")
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TRACE_FLAG}".strip()
    print(f"where a training step's time goes (char {LAYERS} x {H}, batch {B} x {T}; XLA's "
          f"trace of {steps} steps, each operation's own time, by kind)")
    for cell in ("lstm", "gru"):
        wall, busy = profile(cell, steps)
        total = sum(busy.values())
        print(f"\n{cell.upper()}: {wall * 1e3:.1f} ms of wall time per step (traced), "
              f"{total * 1e3:.1f} ms in XLA's operations")
        for kind, seconds in sorted(busy.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:32s} {seconds * 1e3:8.1f} ms {seconds / total:6.1%}")
