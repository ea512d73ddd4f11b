"""`train_forecaster()`: CSV series -> windows -> regression LSTM/GRU/SimpleRNN, trained by the
same loop, run directory, checkpoints and resume as the language models."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from seqmodels.errors import ResumableError, SeqmodelsError
from seqmodels.files import require_utf8
from seqmodels.forecast.choice import read_choice
from seqmodels.forecast.defaults import default_model, default_train_config
from seqmodels.forecast.prepare import PARTS, prepare
from seqmodels.forecast.run import KIND, ForecastRun, load_forecast_run, read_forecast_config
from seqmodels.forecast.series import BUILTIN_SERIES, SeriesConfig
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.rundir import RunDir, versions


def absolute_csv(spec: str) -> str:
    """A CSV argument as an absolute path (a built-in name that is not a file stays a name)."""
    if spec in BUILTIN_SERIES and not Path(spec).exists():
        return spec
    return os.path.abspath(os.path.expanduser(spec))


def train_forecaster(series: SeriesConfig | None = None, model: ModelConfig | None = None,
                     config: TrainConfig | None = None, out: str | Path | None = None,
                     resume: str | Path | None = None, changes: dict[str, Any] | None = None,
                     options: RunOptions | None = None, final_from: str | Path | None = None
                     ) -> ForecastRun:
    """Train a forecasting model into a new run directory `out` (default
    runs/<date>-<cell>-series), or go on with the run in `resume`, its settings kept but for
    `changes` (epochs, max_time, on_nan, xla). model defaults to default_model(), config to
    default_train_config(); of `options`, progress, log_every and callbacks apply.

    final_from: a final fit: a fresh model with that validated run's settings, trained on the
    windows of every row (of `series.csv` if given, else the run's CSV) for as many epochs as
    the run took to its best validation; the run's choice and intervals are kept."""
    options = (options or RunOptions()).validate().starting()  # a budget counts from here
    if final_from is not None:
        if resume is not None or model is not None or config is not None:
            raise SeqmodelsError("a final fit takes its settings from `final_from`; give "
                                 "neither `resume`, `model` nor `config`")
        series, model, config, source = final_settings(final_from, series)
        changes = {"final_fit_of": source}
    if options.strategy != "default":
        raise SeqmodelsError("forecasters train on one device; `strategy` applies to language "
                             "models")
    stored = None
    if resume is not None:
        given = [name for name, value in (("series", series), ("model", model),
                                          ("config", config), ("out", out)) if value is not None]
        if given:
            raise SeqmodelsError(f"a resumed run keeps its saved settings; give `changes` "
                                 f"instead of {', '.join(f'`{n}`' for n in given)}")
        run = RunDir(resume)
        stored = read_forecast_config(run)
        series, model, config = stored_settings(run, stored)
        config = config.with_changes(changes)
        run.check_writable()
        if run.model.exists():  # its model must take the windows its settings name
            load_forecast_run(run.path)
    else:
        if changes and final_from is None:
            raise SeqmodelsError("`changes` apply to a resumed run; give a new run's settings in "
                                 "`config`")
        series = dataclasses.replace(series or SeriesConfig())
        model = model or default_model()
        config = config or default_train_config()
        RunDir.check_new(out)
    if config.tensorboard and (out or resume):
        require_utf8(resume or out, "`tensorboard`")
    model.validate()
    config.validate()
    data = prepare(series)  # before TensorFlow loads, so a bad CSV fails at once
    if resume is not None and stored.get("series_digest") not in (None, data.series.digest):
        raise SeqmodelsError(f"the CSV has changed since {resume} was trained; start a new run "
                             f"instead of resuming")
    final = (stored or {}).get("final_fit_of") or (changes or {}).get("final_fit_of")
    try:
        return _train(series, model, config, data, resume if resume is not None else out,
                      stored, options, final)
    except ResumableError as exc:
        if exc.command is None:
            exc.resume_with(f"seqmodels.train_forecaster(resume={str(exc.run_dir)!r})")
        raise


def stored_settings(run: RunDir, stored: dict
                    ) -> tuple[SeriesConfig, ModelConfig, TrainConfig]:
    """The series, model and training settings a run's config.json holds."""
    try:
        return (SeriesConfig.from_json(stored["data"]).as_stored(),
                ModelConfig.from_json(stored["model"]), TrainConfig.from_json(stored["train"]))
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run.config}: {exc}") from None


def final_settings(run_dir: str | Path, series: SeriesConfig | None
                   ) -> tuple[SeriesConfig, ModelConfig, TrainConfig, dict]:
    """A final fit's settings: the validated run's, its CSV or the one given, and as many
    epochs as the run took to its best validation."""
    run = RunDir(run_dir)
    stored = read_forecast_config(run)
    if stored.get("final_fit_of"):
        raise SeqmodelsError(f"{run} is itself a final fit; give the validated run it came "
                             f"from")
    if not run.choice.exists():
        raise SeqmodelsError(f"{run} has no choice.json (trained before final fits, or not "
                             f"validated yet); train it again or go on with --resume")
    history = run.read_history()
    scored = [r for r in history if math.isfinite(r.get("val_loss", math.nan))]
    if not scored:
        raise SeqmodelsError(f"{run} has not validated yet: no best epoch to train for")
    best = min(scored, key=lambda r: r["val_loss"])
    epochs = max(1, int(math.ceil(float(best.get("epoch") or 1))))
    kept, model, config = stored_settings(run, stored)
    if series is not None and series.csv:
        kept = dataclasses.replace(kept, csv=series.csv)
    config = dataclasses.replace(config, epochs=epochs, patience=None, max_time=None)
    return kept, model, config, {"run": str(run.path.resolve()), "epochs": epochs}


def _train(series: SeriesConfig, model: ModelConfig, config: TrainConfig, data,
           run_dir: str | Path | None, stored: dict | None, options: RunOptions,
           final: dict | None = None) -> ForecastRun:
    """train_forecaster() once the settings and the series are checked."""
    from seqmodels.backend import import_keras, import_tf
    from seqmodels.forecast.task import forecast_task
    from seqmodels.training.trainer import Trainer

    tf, keras = import_tf(), import_keras()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    task = forecast_task(data, model, config, every_row=bool(final))
    trainer = Trainer(task, config, None, options.callbacks, options.progress, options.log_every,
                      options.started)
    if stored is not None:
        settings = {**stored, "train": config.to_json()}  # the new epochs, budget...
    else:
        stored_series = dataclasses.replace(data.config, csv=absolute_csv(data.config.csv))
        settings = {
            "kind": KIND, "data": stored_series.to_json(), "model": model.to_json(),
            "train": config.to_json(), "series_digest": data.series.digest,
            "rows": {n: len(p_) for n, p_ in zip(PARTS, data.parts)},
            "windows": {n: len(s) for n, s in zip(PARTS, data.starts)},
            "versions": versions(),
        }
        if final:
            settings["final_fit_of"] = final
    run, stop_reason = trainer.train(run_dir, stored is not None, settings, f"{model.cell}-series")
    result = load_forecast_run(run.path)
    if final:  # the validated run chose between its model and the naive forecasts
        from seqmodels.files import write_json_atomic

        if not run.choice.exists():  # once: a resumed final fit keeps the one it copied
            source = RunDir(final["run"])
            if not source.choice.exists():
                raise SeqmodelsError(f"{source.choice}: missing; the final fit keeps the "
                                     f"choice of the run it came from")
            write_json_atomic(run.choice, read_choice(source))
        result.choice = read_choice(run)
    elif result.history:  # a validated model: it or a naive forecast, by the validation part
        from seqmodels.forecast.choice import choose

        result.choice = choose(result.model, data, result.scaler, run)
    result.stop_reason = stop_reason
    result.notes = data.notes + ([f"chosen for this series: {'; '.join(data.chosen)}"]
                                 if data.chosen else [])
    return result
