"""The forecasting task the Trainer trains: windows of a prepared series in batches, the squared
error and its root, the model, and the scaler kept in the run."""

from __future__ import annotations

import math

import numpy as np

from seqmodels.data.windows import fixed_pipeline
from seqmodels.files import write_json_atomic
from seqmodels.forecast.prepare import Prepared
from seqmodels.forecast.run import SCALER_FORMAT
from seqmodels.forecast.series import window_maker
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import TrainConfig
from seqmodels.training.rundir import RunDir
from seqmodels.training.trainer import Task


def series_metrics(val_loss: float) -> dict[str, float]:
    """History columns of a validation mean squared error: its root (scaled units)."""
    return {"val_rmse": math.sqrt(max(val_loss, 0.0))}


def squared_error(y, outputs):
    """(B, H) targets and forecasts -> (B, H) squared errors (scaled units)."""
    from seqmodels.backend import import_tf

    return import_tf().square(y - outputs)


def every_start(data: Prepared) -> np.ndarray:
    """The starts of every window of every part, as rows of data.scaled(2) (a final fit)."""
    n = sum(len(p) for p in data.parts)
    return np.concatenate([np.concatenate([data.series_starts[i][k] for i in range(3)]) + k * n
                           for k in range(data.n_series)])


def forecast_task(data: Prepared, model: ModelConfig, config: TrainConfig,
                  every_row: bool = False) -> Task:
    """The Task of training a fresh regression model of these settings on a prepared series
    (every_row: on the windows of every part, a final fit; validation is then in-sample)."""
    from seqmodels.backend import import_tf
    from seqmodels.models.builders import build_regression_model
    from seqmodels.models.saving import save_model_atomic

    tf = import_tf()
    series = data.config
    starts, val_count = data.starts[0], len(data.starts[1])  # windows are made per batch
    if every_row:
        starts = every_start(data)
    features, W = series.inputs, series.window
    B = min(config.batch_size, len(starts))  # a larger batch is all the windows at once
    steps = math.ceil(len(starts) / B)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    model.check_size(-features, series.horizon, B, W, output_steps=1, steps_option="window")
    net = build_regression_model(features, series.horizon, model, W)
    make_batch = window_maker(tf, data.scaled(2 if every_row else 0), W, series.horizon,
                              series.base, series.season)

    def dataset(epoch: int):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(starts))
        return fixed_pipeline(tf.data.Dataset.from_tensor_slices(starts[order]).batch(B)
                              .map(make_batch))

    def validation_batches():  # windows of the validation part; their mean squared error
        return ((x, y) for x, y, _ in data.window_chunks(1))  # is in scaled units

    def save_best(run: RunDir) -> None:
        save_model_atomic(net, run.model)

    def write_files(run: RunDir) -> None:
        if not run.scaler.exists():  # a kill may have come before it was written
            write_json_atomic(run.scaler, {
                "format": SCALER_FORMAT, "version": 1, **data.scaler, "fill": data.fill,
                "fitted_on": f"training part: rows 1-{len(data.parts[0])} of {len(data.series)}",
            })

    return Task(net, squared_error, dataset, steps, validation_batches, save_best,
                write_files=write_files, val_metrics=series_metrics,
                loss_label="mean squared error (scaled)", val_tokens=val_count * W,
                batch_tokens=B * W, unit="time steps", batch_size=B)
