"""`train()` for language models: corpus, model and compiled steps, handed to the shared loop."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import prepare_corpus
from seqmodels.data.windows import require_windows, stream_dataset, stream_layout, window_dataset
from seqmodels.errors import SeqmodelsError
from seqmodels.files import require_utf8
from seqmodels.lm.run import Run, check_resumable, load_run, read_language_config
from seqmodels.models.config import ModelConfig
from seqmodels.models.saving import save_model_atomic
from seqmodels.training import checkpoint, session
from seqmodels.training.config import TrainConfig
from seqmodels.training.distribute import cluster_errors, make_distribution, make_train_step, scope
from seqmodels.training.history import perplexity
from seqmodels.training.loop import Task, keras_callbacks
from seqmodels.training.progress import StepCallback
from seqmodels.training.rundir import versions
from seqmodels.training.session import check_run_dir, check_same_source, stored_settings
from seqmodels.training.step import cross_entropy, make_optimizer, make_steps


def absolute_corpus(specs: list[str]) -> list[str]:
    """Corpus arguments as absolute paths (built-in names that are not files stay as they are)."""
    from seqmodels.data.corpus import BUILTIN_CORPORA

    return [s if s in BUILTIN_CORPORA and not Path(s).exists()
            else os.path.abspath(os.path.expanduser(s)) for s in specs]


def validation_loss(eval_step, dataset) -> float:
    """Mean cross-entropy (nats/token) over every (x, y) batch of a dataset."""
    total, count = 0.0, 0
    for x, y in dataset:
        s, n = eval_step(x, y)
        total, count = total + float(s), count + int(n)
    return total / count


def language_metrics(val_loss: float) -> dict[str, float]:
    """History columns of a validation cross-entropy: perplexity and bits per token."""
    return {"val_perplexity": perplexity(val_loss),  # None (an empty cell) if it overflows
            "val_bits_per_token": val_loss / math.log(2)}


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
    callbacks: list | None = None,
    use_cache: bool = True,
) -> Run:
    """Train a language model into a run directory (or resume one) and return the run.

    epochs, max_time, on_nan and xla override the config (also a resumed run's); log_every prints a
    line to stderr every that many steps; workers overrides the tokenizing processes.
    strategy is default, mirrored or multi-worker (workers_spec/worker_index or TF_CONFIG);
    a worker that is not the chief writes nothing to the run directory and returns a Run
    whose path is None. callbacks: keras.callbacks.Callback objects (CSVLogger, LambdaCallback,
    a tracker's) that the loop drives with the usual events and logs; setting
    model.stop_training in one stops the run as a budget would (weights validated and kept).
    use_cache False neither reads nor writes the encoded-corpus cache.
    """
    overrides = {"epochs": epochs, "max_time": max_time, "on_nan": on_nan, "xla": xla}
    if resume is not None:
        stored = read_language_config(resume)
        data, model, config = stored_settings(Path(resume), stored, DataConfig, overrides)
    else:
        stored = None
        data, model = data or DataConfig(), model or ModelConfig()
        config = (config or TrainConfig()).with_overrides(**overrides)
    model.validate()
    config.validate()
    if config.tensorboard and (out or resume):
        require_utf8(resume or out, "--tensorboard")
    if strategy != "multi-worker":  # the only one with workers that are not the chief
        check_run_dir(out, resume)  # before TensorFlow loads, so a refusal comes at once
    from seqmodels.backend import import_tf

    import_tf()
    dist = make_distribution(strategy, workers_spec, worker_index)  # before any other TF op
    if dist is not None and dist.is_chief and strategy == "multi-worker":
        check_run_dir(out, resume)
    again = f"--resume {resume or out or 'RUN'}"
    with cluster_errors(dist, f"seqmodels train {again}"):
        return _train(dist, data, model, config, out, resume, stored, cache_dir, progress,
                      callback, log_every, workers, callbacks, use_cache)


def _agreed_training(config: TrainConfig) -> dict:
    """The training settings every worker must share: all but --tensorboard (the chief's) and
    --max-time (agreed as the first budget to end), unless cosine decays the rate over it."""
    settings = config.to_json()
    settings.pop("tensorboard")
    if config.schedule != "cosine":
        settings.pop("max_time")
    return settings


def _resumed_state(run_dir: Path) -> str | None:
    """A digest of the checkpoint a resumed run starts from: every worker must hold the same
    (a stale copy of the chief's run put the workers' collectives out of step)."""
    import hashlib

    path = checkpoint.latest(run_dir)
    if path is None:
        return None
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _train(dist, data: DataConfig, model: ModelConfig, config: TrainConfig, out, resume,
           stored: dict | None, cache_dir, progress, callback, log_every, workers,
           callbacks=None, use_cache=True) -> Run:
    """train() once the settings are checked and the strategy exists."""
    from seqmodels.backend import import_keras, import_tf
    from seqmodels.models.builders import build_language_model, reset_states

    tf, keras = import_tf(), import_keras()
    chief = dist is None or dist.is_chief
    run_dir = Path(resume) if resume is not None else Path(out) if out else None
    if dist is not None:
        if config.stateful:
            raise SeqmodelsError(f"--stateful carries each stream's state on one device; it "
                                 f"cannot be combined with --strategy {dist.name}")
        dist.check_batch(config.batch_size)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)

    prepared = prepare_corpus(data, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                              workers=workers)
    digest = prepared.stats["content_digest"]
    if resume is not None:
        check_same_source(stored, "corpus_digest", digest, run_dir, "corpus")
    if resume is not None and (checkpoint.latest(run_dir) is not None
                               or (run_dir / "vocab.json").exists()):
        check_resumable(run_dir, prepared.vocab)  # before anything is trained or written
    splits = prepared.splits
    B, T = config.batch_size, config.seq_len
    val = splits.val[:config.eval_tokens + 1] if config.eval_tokens else splits.val
    val_what = "validation split" + (
        f" (its first --eval-tokens {config.eval_tokens:,} and the target after them)"
        if config.eval_tokens else "")
    if config.stateful:
        streams = stream_layout(splits.train, B, T, "training split")
        val_streams = stream_layout(val, B, T, val_what)
        steps = streams.steps
    else:
        stride = config.stride or T
        windows = require_windows(len(splits.train), T, stride, "training split")
        require_windows(len(val), T, T, val_what)
        steps = windows // B
        if steps == 0:
            raise SeqmodelsError(
                f"the training split has {windows:,} window(s) of --seq-len {T}"
                + (f" at --stride {stride}" if config.stride else "")
                + f", fewer than one batch of {B}; use a smaller --batch-size or --seq-len"
                + (" or --stride" if config.stride else ""))
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    if dist is not None:  # every worker must build the same model on the same ids
        dist.check_same({
            "corpus": [digest, prepared.vocab.tokens],
            "data settings": {k: v for k, v in data.to_json().items()
                              if k not in ("corpus", "stopwords")},  # paths may differ
            "model settings": model.to_json(),
            "training settings": [_agreed_training(config), resume is None],
            "checkpoint resumed": _resumed_state(run_dir) if resume is not None else None})

    model.check_size(len(prepared.vocab), len(prepared.vocab), B, T, output_steps=T)
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
            ds = window_dataset(val, T, B)
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

    task = Task(net, optimizer, train_step, dataset, steps, validate, save_best,
                "seqmodels train",
                val_metrics=language_metrics, loss_label="cross-entropy (nats/token)",
                val_tokens=len(val) - 1, batch_tokens=B * T,
                start_epoch=(lambda: reset_states(net)) if config.stateful else None,
                distribution=dist, batch_size=B,
                callbacks=keras_callbacks(callbacks, net, config.epochs, steps) if chief
                else None)
    if not chief:
        settings = {"data": data.to_json(), "model": model.to_json(),
                    "train": config.to_json(), "vocab_size": len(prepared.vocab)}
        p, stop_reason, best = session.run_as_worker(
            task, config, run_dir if resume is not None else None, progress, callback, log_every)
        return Run(None, settings, prepared.vocab, best, p.history, stop_reason)
    if resume is not None:
        settings = {**stored, "train": config.to_json()}  # the new epochs, budget...
    else:
        data.corpus = absolute_corpus(data.corpus)  # so the run works from any folder
        settings = {"data": data.to_json(), "model": model.to_json(),
                    "train": config.to_json(), "vocab_size": len(prepared.vocab),
                    "corpus_digest": digest, "versions": versions()}

    def write_files(folder: Path) -> None:
        if not (folder / "vocab.json").exists():  # a kill may have come before it was written
            prepared.vocab.save(folder / "vocab.json")

    run_dir, stop_reason = session.run(task, config, run_dir, resume is not None, settings,
                                       write_files, (model.cell, data.level), progress,
                                       callback, log_every)
    run = load_run(run_dir)
    run.stop_reason = stop_reason
    if len(val) < len(splits.val) and run.model is not None:  # --eval-tokens validated a slice
        run.full_val_loss = full_validation(run, splits.val, None if config.stateful else T,
                                            progress)
    return run


def full_validation(run: Run, ids, context: int | None, progress: bool) -> float:
    """The best model's loss on the whole validation split, said and returned."""
    from tqdm import tqdm

    from seqmodels.lm.evaluate import evaluate_ids

    loss = evaluate_ids(run.model, ids, context=context, progress=progress).cross_entropy
    if progress:
        tqdm.write(f"best model on the whole validation split ({len(ids) - 1:,} tokens; "
                   f"--eval-tokens validated the first {run.config['train']['eval_tokens']:,}): "
                   f"val_loss {loss:.4f}", file=sys.stderr)
    return loss
