"""A trained forecasting run: its settings, scaler, best model and history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqmodels.errors import SeqmodelsError
from seqmodels.files import check_format, read_json
from seqmodels.forecast.series import (
    SeriesConfig,
)
from seqmodels.models.saving import load_model
from seqmodels.settings import is_finite
from seqmodels.training.history import best_val_loss
from seqmodels.training.rundir import RunDir

KIND = "forecast"
SCALER_FORMAT = "seqmodels.scaler"


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
    choice: dict | None = None  # which forecast the run gives (see forecast.choice)

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation MSE (scaled units) of any epoch."""
        return best_val_loss(self.history)

    @property
    def best_val_rmse(self) -> float | None:
        """Best validation RMSE in the target's original units."""
        best = self.best_val_loss
        return None if best is None else math.sqrt(best) * self.scaler["std"][0]


WINDOW_SETTINGS = ("seq_len", "stride", "stateful", "eval_tokens")  # version 1 stored them


def read_forecast_config(run_dir: str | Path | RunDir) -> dict:
    """config.json of a forecasting run (a language-model run is refused)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    config = run.read_config()
    if config.get("kind") != KIND:
        raise SeqmodelsError(f"{run} is a language-model run; use seqmodels evaluate or "
                             f"generate on it")
    target = config["data"].get("target") if isinstance(config.get("data"), dict) else ""
    if not (isinstance(target, str) and target):  # training always stores the column it chose
        raise SeqmodelsError(f"{run.config}: damaged ('data.target' must name the column the "
                             f"run forecasts)")
    if config["version"] == 1:  # its training section repeated the window as seq_len
        for name in WINDOW_SETTINGS:
            config["train"].pop(name, None)
    return config


def read_scaler(run_dir: Path | RunDir) -> dict:
    """The scaler: training means and standard deviations, and the fill statistics."""
    path = (run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)).scaler
    data = check_format(read_json(path, 2**20), SCALER_FORMAT, 1, str(path), "scaler")
    columns, mean, std = (data.get(k) for k in ("columns", "mean", "std"))
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        raise SeqmodelsError(f"{path}: damaged scaler ('columns' must be a list of names)")
    for name, values in (("mean", mean), ("std", std)):
        if not (isinstance(values, list) and len(values) == len(columns)
                and all(is_finite(v) for v in values)):
            raise SeqmodelsError(f"{path}: damaged scaler ('{name}' must hold one finite number "
                                 f"per column)")
    if not all(v > 0 for v in std):
        raise SeqmodelsError(f"{path}: damaged scaler (a standard deviation that is not "
                             f"positive: {std})"[:300])
    fill = data.get("fill", {})
    if not (isinstance(fill, dict) and all(isinstance(k, str) and is_finite(v)
                                           for k, v in fill.items())):
        raise SeqmodelsError(f"{path}: damaged scaler ('fill' must map columns to numbers)")
    return data



def load_forecast_run(run_dir: str | Path) -> ForecastRun:
    """Settings, scaler, best model and history of a forecasting run directory."""
    run = RunDir(run_dir)
    config = read_forecast_config(run)
    try:
        series = SeriesConfig.from_json(config["data"]).as_stored()
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run.config}: {exc}") from None
    scaler = read_scaler(run)
    from seqmodels.models.builders import check_model

    model = load_model(run.model)
    if len(model.outputs) == 1 and tuple(model.outputs[0].shape[1:]) != (series.horizon,):
        raise SeqmodelsError(f"{run.model}: predicts {model.outputs[0].shape[1:]}, not the run's "
                             f"horizon {series.horizon}")
    from seqmodels.models.config import ModelConfig

    try:
        shape = ModelConfig.from_json(config["model"])
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run.config}: {exc}") from None
    check_model(model, str(run.model), "float", series.horizon, shape)
    inputs = tuple(model.inputs[0].shape[1:])  # (W, F)
    if len(inputs) != 2 or inputs[0] not in (None, series.window) \
            or inputs[1] != series.inputs:
        raise SeqmodelsError(f"{run.model}: takes inputs of shape {inputs}, but the run's "
                             f"settings have windows of `window` {series.window} x "
                             f"{series.inputs} column(s)")
    if scaler["columns"] != series.columns:
        raise SeqmodelsError(f"{run.scaler}: scales the columns "
                             f"{', '.join(scaler['columns'])}, but the run forecasts from "
                             f"{', '.join(series.columns)}")
    from seqmodels.forecast.choice import read_choice

    return ForecastRun(run.path, config, series, scaler, scaler.get("fill", {}), model,
                       run.read_history(), choice=read_choice(run))
