"""seqmodels: recurrent sequence models (LSTM, GRU, SimpleRNN) with Keras 3 on TensorFlow."""

from seqmodels.errors import SeqmodelsError

__version__ = "0.1.0"

__all__ = ["SeqmodelsError", "__version__"]
