"""Distribution strategies: tf.distribute Mirrored and MultiWorkerMirrored training with our
compiled step.

The global batch (`batch_size`) stays what it is under every strategy: each replica gets an
equal slice of it, so a step sees the same windows, and the summed gradient equals the default
strategy's. Gradients are all-reduced once, clipped by the norm of the all-reduced gradient,
and applied on every replica. Only the chief writes the run directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from seqmodels.errors import ResumableError, SeqmodelsError

STRATEGIES = ("default", "mirrored", "multi-worker")


NO_STOP, MAX_TIME, SIGNAL = 0, 1, 2


def cluster_config(workers_spec: str, worker_index: int | None) -> dict:
    """A TF_CONFIG dict from 'host:port,host:port,...' and this process's index in it."""
    workers = [w.strip() for w in workers_spec.split(",")]
    for w in workers:
        if not _is_address(w):
            raise SeqmodelsError(f"`cluster`: {w!r} is not host:port "
                                 "(write e.g. 10.0.0.1:2222,10.0.0.2:2222)")
    if len(set(workers)) != len(workers):
        raise SeqmodelsError("`cluster` names the same host:port twice")
    if worker_index is None:
        raise SeqmodelsError("`cluster` needs `worker_index`, this process's place in it "
                             "(0 is the chief)")
    if not 0 <= worker_index < len(workers):
        raise SeqmodelsError(f"`worker_index` {worker_index} is outside `cluster`'s "
                             f"{len(workers)} workers (0 to {len(workers) - 1})")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": worker_index}}


def _check_tf_config(text: str) -> None:
    """Refuse a TF_CONFIG that MultiWorkerMirroredStrategy would misread or crash on."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise SeqmodelsError(f"TF_CONFIG is not valid JSON ({exc})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise SeqmodelsError('TF_CONFIG needs "cluster" and "task", e.g. {"cluster": {"worker": '
                             '["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
                             '"index": 0}}')
    kind, index = task.get("type"), task.get("index")
    if kind not in ("chief", "worker") or not isinstance(cluster.get(kind), list):
        raise SeqmodelsError(f"TF_CONFIG's task type {kind!r} is not a chief or worker listed "
                             "in its cluster")
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise SeqmodelsError(f"TF_CONFIG's task index {index!r} is not a place in its "
                             f"{kind} list")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list):
            raise SeqmodelsError(f"TF_CONFIG's {job} entry must be a list of host:port strings")
        for address in addresses:
            if not _is_address(address):
                raise SeqmodelsError(f"TF_CONFIG's {job} list must hold host:port strings, not "
                                     f"{address!r}")
            _check_resolves(address)


def _is_address(address: object) -> bool:
    """Whether a cluster address is a host:port string with a port TCP can have."""
    return (isinstance(address, str) and re.fullmatch(r"\[?[\w.:-]+\]?:\d{1,5}", address)
            is not None and int(address.rsplit(":", 1)[1]) <= 65535)


def _check_resolves(address: str) -> None:
    """Refuse at once a host name that does not resolve (TensorFlow would wait for it forever)."""
    import socket

    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        raise SeqmodelsError(f"the cluster's host {host!r} ({address}) cannot be found; check "
                             f"the name, or use its IP address") from None


def _quiet_eager_collective_warning(tf) -> None:
    """Drop TensorFlow's 'Using CollectiveAllReduceStrategy eagerly has significant overhead',
    logged for each of the few small eager all-reduces that keep the workers agreed (a stop
    request, the chief's validation loss): the training step itself is compiled."""
    import logging

    class Quiet(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "eagerly has significant overhead" not in record.getMessage()

    logger = tf.get_logger()
    if not any(type(f).__name__ == "Quiet" for f in logger.filters):
        logger.addFilter(Quiet())


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def _answers(address: str, timeout: float) -> bool:
    """Whether something listens at a cluster address."""
    import socket

    try:
        socket.create_connection(_host_port(address), timeout=timeout).close()
    except OSError:
        return False
    return True


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rendezvous(config: dict, say: Callable[[str], None], poll: float = 0.5) -> None:
    """Wait here, where Ctrl-C and SIGTERM work, until every other task's port answers, holding
    this task's own port meanwhile so the others see it: TensorFlow's own start waits for them
    without a word and cannot be interrupted. This task's port must be free and its address
    must reach this machine (a taken port was a traceback; a far address, a wait for ever)."""
    import socket

    task = config["task"]
    own = config["cluster"][task["type"]][task["index"]]
    host, port = _host_port(own)
    if port == 0:  # TensorFlow picks a free port: none to hold
        return
    dual = socket.has_dualstack_ipv6()
    try:
        listener = socket.create_server(("", port), family=socket.AF_INET6 if dual
                                        else socket.AF_INET, dualstack_ipv6=dual)
    except OSError as exc:
        raise SeqmodelsError(f"this worker's port {port} ({own}) cannot be opened "
                             f"({exc.strerror or exc}); another process may hold it: choose "
                             f"another port") from None
    with listener:
        listener.setblocking(False)
        if not _reaches(listener, own, timeout=5):
            raise SeqmodelsError(f"this worker's address {own} does not reach this machine; "
                                 f"give each worker an address of the machine it runs on")
        others = [a for job in config["cluster"].values() for a in job if a != own]
        waiting_said = False
        while True:
            _drain(listener)
            others = [a for a in others if not _answers(a, timeout=poll)]
            if not others:
                return
            if not waiting_said:
                say(f"waiting for the other workers to start: {', '.join(others)} "
                    f"(Ctrl-C stops)")
                waiting_said = True
            time.sleep(poll)


def _reaches(listener, address: str, timeout: float) -> bool:
    """Whether a connection to address arrives at listener: a token sent through it is read
    back there (a connection alone proves nothing where a proxy accepts every address)."""
    import select
    import socket

    token = os.urandom(16)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(_host_port(address), timeout=timeout) as sender:
            sender.sendall(token)
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([listener], [], [], left)[0]:
                    break
                try:
                    conn = listener.accept()[0]
                except BlockingIOError:
                    continue
                with conn:  # another task's probe closes at once, without a token
                    conn.settimeout(max(deadline - time.monotonic(), 0.01))
                    if conn.recv(len(token), socket.MSG_WAITALL) == token:
                        return True
    except OSError:
        pass
    return False


def _drain(listener) -> None:
    """Accept and close the connections other tasks made to see that this one is up."""
    while True:
        try:
            listener.accept()[0].close()
        except (BlockingIOError, InterruptedError):
            return


@dataclass
class Distribution:
    """A tf.distribute strategy and what training needs to know about it."""

    name: str
    strategy: Any
    is_chief: bool  # writes the run directory
    replicas: int  # in sync, over all workers
    workers: int
    chief_seconds: float = 0.0  # the chief's training seconds at the last agree(), for schedules

    def scope(self):
        """Create variables (model, optimizer) under this."""
        return self.strategy.scope()

    def check_batch(self, batch_size: int) -> None:
        """The global batch must split evenly over the replicas."""
        if batch_size % self.replicas:
            raise SeqmodelsError(f"`batch_size` {batch_size} does not split evenly over "
                                 f"{self.replicas} replicas; use a multiple of {self.replicas}")

    def distribute(self, dataset, batch_size: int):
        """Global (x, y) batches -> per-replica slices; worker i takes its rows of each batch."""
        from seqmodels.backend import import_tf

        tf = import_tf()
        per_replica = batch_size // self.replicas

        def on_worker(ctx):
            local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            start, rows = ctx.input_pipeline_id * local * per_replica, local * per_replica

            def split(x, y):  # (B, T) -> (local, B / replicas, T), one row per local replica
                shape = (local, per_replica, -1)
                return (tf.reshape(x[start:start + rows], shape),
                        tf.reshape(y[start:start + rows], shape))

            return dataset.map(split).unbatch()

        return self.strategy.distribute_datasets_from_function(on_worker)

    def check_same(self, settings: dict[str, Any]) -> None:
        """Refuse a cluster whose workers were started with different settings (each named
        part, e.g. the corpus, the model): they would build different models and fail in a
        TensorFlow error, or train one model on two corpora whose ids mean different things."""
        if self.workers == 1:
            return
        import hashlib

        def number(value: Any) -> float:  # 48 bits of a digest: exact in a float64 sum
            text = json.dumps(value, sort_keys=True, default=str).encode()
            return float(int.from_bytes(hashlib.sha256(text).digest()[:6], "big"))

        mine = [number(v) for v in settings.values()]
        chiefs = self._sum(mine, chief_only=True)
        differing = self._sum([float(a != b) for a, b in zip(mine, chiefs, strict=True)])
        names = [name for name, n in zip(settings, differing, strict=True) if n > 0]
        if names:
            raise SeqmodelsError(f"the workers were started with different {', '.join(names)} "
                                 f"than the chief's; start every worker with the same command "
                                 f"and corpus, only `worker_index` (and `out`) differing")

    def agree(self, code: int, seconds: float = 0.0) -> int:
        """The strongest stop request of any worker (SIGNAL > MAX_TIME > NO_STOP); keeps the
        chief's seconds of training (chief_seconds) so a time-based schedule is the same on
        every worker."""
        if self.workers == 1:
            return code
        signals, timeouts, self.chief_seconds = self._sum(
            [float(code == SIGNAL), float(code == MAX_TIME), seconds if self.is_chief else 0.0])
        return SIGNAL if signals > 0 else MAX_TIME if timeouts > 0 else NO_STOP

    def chief_value(self, value: float) -> float:
        """The chief's value of a number every worker computed (e.g. a validation loss)."""
        if self.workers == 1:
            return value
        return self._sum([value], chief_only=True)[0]

    def _sum(self, values: list[float], chief_only: bool = False) -> list[float]:
        """Sum over workers, once per worker (or the chief's values alone)."""
        from seqmodels.backend import import_tf

        tf = import_tf()

        def on_replica(v):
            ctx = tf.distribute.get_replica_context()
            replica, local = ctx.replica_id_in_sync_group, self.replicas // self.workers
            counted = replica == 0 if chief_only else replica % local == 0  # one a worker
            return ctx.all_reduce("sum", tf.where(counted, v, tf.zeros_like(v)))

        out = self.strategy.run(on_replica, (tf.constant(values, tf.float64),))
        return [float(v) for v in self.strategy.experimental_local_results(out)[0].numpy()]


def make_distribution(name: str = "default", workers_spec: str | None = None,
                      worker_index: int | None = None,
                      say: Callable[[str], None] | None = None) -> Distribution | None:
    """The strategy named by `strategy` (None for default); create it before any other TF op.
    say: where a multi-worker task reports that it waits for the others (default: stderr)."""
    if name not in STRATEGIES:
        raise SeqmodelsError(f"`strategy` must be one of {', '.join(STRATEGIES)}")
    if name != "multi-worker" and (workers_spec is not None or worker_index is not None):
        raise SeqmodelsError("`cluster` and `worker_index` go with `strategy` multi-worker")
    if name == "default":
        return None
    from seqmodels.backend import import_tf

    tf = import_tf()
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        return Distribution(name, strategy, True, strategy.num_replicas_in_sync, 1)
    if workers_spec is not None:
        if os.environ.get("TF_CONFIG"):
            raise SeqmodelsError("both TF_CONFIG and `cluster` describe the cluster; "
                                 "give one")
        os.environ["TF_CONFIG"] = json.dumps(cluster_config(workers_spec, worker_index))
    elif not os.environ.get("TF_CONFIG"):
        raise SeqmodelsError("`strategy` multi-worker needs the cluster: set TF_CONFIG or give "
                             "`cluster` host:port,... with `worker_index`")
    elif worker_index is not None:
        raise SeqmodelsError("`worker_index` goes with `cluster`; TF_CONFIG names the task")
    _check_tf_config(os.environ["TF_CONFIG"])
    _quiet_eager_collective_warning(tf)
    _rendezvous(json.loads(os.environ["TF_CONFIG"]), say or _to_stderr)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, RuntimeError) as exc:
        raise SeqmodelsError(f"could not join the cluster: {exc}") from None
    except tf.errors.OpError as exc:  # e.g. 'Could not start gRPC server'
        raise SeqmodelsError(f"could not join the cluster: {exc.message}") from None
    resolver = strategy.cluster_resolver
    workers = sum(len(v) for k, v in resolver.cluster_spec().as_dict().items()
                  if k in ("chief", "worker"))
    return Distribution(name, strategy, bool(strategy.extended.should_checkpoint),
                        strategy.num_replicas_in_sync, workers)


@contextlib.contextmanager
def cluster_errors(distribution: Distribution | None, run_dir: Any) -> Iterator[None]:
    """Turn a collective op aborted by a failed or vanished worker into one line (a
    ResumableError: the caller says how to resume run_dir)."""
    if distribution is None or distribution.workers == 1:
        yield
        return
    from seqmodels.backend import import_tf

    errors = import_tf().errors
    try:
        yield
    except errors.OpError as exc:
        if not isinstance(exc, (errors.UnavailableError, errors.AbortedError,
                                errors.CancelledError, errors.DeadlineExceededError)) \
                and "Collective ops is aborted" not in exc.message:
            raise  # not the cluster's doing
        text = re.sub(r"\{\{function_node [^}]*\}\}", "", exc.message)
        unhealthy = re.findall(r"/job:\w+/replica:\d+/task:\d+", text)
        what = (f"{', '.join(sorted(set(unhealthy)))} stopped" if unhealthy
                else " ".join(text.split())[:200])
        raise ResumableError(f"the cluster broke off training ({what}; its own output says "
                             f"why); whatever the chief's run had saved is intact: once it is "
                             f"fixed, start every worker again", run_dir,
                             "resuming the chief's run, if it had begun one, with",
                             separator=", ") from None


def scope(distribution: Distribution | None):
    """The distribution's scope, or a context that does nothing."""
    return distribution.scope() if distribution is not None else contextlib.nullcontext()


def make_train_step(distribution: Distribution, model, optimizer, config, objective,
                    forward=None):
    """A compiled (x, y) -> (loss, pre-clip norm, finite) step over per-replica batches;
    forward(x, training) computes the model's outputs (default: calling the model)."""
    from seqmodels.backend import import_tf
    from seqmodels.training.step import clip_gradients, dense_gradients, loss_terms

    tf = import_tf()
    strategy, replicas = distribution.strategy, distribution.replicas
    variables = model.trainable_variables
    # we all-reduce the gradient ourselves (its norm must be the global one, for clipping and
    # the NaN guard), so the optimizer must not sum it again; without this hook (a future
    # Keras) each replica's share is divided so Keras' own sum restores it
    reduce_again = not hasattr(optimizer, "_all_reduce_sum_gradients")
    if not reduce_again:
        optimizer._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars

    def on_replica(x, y):
        ctx = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss, penalty = loss_terms(model, x, y, objective, forward, training=True)
            share = (loss + penalty) / replicas  # replicas' shares sum to the global objective
        grads = ctx.all_reduce("sum", dense_gradients(tape.gradient(share, variables)))
        loss = ctx.all_reduce("sum", loss / replicas)
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(loss + penalty) & tf.math.is_finite(norm)
        return loss, norm, finite, clip_gradients(grads, norm, config)

    def apply(grads):
        if reduce_again:
            grads = [g / replicas for g in grads]
        optimizer.apply(grads, variables)

    @tf.function
    def train_step(x, y):
        loss, norm, finite, grads = strategy.run(on_replica, (x, y))
        first = strategy.experimental_local_results
        loss, norm, finite = first(loss)[0], first(norm)[0], first(finite)[0]
        if finite:  # the same on every replica: it comes from all-reduced values
            strategy.run(apply, (grads,))
        return loss, norm, finite

    return train_step
