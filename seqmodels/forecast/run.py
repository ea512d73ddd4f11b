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
from seqmodels.training.history import best_val_loss, read_history
from seqmodels.training.rundir import read_config

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

    @property
    def best_val_loss(self) -> float | None:
        """Lowest validation MSE (scaled units) of any epoch."""
        return best_val_loss(self.history)

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
    target = config["data"].get("target") if isinstance(config.get("data"), dict) else ""
    if not (isinstance(target, str) and target):  # training always stores the column it chose
        raise SeqmodelsError(f"{Path(run_dir) / 'config.json'}: damaged ('data.target' must "
                             f"name the column the run forecasts)")
    return config


def read_scaler(run_dir: Path) -> dict:
    """scaler.json: training means and standard deviations, and the fill statistics."""
    path = run_dir / "scaler.json"
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
    run_dir = Path(run_dir)
    config = read_forecast_config(run_dir)
    try:
        series = SeriesConfig.from_json(config["data"]).as_stored()
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: {exc}") from None
    scaler = read_scaler(run_dir)
    from seqmodels.models.builders import check_model

    model = load_model(run_dir / "model.keras")
    if len(model.outputs) == 1 and tuple(model.outputs[0].shape[1:]) != (series.horizon,):
        raise SeqmodelsError(f"{run_dir / 'model.keras'}: predicts {model.outputs[0].shape[1:]}, "
                             f"not the run's horizon {series.horizon}")
    from seqmodels.models.config import ModelConfig

    try:
        shape = ModelConfig.from_json(config["model"])
    except SeqmodelsError as exc:
        raise SeqmodelsError(f"{run_dir / 'config.json'}: {exc}") from None
    check_model(model, str(run_dir / "model.keras"), "float", series.horizon, shape)
    inputs = tuple(model.inputs[0].shape[1:])  # (W, F)
    if len(inputs) != 2 or inputs[0] not in (None, series.window) \
            or inputs[1] != len(series.columns):
        raise SeqmodelsError(f"{run_dir / 'model.keras'}: takes inputs of shape {inputs}, but "
                             f"config.json has windows of --window {series.window} x "
                             f"{len(series.columns)} column(s)")
    if scaler["columns"] != series.columns:
        raise SeqmodelsError(f"{run_dir / 'scaler.json'}: scales the columns "
                             f"{', '.join(scaler['columns'])}, but the run forecasts from "
                             f"{', '.join(series.columns)}")
    return ForecastRun(run_dir, config, series, scaler, scaler.get("fill", {}), model,
                       read_history(run_dir))
