"""seqmodels: recurrent sequence models (LSTM, GRU, SimpleRNN) with Keras 3 on TensorFlow.

    import seqmodels

    run = seqmodels.train(seqmodels.DataConfig(corpus=["texts/"]),
                          config=seqmodels.TrainConfig(max_time=180), out="runs/mine")
    model = seqmodels.load("runs/mine")          # a LanguageModel you hold
    model.generate("Once upon a time", length=200)
    model.evaluate(text="Another text entirely.\\n")

TensorFlow loads only when a function that needs it runs.
"""

__version__ = "0.1.0"

import logging  # noqa: E402

logging.getLogger("seqmodels").addHandler(logging.NullHandler())  # silent unless shown

from seqmodels.data.config import DataConfig  # noqa: E402
from seqmodels.data.prepare import PreparedCorpus, prepare_corpus  # noqa: E402
from seqmodels.data.tokenizers import (  # noqa: E402
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    make_tokenizer,
)
from seqmodels.data.vocab import Vocabulary  # noqa: E402
from seqmodels.errors import SeqmodelsError  # noqa: E402
from seqmodels.forecast.backtest import backtest_forecaster  # noqa: E402
from seqmodels.forecast.run import ForecastRun, load_forecast_run  # noqa: E402
from seqmodels.forecast.series import SeriesConfig  # noqa: E402
from seqmodels.forecast.train import train_forecaster  # noqa: E402
from seqmodels.lm.config import WindowConfig  # noqa: E402
from seqmodels.lm.evaluate import Metrics  # noqa: E402
from seqmodels.lm.generate import SamplingConfig  # noqa: E402
from seqmodels.lm.model import LanguageModel, load  # noqa: E402
from seqmodels.lm.samples import Samples  # noqa: E402
from seqmodels.lm.sizing import FittedSize, fit_to_budget  # noqa: E402
from seqmodels.lm.train import Run, train  # noqa: E402
from seqmodels.models.config import ModelConfig  # noqa: E402
from seqmodels.progress import show_messages  # noqa: E402
from seqmodels.training.config import RunOptions, TrainConfig  # noqa: E402
from seqmodels.training.rundir import RunDir  # noqa: E402

__all__ = [
    "CharTokenizer", "DataConfig", "FittedSize", "ForecastRun", "LanguageModel", "Metrics",
    "ModelConfig", "PreparedCorpus", "Run", "RunDir", "RunOptions", "Samples", "SamplingConfig",
    "SeqmodelsError", "SeriesConfig", "Tokenizer", "TrainConfig", "Vocabulary", "WindowConfig",
    "WordTokenizer", "__version__", "backtest_forecaster", "fit_to_budget", "load",
    "load_forecast_run", "make_tokenizer", "prepare_corpus", "show_messages", "train",
    "train_forecaster",
]
