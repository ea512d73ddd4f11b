"""Samples while training: a short text at a fixed prompt and temperature(s), printed and appended
to the run's samples file, every N steps or at every validation (a Keras callback for the loop).

`Samples` holds the settings and imports no TensorFlow, so the CLI can describe the samples
before the run's checks; `SampleCallback` (Keras, loaded on first use) does the work.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from seqmodels.errors import SeqmodelsError
from seqmodels.files import append_text, check_appendable
from seqmodels.progress import logger

MAX_SAMPLE_LENGTH = 10_000  # tokens: a glance at the model while it trains, not a book


@dataclass
class Samples:
    """What to sample while training (see SampleCallback)."""

    every: int | None = None  # global steps between samples; None: at every validation
    prompt: str | None = None
    temperatures: tuple[float, ...] = (0.8,)
    length: int = 200
    seed: int = 0
    show: bool = True

    def callback(self, model):
        """The Keras callback that takes these samples from a LanguageModel as it trains."""
        return _define_callback()(model, self.every, self.prompt, self.temperatures, self.length,
                                  self.seed, self.show)


def __getattr__(name: str):
    """SampleCallback is defined on first use, so importing this module loads no Keras."""
    if name == "SampleCallback":
        globals()[name] = _define_callback()
        return globals()[name]
    raise AttributeError(name)


def _define_callback():
    if "SampleCallback" in globals():
        return globals()["SampleCallback"]
    from seqmodels.backend import first_traces, import_keras

    keras = import_keras()

    class SampleCallback(keras.callbacks.Callback):
        """Generate `length` tokens from the weights a LanguageModel has reached, every `every`
        global steps (None: at each validation); the prompt defaults to a newline, else the
        vocabulary's first token."""

        seqmodels_own = True  # reads no validation: a budget may skip validations for it

        def __init__(self, language_model, every: int | None = None, prompt: str | None = None,
                     temperatures: tuple[float, ...] = (0.8,), length: int = 200, seed: int = 0,
                     show: bool = True) -> None:
            super().__init__()
            if every is not None and every < 1:
                raise SeqmodelsError("`sample_every` must be at least 1")
            if not 1 <= length <= MAX_SAMPLE_LENGTH:
                raise SeqmodelsError(f"`sample_length` must be from 1 to "
                                     f"{MAX_SAMPLE_LENGTH:,}")
            self.language_model = language_model
            self.every, self.prompt, self.temperatures = every, prompt, tuple(temperatures)
            self.length, self.seed, self.show = length, seed, show
            self.global_step = 0
            self._ready = None  # (samples file, prompt ids, generators)

        def on_train_begin(self, logs=None) -> None:
            from seqmodels.lm.generate import Generator, SamplingConfig
            from seqmodels.training.rundir import RunDir

            path = RunDir(self.params["run_dir"]).samples
            check_appendable(path)
            tokenizer = self.language_model.tokenizer
            vocab = tokenizer.vocabulary
            prompt = self.prompt if self.prompt is not None else (
                "\n" if "\n" in vocab else vocab.tokens[min(2, len(vocab) - 1)])
            try:
                ids, dropped = tokenizer.encode_prompt(prompt, skip_unknown=True)
            except SeqmodelsError as exc:  # training goes on; only the samples are given up
                warnings.warn(f"no samples while training: {exc} (`sample_prompt` "
                              f"{prompt!r})", stacklevel=2)
                return
            for note in dropped:  # e.g. characters outside the vocabulary
                warnings.warn(f"samples while training: {note} (`sample_prompt` {prompt!r})",
                              stacklevel=2)
            generators = [Generator(self.language_model, SamplingConfig(t, seed=self.seed),
                                    jit_compile=False) for t in self.temperatures]
            self._ready = (path, ids, generators)

        def on_train_batch_end(self, batch, logs=None) -> None:
            self.global_step = int((logs or {}).get("global_step", self.global_step + 1))
            if self._ready and self.every and self.global_step % self.every == 0:
                self.sample()

        def on_test_end(self, logs=None) -> None:
            if self._ready and self.every is None:
                self.sample()

        def sample(self) -> list[str]:
            """Write one sample per temperature from the current weights; returns the texts."""
            from seqmodels.training.trainer import stop_requested

            path, ids, generators = self._ready
            tokenizer = self.language_model.tokenizer
            texts = []
            with first_traces():
                for generator in generators:
                    if stop_requested():  # Ctrl-C/SIGTERM: keep what is done, stop soon
                        break
                    try:
                        out = generator.generate(np.asarray([ids], np.int32), self.length)[0]
                    except SeqmodelsError as exc:  # a diverging model: no sample, go on
                        warnings.warn(f"no sample at step {self.global_step}: {exc}",
                                      stacklevel=2)
                        break
                    prompt, text = tokenizer.decode(ids), tokenizer.decode(out)
                    texts.append(prompt + tokenizer.continuation(prompt, text))
            if not texts:
                return texts
            append_text(path, "".join(
                f"--- step {self.global_step}, temperature {t:g}\n{text}\n"
                for t, text in zip(self.temperatures, texts)))
            if self.show:
                for t, text in zip(self.temperatures, texts):
                    shown = text.strip()[:300].replace("\n", "\n    ")  # line breaks as written
                    logger.info(f"sample at step {self.global_step} (temperature {t:g}):\n"
                                f"    {shown}")
            return texts

    return SampleCallback
