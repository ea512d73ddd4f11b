"""`train()`: the epoch loop tying data, model, compiled steps and the run directory together."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from seqmodels.errors import SeqmodelsError
from seqmodels.models import ModelConfig, build_language_model, reset_states
from seqmodels.prepare import DataConfig, prepare_corpus
from seqmodels.runs import (
    Run,
    default_run_dir,
    latest_checkpoint,
    load_checkpoint,
    load_run,
    plot_history,
    read_config,
    save_checkpoint,
    save_model_atomic,
    versions,
    write_config,
    write_history,
)
from seqmodels.training import (
    EpochStats,
    Progress,
    StepCallback,
    TrainConfig,
    make_optimizer,
    make_steps,
    restore_arrays,
    run_dir_arrays,
    schedule_lr,
)
from seqmodels.windows import (
    require_windows,
    stream_dataset,
    stream_layout,
    window_dataset,
)


class Interrupted(SeqmodelsError):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def _stop_requests():
    """Turn SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""
    flag: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def absolute_corpus(specs: list[str]) -> list[str]:
    """Corpus arguments as absolute paths (built-in names that are not files stay as they are)."""
    from seqmodels.corpus import BUILTIN_CORPORA

    return [s if s in BUILTIN_CORPORA and not Path(s).exists()
            else os.path.abspath(os.path.expanduser(s)) for s in specs]


def validation_loss(eval_step, dataset) -> float:
    """Mean cross-entropy (nats/token) over every (x, y) batch of a dataset."""
    total, count = 0.0, 0
    for x, y in dataset:
        s, n = eval_step(x, y)
        total, count = total + float(s), count + int(n)
    return total / count


def _tensorboard(run_dir: Path):
    """A summary writer for <run>/tensorboard (needs the tensorboard package)."""
    import importlib.util

    from seqmodels._tf import import_tf

    if importlib.util.find_spec("tensorboard") is None:
        raise SeqmodelsError("--tensorboard needs the tensorboard package: pip install tensorboard")
    return import_tf().summary.create_file_writer(str(run_dir / "tensorboard"))


def _log(board, step: int, scalars: dict[str, float]) -> None:
    """Write scalars to TensorBoard when a writer is open."""
    if board is None:
        return
    from seqmodels._tf import import_tf

    tf = import_tf()
    with board.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(name, value)
    board.flush()


def _resume_configs(run_dir: Path, epochs: int | None, max_time: float | None):
    """Data, model and train configs stored in a run, with --epochs/--max-time overrides."""
    config = read_config(run_dir)
    try:
        data = DataConfig.from_json(config["data"])
        model = ModelConfig.from_json(config["model"])
        train = TrainConfig(**config["train"])
    except TypeError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: unreadable settings ({exc})") from None
    if epochs is not None:
        train.epochs = epochs
    if max_time is not None:
        train.max_time = max_time
    return config, data, model, train


def train(
    data: DataConfig | None = None,
    model: ModelConfig | None = None,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
    epochs: int | None = None,
    max_time: float | None = None,
) -> Run:
    """Train a language model into a run directory (or resume one) and return the run."""
    from seqmodels._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()

    if resume is not None:
        run_dir = Path(resume)
        stored, data, model, config = _resume_configs(run_dir, epochs, max_time)
    else:
        data, model = data or DataConfig(), model or ModelConfig()
        config = config or TrainConfig()
        if epochs is not None:
            config.epochs = epochs
        if max_time is not None:
            config.max_time = max_time
        run_dir = Path(out) if out else None
        if run_dir is not None and run_dir.exists() and any(run_dir.iterdir()):
            raise SeqmodelsError(
                f"{run_dir} already exists and is not empty; continue it with "
                f"--resume {run_dir}, or choose another --out"
            )
    model.validate()
    config.validate()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)

    prepared = prepare_corpus(data, cache_dir=cache_dir, progress=progress)
    digest = prepared.stats["content_digest"]
    if resume is not None and stored.get("corpus_digest") not in (None, digest):
        raise SeqmodelsError(f"the corpus has changed since {run_dir} was trained; "
                             "start a new run instead of resuming")
    splits = prepared.splits
    B, T = config.batch_size, config.seq_len
    if config.stateful:
        streams = stream_layout(splits.train, B, T)
        val_streams = stream_layout(splits.val, B, T)
        steps = streams.steps
    else:
        stride = config.stride or T
        steps = require_windows(len(splits.train), T, stride, "training split") // B
        require_windows(len(splits.val), T, T, "validation split")
        if steps == 0:
            raise SeqmodelsError(f"the training split has fewer windows than one batch of {B}; "
                                 "use a smaller --batch-size or --seq-len")
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)

    net = build_language_model(len(prepared.vocab), model, B if config.stateful else None,
                               config.stateful)
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    train_step, eval_step = make_steps(net, optimizer, config)

    p = Progress()
    if resume is not None:
        if not os.access(run_dir, os.W_OK):
            raise SeqmodelsError(f"{run_dir}: not writable, so training cannot continue there")
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise SeqmodelsError(f"{run_dir}: no checkpoint to resume from")
        try:
            arrays, state = load_checkpoint(ckpt)
        except SeqmodelsError as exc:
            previous = ckpt.with_name("previous.npz")
            if ckpt == previous or not previous.is_file():
                raise
            warnings.warn(f"{exc}; resuming from {previous} instead", stacklevel=2)
            ckpt = previous
            arrays, state = load_checkpoint(ckpt)
        restore_arrays(net, optimizer, arrays, ckpt)
        p = Progress(**state["progress"])
        write_config(run_dir, {**stored, "train": vars(config).copy()})  # new epochs/max-time
    else:
        if run_dir is None:
            run_dir = default_run_dir(model.cell, data.level)
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        data.corpus = absolute_corpus(data.corpus)  # so the run works from any folder
        write_config(run_dir, {
            "data": data.to_json(), "model": model.to_json(), "train": vars(config).copy(),
            "vocab_size": len(prepared.vocab), "corpus_digest": digest, "versions": versions(),
        })
        prepared.vocab.save(run_dir / "vocab.json")

    def dataset(epoch: int):
        if config.stateful:
            return stream_dataset(streams)
        return window_dataset(splits.train, T, B, config.stride, shuffle=True, seed=config.seed,
                              epoch=epoch, drop_remainder=True)

    def validate() -> float:
        if config.stateful:
            reset_states(net)
            ds = stream_dataset(val_streams)
        else:
            ds = window_dataset(splits.val, T, B)
        return validation_loss(eval_step, ds)

    def save_best() -> None:
        # model.keras is always the plain (stateless, any batch size) model: a stateful net is
        # copied into one, so evaluate/generate and keras users load a normal model
        best = net
        if config.stateful:
            best = build_language_model(len(prepared.vocab), model)
            best.set_weights(net.get_weights())
        save_model_atomic(best, run_dir / "model.keras")

    def checkpoint(stats: EpochStats | None) -> None:
        p.partial = stats.to_json() if stats is not None and p.step else {}
        save_checkpoint(run_dir / "checkpoints" / "latest.npz", run_dir_arrays(net, optimizer),
                        {"progress": p.to_json()})

    from tqdm import tqdm

    board = _tensorboard(run_dir) if config.tensorboard else None
    started = time.monotonic()
    stop_reason = None
    lr = schedule_lr(config, p.epoch, p.step, steps, p.plateau_lr)
    with _stop_requests() as stop:
        for epoch in range(p.epoch, config.epochs):
            if config.stateful and p.step == 0:
                reset_states(net)
            stats = EpochStats(p.partial if p.step else None)
            bar = tqdm(total=steps, initial=p.step, desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", leave=False, disable=None if progress else True)
            with bar:
                for x, y in dataset(epoch).skip(p.step).take(steps - p.step):
                    lr = schedule_lr(config, epoch, p.step, steps, p.plateau_lr)
                    optimizer.learning_rate.assign(lr)
                    t0 = time.perf_counter()
                    loss, norm, finite = train_step(x, y)
                    loss, norm = float(loss), float(norm)
                    dt = time.perf_counter() - t0
                    if not bool(finite):
                        raise SeqmodelsError(
                            f"the loss or gradient became NaN/Inf at epoch {epoch + 1}, step "
                            f"{p.step + 1} (loss {loss}, gradient norm {norm}); the weights "
                            f"were not updated and {run_dir} keeps its last good checkpoint "
                            f"and model; try a lower --lr or a smaller --clipnorm"
                        )
                    clipped = config.clipnorm is not None and norm > config.clipnorm
                    stats.add(loss, norm, clipped, int(x.shape[0] * x.shape[1]), dt)
                    p.step += 1
                    p.global_step += 1
                    bar.update()
                    speed = stats.tokens / stats.seconds
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}")
                    _log(board, p.global_step, {"train/loss": loss, "train/lr": lr,
                                                "train/grad_norm_before_clipping": norm})
                    if callback is not None:
                        callback({"epoch": epoch, "step": p.step, "global_step": p.global_step,
                                  "loss": loss, "grad_norm": norm, "lr": lr})
                    if config.checkpoint_every and p.global_step % config.checkpoint_every == 0:
                        checkpoint(stats)
                    if stop["signal"] is not None:
                        stop_reason = "signal"
                        break
                    if config.max_time and time.monotonic() - started >= config.max_time:
                        stop_reason = "max-time"
                        break
            if stop_reason:
                checkpoint(stats)
                break
            val_loss = validate()
            p.history.append(stats.row(epoch, lr, val_loss, data.level))
            if p.best_val_loss is None or val_loss < p.best_val_loss:
                save_best()
                p.best_val_loss, p.epochs_without_improvement = val_loss, 0
            else:
                p.epochs_without_improvement += 1
                if (config.schedule == "plateau"
                        and p.epochs_without_improvement % config.plateau_patience == 0):
                    p.plateau_lr = lr * config.decay_factor
            _log(board, p.global_step, {f"epoch/{k}": p.history[-1][k] for k in
                                        ("val_loss", "val_perplexity", "tokens_per_s")})
            p.epoch, p.step, p.seconds = epoch + 1, 0, p.seconds + stats.seconds
            checkpoint(None)
            write_history(run_dir, p.history)
            plot_history(run_dir, p.history)
            if progress:
                row = p.history[-1]
                tqdm.write(f"epoch {epoch + 1}/{config.epochs}: loss {row['loss']:.4f}  "
                           f"val_loss {val_loss:.4f}  val_ppl {row['val_perplexity']:.2f}  "
                           f"{row['tokens_per_s']:,.0f} tokens/s")
            if config.patience and p.epochs_without_improvement >= config.patience:
                stop_reason = "early-stopping"
                break
            if stop["signal"] is not None:
                stop_reason = "signal"
                break

    if stop_reason in ("max-time", "signal") and not (run_dir / "model.keras").exists():
        if config.stateful:
            reset_states(net)
        p.best_val_loss = validate()
        save_best()
    if stop_reason == "signal":
        code = 130 if stop["signal"] == signal.SIGINT else 143
        raise Interrupted(f"interrupted; checkpoint saved at epoch {p.epoch + 1}, step {p.step}. "
                          f"Resume with: seqmodels train --resume {run_dir}", code)
    run = load_run(run_dir)
    run.stop_reason = stop_reason or "completed"
    return run
