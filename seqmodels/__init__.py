"""seqmodels: recurrent sequence models (LSTM, GRU, SimpleRNN) with Keras 3 on TensorFlow."""

from importlib import import_module

from seqmodels.errors import SeqmodelsError

__version__ = "0.1.0"

# Public names, imported on first use so `import seqmodels` (and the CLI's --help) stays fast.
_LAZY = {
    "DataConfig": "seqmodels.data.config",
    "prepare_corpus": "seqmodels.data.prepare",
    "ModelConfig": "seqmodels.models.config",
    "TrainConfig": "seqmodels.training.config",
    "train": "seqmodels.lm.train",
    "load_run": "seqmodels.lm.run",
    "evaluate_run": "seqmodels.lm.evaluate",
    "generate_text": "seqmodels.lm.generate",
    "SamplingConfig": "seqmodels.lm.generate",
    "Run": "seqmodels.lm.run",
    "SeriesConfig": "seqmodels.forecast.series",
    "train_forecaster": "seqmodels.forecast.train",
    "load_forecast_run": "seqmodels.forecast.run",
}

__all__ = ["SeqmodelsError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")
