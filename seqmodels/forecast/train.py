"""`train_forecaster()`: CSV series -> windows -> regression LSTM/GRU/SimpleRNN, trained by the
same loop, run directory, checkpoints and resume as the language models."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.files import require_utf8, write_json_atomic
from seqmodels.forecast.defaults import default_model, default_train_config
from seqmodels.forecast.prepare import PARTS, prepare
from seqmodels.forecast.run import (
    KIND,
    SCALER_FORMAT,
    ForecastRun,
    load_forecast_run,
    read_forecast_config,
)
from seqmodels.forecast.series import BUILTIN_SERIES, SeriesConfig, window_maker
from seqmodels.models.config import ModelConfig
from seqmodels.models.saving import save_model_atomic
from seqmodels.training import session
from seqmodels.training.config import TrainConfig
from seqmodels.training.loop import Task, keras_callbacks
from seqmodels.training.progress import StepCallback
from seqmodels.training.rundir import versions
from seqmodels.training.session import check_run_dir, check_same_source, stored_settings


def series_metrics(val_loss: float) -> dict[str, float]:
    """History columns of a validation mean squared error: its root (scaled units)."""
    return {"val_rmse": math.sqrt(max(val_loss, 0.0))}


def squared_error(y, outputs):
    """(B, H) targets and forecasts -> (B, H) squared errors (scaled units)."""
    from seqmodels.backend import import_tf

    return import_tf().square(y - outputs)


def absolute_csv(spec: str) -> str:
    """A CSV argument as an absolute path (a built-in name that is not a file stays a name)."""
    if spec in BUILTIN_SERIES and not Path(spec).exists():
        return spec
    return os.path.abspath(os.path.expanduser(spec))


def train_forecaster(
    series: SeriesConfig | None = None,
    model: ModelConfig | None = None,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
    epochs: int | None = None,
    max_time: float | None = None,
    on_nan: str | None = None,
    log_every: int | None = None,
    xla: bool | None = None,
    callbacks: list | None = None,
) -> ForecastRun:
    """Train a forecasting model into a run directory (or resume one) and return the run.

    model defaults to default_model(), config to default_train_config(); epochs, max_time,
    on_nan and xla override the config (also a resumed run's); callbacks are Keras callbacks
    the loop drives (see seqmodels.lm.train.train).
    """
    overrides = {"epochs": epochs, "max_time": max_time, "on_nan": on_nan, "xla": xla}
    stored = None
    if resume is not None:
        run_dir = Path(resume)
        stored = read_forecast_config(run_dir)
        series, model, config = stored_settings(run_dir, stored, SeriesConfig, overrides)
        series = series.as_stored()
        if config.seq_len != series.window:  # training stores the window as both
            raise SeqmodelsError(f"{run_dir / 'config.json'}: damaged (data.window "
                                 f"{series.window} but train.seq_len {config.seq_len}: the run "
                                 f"was trained on windows of one length)")
    else:
        series = dataclasses.replace(series or SeriesConfig())
        model = model or default_model()
        config = (config or default_train_config()).with_overrides(**overrides)
        run_dir = Path(out) if out else None
    if config.tensorboard and (out or resume):
        require_utf8(resume or out, "--tensorboard")
    check_run_dir(out, resume)
    if config.stateful:
        raise SeqmodelsError("forecasting windows are independent; --stateful does not apply")
    model.validate()
    config.validate()
    config.seq_len = series.window  # what the windows really are, for config.json
    data = prepare(series)  # before TensorFlow loads, so a bad CSV fails at once
    if resume is not None:
        check_same_source(stored, "series_digest", data.series.digest, run_dir, "CSV")
    from seqmodels.backend import import_keras, import_tf
    from seqmodels.models.builders import build_regression_model
    from seqmodels.training.step import make_optimizer, make_steps

    tf, keras = import_tf(), import_keras()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    starts, val_count = data.starts[0], len(data.starts[1])  # windows are made per batch
    features, W = data.parts[0].shape[1], series.window
    B = min(config.batch_size, len(starts))  # a larger batch is all the windows at once
    steps = math.ceil(len(starts) / B)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)

    model.check_size(-features, series.horizon, B, W, output_steps=1, steps_option="--window")
    net = build_regression_model(features, series.horizon, model, W)
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    train_step, eval_step = make_steps(net, optimizer, config, objective=squared_error)
    make_batch = window_maker(tf, data.scaled(0), W, series.horizon, series.relative)

    def dataset(epoch: int):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(starts))
        return tf.data.Dataset.from_tensor_slices(starts[order]).batch(B).map(make_batch)

    def validate() -> float:
        total, count = 0.0, 0
        for x_val, y_val, _ in data.window_chunks(1):
            s, n = eval_step(x_val, y_val)
            total, count = total + float(s), count + int(n)
        return total / count  # mean squared error, scaled units

    def save_best(folder: Path) -> None:
        save_model_atomic(net, folder / "model.keras")

    def write_files(folder: Path) -> None:
        if not (folder / "scaler.json").exists():  # a kill may have come before it was written
            write_json_atomic(folder / "scaler.json", {
                "format": SCALER_FORMAT, "version": 1, **data.scaler, "fill": data.fill,
                "fitted_on": f"training part: rows 1-{len(data.parts[0])} of {len(data.series)}",
            })

    task = Task(net, optimizer, train_step, dataset, steps, validate, save_best,
                "seqmodels forecast train", val_metrics=series_metrics,
                loss_label="mean squared error (scaled)",
                val_tokens=val_count * W, batch_tokens=B * W, unit="time steps",
                callbacks=keras_callbacks(callbacks, net, config.epochs, steps))
    if resume is not None:
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
    run_dir, stop_reason = session.run(task, config, run_dir, resume is not None, settings,
                                       write_files, (model.cell, "series"), progress, callback,
                                       log_every)
    run = load_forecast_run(run_dir)
    run.stop_reason, run.notes = stop_reason, data.notes
    return run
