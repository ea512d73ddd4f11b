"""seqmodels: recurrent sequence models (LSTM, GRU, SimpleRNN) with Keras 3 on TensorFlow."""

from importlib import import_module

from seqmodels.errors import SeqmodelsError

__version__ = "0.1.0"

# Public names, imported on first use so `import seqmodels` (and the CLI's --help) stays fast.
_LAZY = {
    "DataConfig": "seqmodels.prepare",
    "prepare_corpus": "seqmodels.prepare",
    "ModelConfig": "seqmodels.models",
    "TrainConfig": "seqmodels.training",
    "train": "seqmodels.trainer",
    "load_run": "seqmodels.runs",
    "evaluate_run": "seqmodels.evaluation",
    "generate_text": "seqmodels.generation",
    "SamplingConfig": "seqmodels.generation",
    "Run": "seqmodels.runs",
}

__all__ = ["SeqmodelsError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")
