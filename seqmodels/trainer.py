"""`train()` for language models: corpus, model and compiled steps, handed to the shared loop."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from seqmodels.distribute import cluster_errors, make_distribution, make_train_step, scope
from seqmodels.errors import SeqmodelsError
from seqmodels.lock import LOCK_NAME, run_lock
from seqmodels.loop import (
    Job,
    fit,
    load_latest,
    remove_stale_temporaries,
    restore,
    save,
    write_records,
)
from seqmodels.models import ModelConfig, build_language_model, reset_states
from seqmodels.prepare import DataConfig, prepare_corpus
from seqmodels.runs import (
    Run,
    check_resumable,
    default_run_dir,
    latest_checkpoint,
    load_model,
    load_run,
    read_language_config,
    save_model_atomic,
    versions,
    write_config,
)
from seqmodels.training import (
    Progress,
    StepCallback,
    TrainConfig,
    cross_entropy,
    make_optimizer,
    make_steps,
)
from seqmodels.windows import (
    require_windows,
    stream_dataset,
    stream_layout,
    window_dataset,
)


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


def _resume_configs(run_dir: Path, overrides: dict):
    """Data, model and train configs stored in a run, with --epochs/--max-time/... overrides."""
    config = read_language_config(run_dir)
    try:
        data = DataConfig.from_json(config["data"])
        model = ModelConfig.from_json(config["model"])
        train = TrainConfig(**config["train"])
    except TypeError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: unreadable settings ({exc})") from None
    _override(train, overrides)
    return config, data, model, train


def _override(config: TrainConfig, overrides: dict) -> None:
    """Set the settings that were given (not None)."""
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)


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
    on_nan: str | None = None,
    log_every: int | None = None,
    workers: int | None = None,
    strategy: str = "default",
    workers_spec: str | None = None,
    worker_index: int | None = None,
    xla: bool | None = None,
) -> Run:
    """Train a language model into a run directory (or resume one) and return the run.

    epochs, max_time, on_nan and xla override the config (also a resumed run's); log_every prints a
    line to stderr every that many steps; workers overrides the tokenizing processes.
    strategy is default, mirrored or multi-worker (workers_spec/worker_index or TF_CONFIG);
    a worker that is not the chief writes nothing to the run directory and returns a Run
    whose path is None.
    """
    from seqmodels._tf import import_tf

    import_tf()
    dist = make_distribution(strategy, workers_spec, worker_index)  # before any other TF op
    again = f"--resume {resume}" if resume is not None else "--resume RUN"
    with cluster_errors(dist, f"seqmodels train {again}"):
        return _train(dist, data, model, config, out, resume, cache_dir, progress, callback,
                      {"epochs": epochs, "max_time": max_time, "on_nan": on_nan, "xla": xla},
                      log_every, workers)


def _train(dist, data, model, config, out, resume, cache_dir, progress, callback, overrides,
           log_every, workers) -> Run:
    """train() once the strategy exists."""
    from seqmodels._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    chief = dist is None or dist.is_chief
    if resume is not None:
        run_dir = Path(resume)
        stored, data, model, config = _resume_configs(run_dir, overrides)
        if chief and not os.access(run_dir, os.W_OK):
            raise SeqmodelsError(f"{run_dir}: not writable, so training cannot continue there")
    else:
        data, model = data or DataConfig(), model or ModelConfig()
        config = config or TrainConfig()
        _override(config, overrides)
        run_dir = Path(out) if out else None
        if chief and run_dir is not None and run_dir.exists() and any(
                f.name != LOCK_NAME for f in run_dir.iterdir()):
            raise SeqmodelsError(
                f"{run_dir} already exists and is not empty; continue it with "
                f"--resume {run_dir}, or choose another --out"
            )
    model.validate()
    config.validate()
    if dist is not None:
        if config.stateful:
            raise SeqmodelsError(f"--stateful carries each stream's state on one device; it "
                                 f"cannot be combined with --strategy {dist.name}")
        dist.check_batch(config.batch_size)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)

    prepared = prepare_corpus(data, cache_dir=cache_dir, progress=progress, workers=workers)
    digest = prepared.stats["content_digest"]
    if resume is not None and stored.get("corpus_digest") not in (None, digest):
        raise SeqmodelsError(f"the corpus has changed since {run_dir} was trained; "
                             "start a new run instead of resuming")
    if resume is not None and (latest_checkpoint(run_dir) is not None
                               or (run_dir / "vocab.json").exists()):
        check_resumable(run_dir, prepared.vocab)  # before anything is trained or written
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

    with scope(dist):
        net = build_language_model(len(prepared.vocab), model, B if config.stateful else None,
                                   config.stateful)
        optimizer = make_optimizer(config)
        optimizer.build(net.trainable_variables)
    train_step, eval_step = make_steps(net, optimizer, config)
    if dist is not None:
        train_step = make_train_step(dist, net, optimizer, config, cross_entropy)

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
        loss = validation_loss(eval_step, ds)
        return loss if dist is None else dist.chief_value(loss)  # so all workers agree

    def save_best(folder: Path) -> None:
        # model.keras is always the plain (stateless, any batch size) model: a stateful net is
        # copied into one, so evaluate/generate and keras users load a normal model
        best = net
        if config.stateful:
            best = build_language_model(len(prepared.vocab), model)
            best.set_weights(net.get_weights())
        save_model_atomic(best, folder / "model.keras")

    if not chief:
        resume_command = "seqmodels train --resume " + (
            str(run_dir) if resume is not None else "<the chief's run>")
        job = Job(net, optimizer, train_step, dataset, steps, validate, save_best, data.level,
                  resume_command, distribution=dist, batch_size=B)
        settings = {"data": data.to_json(), "model": model.to_json(),
                    "train": vars(config).copy(), "vocab_size": len(prepared.vocab)}
        return _train_as_worker(job, config, run_dir if resume is not None else None,
                                settings, prepared.vocab, progress, callback, log_every)
    if run_dir is None:
        run_dir = default_run_dir(model.cell, data.level)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        job = Job(net, optimizer, train_step, dataset, steps, validate, save_best, data.level,
                  f"seqmodels train --resume {run_dir}",
                  start_epoch=(lambda: reset_states(net)) if config.stateful else None,
                  distribution=dist, batch_size=B)
        p = Progress()
        if resume is not None:
            remove_stale_temporaries(run_dir)
            latest = load_latest(run_dir)
            if latest is not None:  # none: killed before the first one, so start from step 0
                restore(job, p, *latest)
            if not (run_dir / "vocab.json").exists():  # killed before it was first written
                prepared.vocab.save(run_dir / "vocab.json")
            write_config(run_dir, {**stored, "train": vars(config).copy()})  # new epochs etc.
            write_records(job, run_dir, p)  # a kill may have come between checkpoint and CSV
        else:
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            data.corpus = absolute_corpus(data.corpus)  # so the run works from any folder
            write_config(run_dir, {
                "data": data.to_json(), "model": model.to_json(),
                "train": vars(config).copy(), "vocab_size": len(prepared.vocab),
                "corpus_digest": digest, "versions": versions(),
            })
            prepared.vocab.save(run_dir / "vocab.json")
        if latest_checkpoint(run_dir) is None:
            save(job, run_dir, p)  # step 0, so a kill or a NaN always has a checkpoint to go to
        stop_reason = fit(job, config, run_dir, p, progress, callback, log_every)
    run = load_run(run_dir)
    run.stop_reason = stop_reason
    return run


def _train_as_worker(job: Job, config: TrainConfig, shared: Path | None, settings: dict,
                     vocab, progress: bool, callback: StepCallback | None,
                     log_every: int | None) -> Run:
    """A worker that is not the chief: it reads the chief's run (to resume) and never writes
    it; its own checkpoints, for --on-nan rollback, go to a scratch folder deleted at the end."""
    with tempfile.TemporaryDirectory(prefix="seqmodels-worker-") as scratch:
        run_dir = Path(scratch)
        (run_dir / "checkpoints").mkdir()
        p = Progress()
        latest = load_latest(shared) if shared is not None else None
        if latest is not None:
            restore(job, p, *latest)
        save(job, run_dir, p)
        stop_reason = fit(job, config, run_dir, p, progress, callback, log_every)
        best = run_dir / "model.keras"
        model = load_model(best) if best.exists() else job.net
        return Run(None, settings, vocab, model, p.history, stop_reason)
