"""train(): a language model on a corpus, into a run directory (new or resumed)."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqmodels.data.config import DataConfig
from seqmodels.data.prepare import PreparedCorpus, prepare_corpus, write_texts
from seqmodels.data.vocab import Vocabulary
from seqmodels.errors import ResumableError, SeqmodelsError
from seqmodels.files import require_utf8
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.model import LanguageModel, load_network, read_settings
from seqmodels.models.config import ModelConfig
from seqmodels.progress import logger
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.history import best_val_loss
from seqmodels.training.rundir import RunDir, versions


@dataclass
class Run:
    """What train() returns: the run's directory and settings, its best model, its history."""

    path: Path | None  # None: a cluster worker that is not the chief (it wrote no run directory)
    settings: dict[str, Any]  # the run's config.json
    model: LanguageModel  # the best model (a worker's: the last)
    history: list[dict]  # one row per validation
    stop_reason: str = "completed"  # max-time, early-stopping, callback
    full_val_loss: float | None = None  # with eval_tokens: the best model on the whole split
    time_spent: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds by part

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation loss of any validation."""
        return best_val_loss(self.history)


def train(data: DataConfig | None = None, model: ModelConfig | LanguageModel | None = None,
          config: TrainConfig | None = None, windows: WindowConfig | None = None,
          out: str | Path | None = None, resume: str | Path | None = None,
          changes: dict[str, Any] | None = None, options: RunOptions | None = None) -> Run:
    """Train a language model into a new run directory `out` (default runs/<date>-<cell>-<level>),
    or go on with the run in `resume`, with its own settings but for `changes` (epochs,
    max_time, on_nan, xla; max_time 0 removes the budget; corpus: the run's corpus found
    elsewhere, accepted when its content is the same). `model` is the shape of a fresh model
    (a ModelConfig), or a LanguageModel to start from (`seqmodels.load(run)`): its shape, its
    weights and, for the tokens the vocabularies share, its rows. `options` say how this process
    runs: progress, workers, strategy, callbacks, cache. A cluster worker that is not the chief
    writes no run directory and returns a Run whose path is None."""
    options = (options or RunOptions()).validate().starting()  # a budget counts from here
    start = model if isinstance(model, LanguageModel) else None
    if resume is not None:
        given = [name for name, value in (("data", data), ("model", model), ("config", config),
                                          ("windows", windows), ("out", out)) if value is not None]
        if given:
            raise SeqmodelsError(f"a resumed run keeps its saved settings; give `changes` "
                                 f"instead of {', '.join(f'`{n}`' for n in given)}")
        stored = read_settings(RunDir(resume))
        data, model, config, windows = _stored_configs(RunDir(resume), stored)
        changes = dict(changes or {})
        if changes.get("corpus"):  # the same corpus, found elsewhere: a run that travelled
            given = DataConfig(corpus=changes["corpus"]).corpus  # one path, or PathLikes
            data = dataclasses.replace(data, corpus=corpus_to_store(given))
        changes.pop("corpus", None)
        config = config.with_changes(changes)
    else:
        if changes:
            raise SeqmodelsError("`changes` apply to a resumed run; give a new run's settings in "
                                 "`config`")
        stored = None
        if start is not None:
            model, data = start.config, data or start_data(start)
            check_start(start, data)
        data, model = data or DataConfig(), model or ModelConfig()
        config, windows = config or TrainConfig(), windows or WindowConfig()
        data = write_texts(data, options.cache_dir)  # texts in memory become files
        corpus_to_store(data.corpus)  # before anything is read or written
    model.validate()
    config.validate()
    windows.validate()
    if config.tensorboard and (out or resume):
        require_utf8(resume or out, "`tensorboard`")
    if options.strategy != "multi-worker":  # the only one with workers that are not the chief
        _check_run_dir(out, resume)  # before TensorFlow loads, so a refusal comes at once
    from seqmodels.backend import import_tf
    from seqmodels.training.distribute import cluster_errors, make_distribution

    import_tf()
    dist = make_distribution(options.strategy, options.cluster, options.worker_index)
    if dist is not None and dist.is_chief and options.strategy == "multi-worker":
        _check_run_dir(out, resume)
    if dist is not None and dist.workers > 1:  # a budget counts from when every worker is up,
        options = dataclasses.replace(options, started=time.monotonic())  # not the wait
    run_dir = resume if resume is not None else out
    try:
        with cluster_errors(dist, run_dir or "RUN"):
            return _train(dist, data, model, config, windows, run_dir, stored, options, start)
    except ResumableError as exc:
        if exc.command is None:
            exc.resume_with(f"seqmodels.train(resume={str(exc.run_dir)!r})")
        raise


def _check_run_dir(out: str | Path | None, resume: str | Path | None) -> None:
    """Before anything loads: a new run's `out` must be empty, a resumed run writable."""
    if resume is not None:
        RunDir(resume).check_writable()
    else:
        RunDir.check_new(out)


def start_data(start: LanguageModel) -> DataConfig:
    """The data settings a run that starts from a model takes unless given: the source's way of
    turning text into tokens, on the built-in corpus."""
    source = start.data
    return DataConfig(level=source.level, tokenizer=source.tokenizer,
                      normalize=source.normalize, lowercase=source.lowercase)


def check_start(start: LanguageModel, data: DataConfig) -> None:
    """Refuse data settings whose tokens are not the kind the model it starts from reads."""
    source = start.data
    for name in ("level", "tokenizer"):
        given, theirs = getattr(data, name), getattr(source, name)
        if given != theirs:
            raise SeqmodelsError(f"`{name}` {given} contradicts the model the run starts from "
                                 f"({start.name} reads {name} {theirs}); give `{name}` {theirs}")


def started_from(record: dict) -> LanguageModel:
    """The model a run's config.json says it started from, as it was then (same digest)."""
    name = record.get("name")
    try:
        source = LanguageModel.load(name)
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"the run started from {name}, which cannot be read now: "
                             f"{exc}") from None
    if source.digest() != record.get("digest"):
        raise SeqmodelsError(f"the run started from {name}, whose model file has changed "
                             f"since; start a new run from it")
    return source


def _stored_configs(run: RunDir, stored: dict) -> tuple:
    """The data, model, training and window settings in a run's config.json; one line naming
    the file when they are unreadable."""
    try:
        return (DataConfig.from_json(stored["data"]).in_run(run.path),
                ModelConfig.from_json(stored["model"]),
                TrainConfig.from_json(stored["train"]),
                WindowConfig.from_json(stored.get("windows", {})))
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run.config}: {exc}") from None


def absolute_corpus(specs: list[str]) -> list[str]:
    """Corpus arguments as absolute paths (built-in names that are not files stay as they are)."""
    from seqmodels.data.corpus import BUILTIN_CORPORA

    return [s if s in BUILTIN_CORPORA and not Path(s).exists()
            else os.path.abspath(os.path.expanduser(s)) for s in specs]


MAX_STORED_CORPUS = 2**19  # bytes of corpus paths config.json keeps (its reader takes 1 MiB)


def corpus_to_store(specs: list[str] | None, run: str | Path | None = None
                    ) -> list[str] | None:
    """The corpus arguments a run's config.json keeps: absolute (relative to the run's folder
    where they lie inside it, so the run can move with its corpus), and when they would not
    fit, each folder's stretch of files as its glob (a file added there later then changes the
    corpus, so only then); refused when even those would not fit."""
    import json

    from seqmodels.data.corpus import compact_specs

    if not specs:
        return specs
    stored = absolute_corpus(specs)
    if len(json.dumps(stored)) > MAX_STORED_CORPUS:
        stored = compact_specs(stored)
    if run is not None:
        folder = os.path.abspath(run)
        stored = [os.path.relpath(s, folder) if os.path.isabs(s) and
                  os.path.commonpath([s, folder]) == folder and s != folder else s
                  for s in stored]
    size = len(json.dumps(stored))
    if size > MAX_STORED_CORPUS:
        raise SeqmodelsError(f"`corpus` names {len(specs):,} files one by one ({size / 1e6:.1f} MB "
                             f"of paths), more than a run's settings can keep; give their folder, "
                             f"or a glob in quotes so that seqmodels expands it")
    return stored


def check_resumable(run: RunDir, vocab: Vocabulary) -> None:
    """Refuse, before any training, a resume whose run files are damaged or do not match.

    vocab is the vocabulary rebuilt from the run's corpus. A run with trained epochs (history or
    model) but no checkpoint cannot go on without starting over, so it is refused too.
    """
    stored = Vocabulary.load(run.vocab)
    if run.model.exists():
        load_network(run, len(stored))
    if stored != vocab:
        raise SeqmodelsError(f"{run.vocab}: does not match the vocabulary of the run's corpus "
                             f"({len(stored)} vs {len(vocab)} tokens)")
    trained = [path.name for path in (run.history, run.model) if path.exists()]
    if run.latest_checkpoint() is None and trained:
        raise SeqmodelsError(f"{run}: no checkpoint to resume from (its checkpoints are missing), "
                             f"but it has a {' and a '.join(trained)} that resuming would lose; "
                             f"train a new run with `out`")


def _agreed_training(config: TrainConfig) -> dict:
    """The training settings every worker must share: all but tensorboard (the chief's) and
    max_time (agreed as the first budget to end), unless cosine decays the rate over it."""
    settings = config.to_json()
    settings.pop("tensorboard")
    if config.schedule != "cosine":
        settings.pop("max_time")
    return settings


def _resumed_state(run: RunDir) -> str | None:
    """A digest of the checkpoint a resumed run starts from: every worker must hold the same
    (a stale copy of the chief's run put the workers' collectives out of step)."""
    import hashlib

    path = run.latest_checkpoint()
    if path is None:
        return None
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _train(dist, data: DataConfig, model_config: ModelConfig, config: TrainConfig,
           windows: WindowConfig, run_dir: str | Path | None, stored: dict | None,
           options: RunOptions, start: LanguageModel | None = None) -> Run:
    """train() once the settings are checked and the strategy exists."""
    from seqmodels.backend import import_keras, import_tf
    from seqmodels.lm.samples import Samples
    from seqmodels.lm.task import language_task, steps_per_epoch, validation_ids
    from seqmodels.training.distribute import scope
    from seqmodels.training.trainer import Trainer

    tf, keras = import_tf(), import_keras()
    chief, resuming = dist is None or dist.is_chief, stored is not None
    run = RunDir(run_dir) if run_dir is not None else None
    if resuming and stored.get("init_from") and run.latest_checkpoint() is None:
        start = started_from(stored["init_from"])  # nothing trained yet: begin as it began
    if dist is not None:  # before the corpus is read, so a refusal comes at once
        if windows.stateful:
            raise SeqmodelsError(f"`stateful` carries each stream's state on one device; it "
                                 f"cannot be combined with `strategy` {dist.name}")
        dist.check_batch(config.batch_size)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)

    prepared = prepare_corpus(data, cache_dir=options.cache_dir, use_cache=options.use_cache,
                              progress=options.progress, workers=options.workers)
    digest = prepared.stats["content_digest"]
    if resuming:
        if stored.get("corpus_digest") not in (None, digest):
            raise SeqmodelsError(f"the corpus ({', '.join(data.corpus[:3])}"
                                 f"{' ...' if len(data.corpus) > 3 else ''}) is not the one {run} "
                                 f"was trained on: its content differs; give the same files as "
                                 f"`corpus`, or start a new run")
        if run.latest_checkpoint() is not None or run.vocab.exists():
            check_resumable(run, prepared.vocab)  # before anything is trained or written
    steps_per_epoch(prepared, config, windows)  # every split holds a window, or one line
    if dist is not None:  # every worker must build the same model on the same ids
        dist.check_same({
            "corpus": [digest, prepared.vocab.tokens],
            "data settings": {k: v for k, v in data.to_json().items()
                              if k not in ("corpus", "stopwords")},  # paths may differ
            "model settings": model_config.to_json(), "window settings": windows.to_json(),
            "training settings": [_agreed_training(config), not resuming],
            "model started from": start.digest() if start is not None else None,
            "checkpoint resumed": _resumed_state(run) if resuming else None})

    V, B, T = len(prepared.vocab), config.batch_size, windows.seq_len
    model_config.check_size(V, V, B, T, output_steps=T)
    tokenizer = prepared.tokenizer()
    with scope(dist):
        model = LanguageModel.build(model_config, tokenizer,
                                    batch_size=B if windows.stateful else None,
                                    stateful=windows.stateful)
        began = {"name": start.name, "digest": start.digest(),
                 **model.take_weights(start)} if start is not None else None
    task = language_task(model, prepared, config, windows)
    # every worker drives the user's callbacks, as Keras does; samples go to the chief's run
    callbacks = [c.callback(model) if isinstance(c, Samples) else c for c in options.callbacks
                 if chief or not isinstance(c, Samples)]
    trainer = Trainer(task, config, dist, callbacks, options.progress, options.log_every,
                      options.started)
    if not chief:
        settings = {"data": data.to_json(), "model": model_config.to_json(),
                    "train": config.to_json(), "windows": windows.to_json(), "vocab_size": V}
        p, stop_reason, best = trainer.train_as_worker(run.path if resuming else None)
        held = LanguageModel(best, model_config, tokenizer, settings)
        return Run(None, settings, held, p.history, stop_reason, time_spent=trainer.time_spent)
    if resuming:
        settings = {**stored, "train": config.to_json(),  # the new epochs, budget...
                    "data": {**stored["data"],  # the corpus where it is now
                             "corpus": corpus_to_store(data.corpus, run.path)}}
    else:
        data.corpus = corpus_to_store(data.corpus, run_dir)  # so the run works from any folder
        settings = {"kind": "language-model", "data": data.to_json(),
                    "model": model_config.to_json(), "train": config.to_json(),
                    "windows": windows.to_json(), "vocab_size": V, "corpus_digest": digest,
                    **({"init_from": began} if began else {}), "versions": versions()}
    run, stop_reason = trainer.train(run_dir, resuming, settings, f"{model_config.cell}-"
                                                                    f"{data.level}")
    best = LanguageModel.load(run)
    result = Run(run.path, best.settings, best, run.read_history(), stop_reason,
                 time_spent=trainer.time_spent)
    val, _ = validation_ids(prepared, windows)
    if len(val) < len(prepared.splits.val):  # eval_tokens validated a slice
        result.full_val_loss = full_validation(best, prepared, windows, options.progress)
    return result


def full_validation(model: LanguageModel, prepared: PreparedCorpus, windows: WindowConfig,
                    progress: bool) -> float:
    """The best model's loss on the whole validation split, said and returned."""
    from seqmodels.lm.evaluate import evaluate_ids

    ids = prepared.splits.val
    context = None if windows.stateful else windows.seq_len
    loss = evaluate_ids(model, ids, context=context, progress=progress).cross_entropy
    if progress:
        logger.info(f"best model on the whole validation split ({len(ids) - 1:,} tokens; "
                    f"eval_tokens validated the first {windows.eval_tokens:,}): val_loss "
                    f"{loss:.4f}")
    return loss
