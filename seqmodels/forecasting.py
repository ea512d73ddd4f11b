"""`train_forecaster()`: CSV series -> windows -> regression LSTM/GRU/SimpleRNN, trained by the
same loop, run directory, checkpoints and resume as the language models."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.files import check_format, read_json, write_json_atomic
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
from seqmodels.runs import (
    default_run_dir,
    latest_checkpoint,
    load_model,
    read_config,
    read_history,
    save_model_atomic,
    versions,
    write_config,
)
from seqmodels.series import (
    BUILTIN_SERIES,
    MISSING_POLICIES,
    Series,
    SeriesConfig,
    fill_parts,
    fill_statistics,
    fit_scaler,
    make_windows,
    missing_report,
    read_series,
    scale,
    split_bounds,
    window_starts,
)
from seqmodels.training import Progress, StepCallback, TrainConfig, make_optimizer, make_steps

KIND = "forecast"
SCALER_FORMAT = "seqmodels.scaler"
PARTS = ("train", "validation", "test")
HOW = {  # what each --missing policy did, for the note
    "drop": "removed those rows",
    "ffill": "filled each gap with the last earlier value",
    "interpolate": "filled them linearly between the values around each gap, within its part",
    "mean": "filled them with the training part's column means",
    "median": "filled them with the training part's column medians",
}


@dataclass
class Prepared:
    """A series split, filled, scaled and windowed; parts keep their grid row numbers as index."""

    config: SeriesConfig
    series: Series
    parts: list  # 3 pandas DataFrames (n_i, F), original units, filled
    observed: list[np.ndarray]  # per part (n_i,): the target value was in the file
    scaler: dict
    fill: dict[str, float]
    starts: list[np.ndarray]  # per part: window starts (row offsets inside the part)
    notes: list[str] = field(default_factory=list)

    def windows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x (N, W, F), y (N, H), base (N,) of part i, scaled (see make_windows)."""
        c = self.config
        return make_windows(scale(self.parts[i].to_numpy(float), self.scaler), self.starts[i],
                            c.window, c.horizon, c.relative)

    def target(self) -> np.ndarray:
        """The filled target of all parts end to end (original units), for the baselines."""
        return np.concatenate([p.iloc[:, 0].to_numpy(float) for p in self.parts])

    def offset(self, i: int) -> int:
        """Where part i begins in target()."""
        return sum(len(p) for p in self.parts[:i])


def prepare(config: SeriesConfig, scaler: dict | None = None,
            fill: dict[str, float] | None = None) -> Prepared:
    """Read, check, split chronologically, fill gaps and scale (statistics from training only).

    A stored scaler and fill statistics (from a run) are used as they are instead of refitted.
    """
    config = config.with_defaults().validate()
    series = read_series(config)
    c, notes = config, list(series.notes)
    need = c.window + c.horizon
    if len(series) < need:
        raise SeqmodelsError(f"{c.csv}: {len(series)} rows, fewer than --window {c.window} + "
                             f"--horizon {c.horizon} = {need}")
    count, report = missing_report(series)
    if count and c.missing == "error":
        raise SeqmodelsError(f"{c.csv}: {report}; choose how to handle them with --missing "
                             f"{'|'.join(MISSING_POLICIES[1:])}")
    a, b = split_bounds(len(series), c.splits)
    raw = [series.values.iloc[:a], series.values.iloc[a:b], series.values.iloc[b:]]
    observed_all = series.values.iloc[:, 0].notna().to_numpy()
    if fill is None:
        fill = fill_statistics(raw[0], c.missing) if count else {}
    parts = fill_parts(raw, c.missing, fill)
    observed = [observed_all[p.index.to_numpy()] for p in parts]
    if count:
        notes.append(f"{report}; --missing {c.missing} {HOW[c.missing]}")
    if scaler is None:
        scaler = fit_scaler(parts[0])
    starts = [window_starts(o, c.window, c.horizon) for o in observed]
    for name, part, s in zip(PARTS, parts, starts):
        if len(s) == 0:
            raise SeqmodelsError(
                f"{c.csv}: the {name} part has {len(part)} rows and no window of --window "
                f"{c.window} + --horizon {c.horizon} = {need} rows with observed targets; use a "
                f"longer series, a smaller --window/--horizon or other --splits")
    return Prepared(config, series, parts, observed, scaler, fill, starts, notes)


@dataclass
class ForecastRun:
    """A trained forecasting run: directory, settings, scaler, best model, history."""

    path: Path
    config: dict
    series: SeriesConfig
    scaler: dict
    fill: dict[str, float]
    model: Any
    history: list[dict]
    stop_reason: str = "completed"
    notes: list[str] = field(default_factory=list)

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation MSE (scaled units) of any epoch."""
        losses = [r["val_loss"] for r in self.history if r.get("val_loss") is not None]
        return min(losses) if losses else None

    @property
    def best_val_rmse(self) -> float | None:
        """Best validation RMSE in the target's original units."""
        best = self.best_val_loss
        return None if best is None else math.sqrt(best) * self.scaler["std"][0]


def read_forecast_config(run_dir: str | Path) -> dict:
    """config.json of a forecasting run (a language-model run is refused)."""
    config = read_config(run_dir)
    if config.get("kind") != KIND:
        raise SeqmodelsError(f"{run_dir} is a language-model run; use seqmodels evaluate or "
                             f"generate on it")
    return config


def read_scaler(run_dir: Path) -> dict:
    """scaler.json: training means and standard deviations, and the fill statistics."""
    path = run_dir / "scaler.json"
    data = check_format(read_json(path), SCALER_FORMAT, 1, str(path), "scaler")
    if not all(isinstance(data.get(k), list) for k in ("columns", "mean", "std")):
        raise SeqmodelsError(f"{path}: damaged scaler")
    return data


def load_forecast_run(run_dir: str | Path) -> ForecastRun:
    """Settings, scaler, best model and history of a forecasting run directory."""
    run_dir = Path(run_dir)
    config = read_forecast_config(run_dir)
    series = SeriesConfig.from_json(config["data"])
    scaler = read_scaler(run_dir)
    model = load_model(run_dir / "model.keras")
    if tuple(model.outputs[0].shape[1:]) != (series.horizon,):
        raise SeqmodelsError(f"{run_dir / 'model.keras'}: predicts {model.outputs[0].shape[1:]}, "
                             f"not the run's horizon {series.horizon}")
    return ForecastRun(run_dir, config, series, scaler, scaler.get("fill", {}), model,
                       read_history(run_dir))


def _model_config():
    """ModelConfig (its module loads Keras, so only when training starts)."""
    from seqmodels.models import ModelConfig

    return ModelConfig


def _override(config: TrainConfig, overrides: dict) -> None:
    """Set the settings that were given (not None)."""
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)


def squared_error(y, outputs):
    """(B, H) targets and forecasts -> (B, H) squared errors (scaled units)."""
    from seqmodels._tf import import_tf

    return import_tf().square(y - outputs)


def predict_scaled(net, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The model's (N, H) forecasts for windows x (N, W, F), in scaled units."""
    if len(x) == 0:
        return np.zeros((0, net.outputs[0].shape[-1]), np.float32)
    return np.concatenate([np.asarray(net(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


def absolute_csv(spec: str) -> str:
    """A CSV argument as an absolute path (a built-in name that is not a file stays a name)."""
    if spec in BUILTIN_SERIES and not Path(spec).exists():
        return spec
    return os.path.abspath(os.path.expanduser(spec))


def train_forecaster(
    series: SeriesConfig | None = None,
    model: Any = None,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
    epochs: int | None = None,
    max_time: float | None = None,
    on_nan: str | None = None,
    log_every: int | None = None,
) -> ForecastRun:
    """Train a forecasting model into a run directory (or resume one) and return the run.

    model is a ModelConfig (default: 1 x 50 LSTM, the tutorial's); epochs, max_time and on_nan
    override the config (also a resumed run's).
    """
    overrides = {"epochs": epochs, "max_time": max_time, "on_nan": on_nan}
    if resume is not None:
        run_dir = Path(resume)
        stored = read_forecast_config(run_dir)
        series = SeriesConfig.from_json(stored["data"])
        try:
            model = _model_config().from_json(stored["model"])
            config = TrainConfig(**stored["train"])
        except TypeError as exc:
            raise SeqmodelsError(f"{run_dir / 'config.json'}: unreadable settings "
                                 f"({exc})") from None
        _override(config, overrides)
        if not os.access(run_dir, os.W_OK):
            raise SeqmodelsError(f"{run_dir}: not writable, so training cannot continue there")
    else:
        series = dataclasses.replace(series or SeriesConfig())
        model = model or _model_config()(layers=1, units=50)
        config = config or TrainConfig(epochs=20, batch_size=32)
        _override(config, overrides)
        run_dir = Path(out) if out else None
        if run_dir is not None and run_dir.exists() and any(
                f.name != LOCK_NAME for f in run_dir.iterdir()):
            raise SeqmodelsError(f"{run_dir} already exists and is not empty; continue it with "
                                 f"--resume {run_dir}, or choose another --out")
    if config.stateful:
        raise SeqmodelsError("forecasting windows are independent; --stateful does not apply")
    config.validate()
    config.seq_len = series.window  # what the windows really are, for config.json
    data = prepare(series)  # before TensorFlow loads, so a bad CSV fails at once
    if resume is not None and stored.get("series_digest") not in (None, data.series.digest):
        raise SeqmodelsError(f"the CSV has changed since {run_dir} was trained; start a new run "
                             "instead of resuming")
    from seqmodels._tf import import_keras, import_tf
    from seqmodels.models import build_regression_model

    tf, keras = import_tf(), import_keras()
    model.validate()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    x_train, y_train, _ = data.windows(0)  # (N, W, F), (N, H)
    x_val, y_val, _ = data.windows(1)
    B = config.batch_size
    steps = math.ceil(len(x_train) / B)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)

    net = build_regression_model(x_train.shape[2], series.horizon, model, series.window)
    optimizer = make_optimizer(config)
    optimizer.build(net.trainable_variables)
    train_step, eval_step = make_steps(net, optimizer, config, objective=squared_error)

    def dataset(epoch: int):
        order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
        return tf.data.Dataset.from_tensor_slices((x_train[order], y_train[order])).batch(B)

    def validate() -> float:
        total, count = 0.0, 0
        for i in range(0, len(x_val), 1024):
            s, n = eval_step(x_val[i:i + 1024], y_val[i:i + 1024])
            total, count = total + float(s), count + int(n)
        return total / count  # mean squared error, scaled units

    def save_best(folder: Path) -> None:
        save_model_atomic(net, folder / "model.keras")

    if run_dir is None:
        run_dir = default_run_dir(model.cell, "series")
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        job = Job(net, optimizer, train_step, dataset, steps, validate, save_best, "series",
                  f"seqmodels forecast train --resume {run_dir}")
        p = Progress()
        if resume is not None:
            remove_stale_temporaries(run_dir)
            latest = load_latest(run_dir)
            if latest is not None:
                restore(job, p, *latest)
            write_config(run_dir, {**stored, "train": vars(config).copy()})
            write_records(job, run_dir, p)
        else:
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            stored_series = dataclasses.replace(data.config, csv=absolute_csv(data.config.csv))
            write_config(run_dir, {
                "kind": KIND, "data": stored_series.to_json(), "model": model.to_json(),
                "train": vars(config).copy(), "series_digest": data.series.digest,
                "rows": {n: len(p_) for n, p_ in zip(PARTS, data.parts)},
                "windows": {n: len(s) for n, s in zip(PARTS, data.starts)},
                "versions": versions(),
            })
            write_json_atomic(run_dir / "scaler.json", {
                "format": SCALER_FORMAT, "version": 1, **data.scaler, "fill": data.fill,
                "fitted_on": f"training part: rows 1-{len(data.parts[0])} of {len(data.series)}",
            })
        if latest_checkpoint(run_dir) is None:
            save(job, run_dir, p)  # step 0, so a kill or a NaN always has a checkpoint
        stop_reason = fit(job, config, run_dir, p, progress, callback, log_every)
    run = load_forecast_run(run_dir)
    run.stop_reason, run.notes = stop_reason, data.notes
    return run
