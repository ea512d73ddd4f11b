"""Text generation: prime once, then one single-step call per token with the state carried."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seqmodels.data.tokenizers import NEWLINE, Tokenizer
from seqmodels.data.vocab import PAD_ID, UNK_ID
from seqmodels.errors import SeqmodelsError

if TYPE_CHECKING:
    from seqmodels.lm.model import LanguageModel

CHUNK = 256  # tokens per compiled call (~30 ms for one stream); a sample streams chunk by chunk
OFFSET_WRAP = 2**30  # the per-token seed offset repeats after this many tokens
LONG_LINE = 1024  # word-level tokens without a newline after which a line is settled in parts
# pairs of words NLTK's detokenizer joins ("can not" -> "cannot"); a line is never cut inside one
JOINED_PAIRS = frozenset({("can", "not"), ("gim", "me"), ("gon", "na"), ("got", "ta"),
                          ("lem", "me"), ("wan", "na")})


MAX_SEED = 2**31 - 1  # the seed's range


@dataclass
class SamplingConfig:
    """How to pick each next token."""

    temperature: float = 0.8  # 0: greedy; 0.8, as the samples while training
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None


class Generator:
    """Compiled sampling loop over a language model's one-step model, for S streams at once.

    The sampling settings are compiled in; the seed is an argument, so one Generator serves every
    seed without compiling again."""

    def __init__(self, model: LanguageModel, sampling: SamplingConfig,
                 jit_compile: bool = True) -> None:
        from seqmodels.backend import import_tf
        from seqmodels.lm.sampling import sample_next, validate_sampling

        tf = import_tf()
        validate_sampling(sampling.temperature, sampling.top_k, sampling.top_p)
        self.tf, self.sampling = tf, sampling
        self.step_model = model.step_model()
        self._initial_states = model.initial_state
        step, temperature = self.step_model, sampling.temperature
        # <pad> and <unk> are never text: their logits are -inf (a vocabulary has >= 3 tokens)
        vocab_size = model.vocab_size
        special = np.zeros(vocab_size, np.float32)
        special[[PAD_ID, UNK_ID][: max(0, vocab_size - 1)]] = -np.inf
        special = tf.constant(special)

        @tf.function(reduce_retracing=True, autograph=False)
        def prime(prompt, states):  # prompt (S, P-1): feed all but the last prompt token
            def body(t, states):
                _, states = step(prompt[:, t], states)
                return t + 1, states

            _, states = tf.while_loop(lambda t, s: t < tf.shape(prompt)[1], body, (0, states))
            return states

        @tf.function(reduce_retracing=True, autograph=False, jit_compile=jit_compile)
        def run(token, states, seed, offset, n):  # token (S,) -> tokens (S, n), last, states
            out = tf.TensorArray(tf.int32, size=n)

            def body(i, token, states, out):
                logits, states = step(token, states)  # (S, V)
                logits = tf.cast(logits, tf.float32)
                finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)  # (S,)
                seed_i = tf.random.experimental.stateless_fold_in(seed, offset + i)
                token = sample_next(logits + special, temperature, sampling.top_k,
                                    sampling.top_p, seed=seed_i)
                token = tf.where(finite, token, -1)  # no id: stream() refuses the sample
                return i + 1, tf.maximum(token, 0), states, out.write(i, token)

            _, token, states, out = tf.while_loop(lambda i, *_: i < n, body,
                                                  (0, token, states, out))
            return tf.transpose(out.stack()), token, states

        self._prime, self._run = prime, run
        self.reseed(sampling.seed)

    def reseed(self, seed: int | None) -> None:
        """Draw from this seed from now on (None: a fresh random one)."""
        seed = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = self.tf.constant([seed, 0], self.tf.int64)

    def prime(self, ids: np.ndarray, states: list[Any]) -> list[Any]:
        """The states after feeding ids (S, P) from states, in one compiled loop."""
        return self._prime(self.tf.constant(np.asarray(ids, dtype=np.int32)), states)

    def stream(self, prompts: np.ndarray, length: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
        """Yield generated ids (S, <=chunk) chunk by chunk after priming on prompts (S, P)."""
        tf = self.tf
        prompts = np.asarray(prompts, dtype=np.int32)
        if prompts.ndim != 2 or prompts.shape[1] < 1:
            raise SeqmodelsError("a prompt needs at least one token")
        if length < 1:
            raise SeqmodelsError("`length` must be at least 1")
        states = self.prime(prompts[:, :-1], self._initial_states(prompts.shape[0]))
        token = tf.constant(prompts[:, -1])
        done, size = 0, tf.constant(min(chunk, length))
        while done < length:
            # always the same size (one XLA compilation); the surplus of the last is dropped
            # the step seeds' offset stays int32 (2**31 tokens in, it overflowed into int64)
            ids, token, states = self._run(token, states, self.seed,
                                           tf.constant(done % OFFSET_WRAP), size)
            n = min(chunk, length - done)
            done += n
            ids = ids.numpy()[:, :n]
            if (ids < 0).any():
                raise SeqmodelsError(
                    "the model's outputs are not finite numbers for this text (its weights are "
                    "so large that they overflow: it diverged, e.g. with too high an `lr`); "
                    "there is nothing to sample from")
            yield ids

    def generate(self, prompts: np.ndarray, length: int) -> np.ndarray:
        """All generated ids (S, length) at once."""
        return np.concatenate(list(self.stream(prompts, length, chunk=max(length, 1))), axis=1)


def _training_lines(model: LanguageModel, limit: int = 100_000) -> list[str]:
    """Lines from the start of the model's training text (for a default prompt), if at hand."""
    if NEWLINE in model.vocabulary:
        return []  # the default prompt is then a newline; no need to read the corpus
    from seqmodels.data.prepare import prepare_corpus

    try:
        prepared = prepare_corpus(model.data)
    except SeqmodelsError:
        return []
    # its own vocabulary: a corpus changed since training has other ids (default_prompt keeps
    # only a first token that the run's vocabulary has)
    head = prepared.vocab.decode(np.asarray(prepared.splits.train[:limit]))
    return model.tokenizer.detokenize(head).splitlines()


class SampleText:
    """One sample's text, detokenized a line at a time so that a long sample costs linear time
    and memory; text that later tokens can still change (a word-level line) is held back."""

    def __init__(self, tokenizer: Tokenizer, prompt: str, long_line: int = LONG_LINE) -> None:
        self.detokenize, self.prompt = tokenizer.detokenize, prompt
        self.tokenizer, self.long_line = tokenizer, long_line
        self.pieces: list[str] = []  # text no later token changes
        self.settled = 0  # tokens whose text is in pieces: a word-level line ends there
        self.tokens: list[str] = []  # the tokens after those, of the line not yet ended
        self.tail = ""  # their text
        self.final: str | None = None  # the text once a stop text has ended the sample
        self.given = (0, 0)  # pieces and characters handed out by take_settled

    @property
    def token_count(self) -> int:
        """Tokens in the sample."""
        return self.settled + len(self.tokens)

    def text(self) -> str:
        """The sample's text so far, with the separator it needs after the prompt."""
        if self.final is not None:
            return self.final
        return self._separator() + "".join(self.pieces) + self.tail

    def _separator(self, tail: str | None = None) -> str:
        """' ' where a word-level text needs a space after the prompt (tail: the unsettled text)."""
        first = self.pieces[0] if self.pieces else self.tail if tail is None else tail
        return self.tokenizer.continuation(self.prompt, first)[: -len(first) or None] if first \
            else ""

    def _settled_end(self, n: int, tail: str) -> str:
        """The last n characters of the settled text, separator included."""
        if n <= 0:
            return ""
        end = "".join(self.pieces[-n:])  # each piece holds at least one character
        return (end if len(self.pieces) > n else self._separator(tail) + end)[-n:]

    def add(self, new: list[str], stop_at: str | None = None) -> bool:
        """Append tokens; True when stop_at has ended the sample (tokens after it dropped)."""
        before = len(self.tokens)
        self.tokens.extend(new)
        region = self.detokenize(self.tokens)  # begins a line: the text before it is final,
        if stop_at:  # and was searched, so only its last characters can start a match
            overlap = self._settled_end(len(stop_at) - 1, region)
            if stop_at in overlap + region:
                for n in range(before + 1, len(self.tokens) + 1):  # the first token ending it
                    if stop_at in overlap + self.detokenize(self.tokens[:n]):
                        del self.tokens[n:]
                        break
                separator = self._separator(region)
                whole = separator + "".join(self.pieces) + region
                at = whole.index(stop_at, max(0, len(separator) - len(stop_at) + 1))
                self.final = whole[: at + len(stop_at)]  # a match inside the separator is none
                return True
        whole = self.tokenizer.token_by_token  # every token's text is final at once
        ended = len(self.tokens) if whole else self._line_end(before)
        if ended:
            cut = len(region) if whole else region.rfind(NEWLINE) + 1
            self._settle(ended, region[:cut])
            region = region[cut:]
        elif len(self.tokens) > self.long_line:
            region = self._split_line(region)
        self.tail = region
        return False

    def _settle(self, count: int, text: str) -> None:
        """Move the first count unsettled tokens, whose text is text, into the settled text."""
        self.pieces.append(text)
        self.settled += count
        del self.tokens[:count]

    def _split_line(self, region: str) -> str:
        """Settle most of a long line at a space no later token can change: between two words
        of letters and digits that the detokenizer does not join. Returns the unsettled text."""
        tokens = self.tokens
        for k in range(len(tokens) - 1, max(0, len(tokens) - self.long_line), -1):
            left, right = tokens[k - 1], tokens[k]
            if left.isalnum() and right.isalnum() and (left.lower(), right.lower()) \
                    not in JOINED_PAIRS:
                head, rest = self.detokenize(tokens[:k]) + " ", self.detokenize(tokens[k:])
                if head + rest == region:
                    self._settle(k, head)
                    return rest
                break  # not where it should be: leave the line whole
        return region

    def _line_end(self, before: int) -> int:
        """Tokens up to the last newline token (only those added since before can be one)."""
        for k in range(len(self.tokens) - 1, before - 1, -1):
            if self.tokens[k] == NEWLINE:
                return k + 1
        return 0

    def take_settled(self) -> str:
        """Text no later token changes, not handed out yet (all that is left once stopped)."""
        count, shown = self.given
        if self.final is not None:
            piece = self.final[shown:]
        else:
            piece = "".join(self.pieces[count:])
            piece = (self._separator() + piece) if piece and count == 0 else piece
        self.given = (len(self.pieces), shown + len(piece))
        return piece

    def take_rest(self) -> str:
        """All the text not handed out yet, settled or not."""
        piece = self.text()[self.given[1]:]
        self.given = (len(self.pieces), self.given[1] + len(piece))
        return piece


HELD_BYTES_PER_TOKEN = 8  # a sample's text and bookkeeping, per token, generously
FLOATS_PER_STREAM_UNIT = 16  # states, gates and sampling temporaries per unit and stream


def check_memory(model: LanguageModel, prompt_tokens: int, length: int, num_samples: int,
                 held: bool) -> None:
    """Refuse a batch of samples whose states, or held text, would not fit in memory."""
    from seqmodels.settings import large_number, require_memory

    width = sum(model.units) * FLOATS_PER_STREAM_UNIT
    width += model.vocab_size * 4  # logits, probabilities, sorted copies
    need = num_samples * (4 * width + 4 * prompt_tokens + (HELD_BYTES_PER_TOKEN * length
                                                            if held else 0))
    require_memory(need, f"`num_samples` {large_number(num_samples)} of `length` "
                         f"{large_number(length)}",
                   "generate fewer samples at once or shorter ones (a single sample streams)")


def check_request(length: int, num_samples: int, stop_at: str | None,
                  sampling: SamplingConfig) -> None:
    """Refuse settings of a generate() call that cannot work, before anything is compiled."""
    from seqmodels.lm.sampling import validate_sampling

    for name, value in (("length", length), ("num_samples", num_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SeqmodelsError(f"`{name}` must be a whole number of at least 1, not {value!r}")
    if stop_at == "":
        raise SeqmodelsError("`stop_at` is empty, which would end every sample at once; give the "
                             "text to stop at, or None")
    if sampling.seed is not None and not 0 <= sampling.seed <= MAX_SEED:
        raise SeqmodelsError(f"the `seed` must be from 0 to {MAX_SEED}, not {sampling.seed}")
    validate_sampling(sampling.temperature, sampling.top_k, sampling.top_p)


def generator(model: LanguageModel, sampling: SamplingConfig) -> Generator:
    """The model's compiled sampling loop for these settings: made once, then reseeded."""
    key = ("generator", sampling.temperature, sampling.top_k, sampling.top_p)
    made = model._cache.get(key)
    if made is None:
        made = model._cache[key] = Generator(model, sampling)
    made.reseed(sampling.seed)
    return made


def _prompt_ids(model: LanguageModel, prompt: str | None, skip_unknown: bool,
                seed: int | None) -> tuple[str, list[int]]:
    """The prompt (default: the tokenizer's) as the model continues it, and its ids; what to
    warn about (say, prompt words outside the vocabulary) is a warning."""
    tokenizer = model._text()
    if prompt is None:
        prompt = tokenizer.default_prompt(_training_lines(model) if model.settings else [],
                                          np.random.default_rng(seed))
    ids, notes = tokenizer.encode_prompt(prompt, skip_unknown)
    for note in notes:
        warnings.warn(note, stacklevel=4)
    if notes:  # show the prompt the model really continues
        prompt = tokenizer.decode(ids)
    return prompt, ids


def _check_stop(tokenizer: Tokenizer, stop_at: str | None) -> None:
    never = tokenizer.missing_characters(stop_at or "")
    if never:
        raise SeqmodelsError(f"`stop_at` {stop_at!r} holds {', '.join(map(repr, never))}, "
                             f"which the run's vocabulary lacks, so no sample could ever "
                             f"produce it")


def beam_samples(model: LanguageModel, prompt: str | None, length: int, beam: int,
                 num_samples: int = 1, stop_at: str | None = None,
                 length_penalty: float = 1.0, skip_unknown: bool = False) -> list[dict]:
    """LanguageModel.beam_search: the most likely continuations a beam search finds."""
    from seqmodels.backend import import_tf
    from seqmodels.lm.beam import beam_search

    tf = import_tf()
    check_request(length, num_samples, stop_at, SamplingConfig())
    if isinstance(beam, bool) or not isinstance(beam, int) or num_samples > beam:
        raise SeqmodelsError(f"`num_samples` {num_samples} must be at most `beam` {beam}: a "
                             f"beam keeps that many continuations")
    tokenizer = model._text()
    _check_stop(tokenizer, stop_at)
    prompt, ids = _prompt_ids(model, prompt, skip_unknown, None)
    states = generator(model, SamplingConfig(temperature=0)).prime([ids[:-1]],
                                                                   model.initial_state(1))
    window = 4 * len(stop_at or "") + 4  # tokens that can hold a new match (a byte: 1/4 char)

    def finished(found: list[int]) -> bool:
        return stop_at in tokenizer.decode(found[-window:])

    found = beam_search(model.step, states, ids[-1], length, beam, length_penalty,
                        banned=[PAD_ID, UNK_ID][: max(0, model.vocab_size - 1)],
                        finished=finished if stop_at else None,
                        select=lambda s, rows: [tf.gather(x, rows) for x in s])
    samples = []
    for h in found[:num_samples]:
        text = tokenizer.continuation(prompt, tokenizer.decode(h.ids))
        if stop_at and stop_at in text:
            text = text[: text.index(stop_at) + len(stop_at)]
        samples.append({"prompt": prompt, "text": text, "tokens": len(h.ids),
                        "log_prob": h.log_prob, "score": h.score, "beam": beam,
                        "length_penalty": length_penalty, "length": length})
    return samples


def generate(model: LanguageModel, prompt: str | None, length: int,
             sampling: SamplingConfig | None = None, num_samples: int = 1,
             stop_at: str | None = None, on_text: Callable[[str], None] | None = None,
             skip_unknown: bool = False) -> list[dict[str, Any]]:
    """LanguageModel.generate: samples of a held model; on_text receives a single sample's text
    as it grows; what to warn about (say, prompt words outside the vocabulary) is a warning."""
    sampling = sampling or SamplingConfig()
    check_request(length, num_samples, stop_at, sampling)
    tokenizer = model._text()
    _check_stop(tokenizer, stop_at)
    prompt, ids = _prompt_ids(model, prompt, skip_unknown, sampling.seed)
    check_memory(model, len(ids), length, num_samples, held=num_samples > 1 or not on_text)
    prompts = np.tile(np.asarray(ids, dtype=np.int32), (num_samples, 1))
    samples = [SampleText(tokenizer, prompt) for _ in range(num_samples)]
    done = [False] * num_samples
    if on_text:
        on_text(prompt)
    for chunk in generator(model, sampling).stream(prompts, length):
        for i, row in enumerate(chunk):
            if not done[i]:
                done[i] = samples[i].add(tokenizer.vocabulary.decode(row), stop_at)
        if on_text and (piece := samples[0].take_settled()):
            on_text(piece)
        if all(done):
            break
    if on_text and (piece := samples[0].take_rest()):
        on_text(piece)
    settings = {"temperature": sampling.temperature, "top_k": sampling.top_k,
                "top_p": sampling.top_p, "seed": sampling.seed, "length": length}
    return [{"prompt": prompt, "text": sample.text(), "tokens": sample.token_count, **settings}
            for sample in samples]
