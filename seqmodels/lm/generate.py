"""Text generation: prime once, then one single-step call per token with the state carried."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from seqmodels.data.tokenizers import NEWLINE
from seqmodels.data.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError

CHUNK = 256  # tokens per compiled call (~30 ms for one stream); a sample streams chunk by chunk
OFFSET_WRAP = 2**30  # the per-token seed offset repeats after this many tokens
LONG_LINE = 1024  # word-level tokens without a newline after which a line is settled in parts
# pairs of words NLTK's detokenizer joins ("can not" -> "cannot"); a line is never cut inside one
JOINED_PAIRS = frozenset({("can", "not"), ("gim", "me"), ("gon", "na"), ("got", "ta"),
                          ("lem", "me"), ("wan", "na")})


# Priming reads the prompt one step at a time (~25 us a token on a 2-core CPU): 100,000 take
# seconds, 10 MB would take minutes. A shell cannot pass a longer argument (128 KiB) anyway.
MAX_PROMPT_CHARS = 100_000


MAX_SEED = 2**31 - 1  # --seed's range


@dataclass
class SamplingConfig:
    """How to pick each next token."""

    temperature: float = 1.0  # 0: greedy
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None


class Generator:
    """Compiled sampling loop over a language model's single-step twin, for S streams at once."""

    def __init__(self, model, sampling: SamplingConfig, jit_compile: bool = True) -> None:
        from seqmodels.backend import import_tf
        from seqmodels.lm.sampling import sample_next, validate_sampling
        from seqmodels.models.builders import build_step_model, initial_states

        tf = import_tf()
        validate_sampling(sampling.temperature, sampling.top_k, sampling.top_p)
        self.tf, self.sampling = tf, sampling
        self.step_model = build_step_model(model)
        self._initial_states = lambda n: initial_states(model, n)
        seed = sampling.seed if sampling.seed is not None else int(np.random.SeedSequence()
                                                                     .generate_state(1)[0])
        self.seed = tf.constant([seed, 0], tf.int64)
        step, temperature = self.step_model, sampling.temperature
        # <pad> and <unk> are never text: their logits are -inf (a vocabulary has >= 3 tokens)
        vocab_size = int(model.outputs[0].shape[-1])
        special = np.zeros(vocab_size, np.float32)
        special[[PAD_ID, UNK_ID][: max(0, vocab_size - 1)]] = -np.inf
        special = tf.constant(special)

        @tf.function(reduce_retracing=True)
        def prime(prompt, states):  # prompt (S, P-1): feed all but the last prompt token
            def body(t, states):
                _, states = step(prompt[:, t], states)
                return t + 1, states

            _, states = tf.while_loop(lambda t, s: t < tf.shape(prompt)[1], body, (0, states))
            return states

        @tf.function(reduce_retracing=True, jit_compile=jit_compile)
        def run(token, states, offset, n):  # token (S,) -> tokens (S, n), last token, states
            out = tf.TensorArray(tf.int32, size=n)

            def body(i, token, states, out):
                logits, states = step(token, states)  # (S, V)
                logits = tf.cast(logits, tf.float32)
                finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)  # (S,)
                seed_i = tf.random.experimental.stateless_fold_in(self.seed, offset + i)
                token = sample_next(logits + special, temperature, sampling.top_k,
                                    sampling.top_p, seed=seed_i)
                token = tf.where(finite, token, -1)  # no id: stream() refuses the sample
                return i + 1, tf.maximum(token, 0), states, out.write(i, token)

            _, token, states, out = tf.while_loop(lambda i, *_: i < n, body,
                                                  (0, token, states, out))
            return tf.transpose(out.stack()), token, states

        self._prime, self._run = prime, run

    def stream(self, prompts: np.ndarray, length: int, chunk: int = CHUNK) -> Iterator[np.ndarray]:
        """Yield generated ids (S, <=chunk) chunk by chunk after priming on prompts (S, P)."""
        tf = self.tf
        prompts = np.asarray(prompts, dtype=np.int32)
        if prompts.ndim != 2 or prompts.shape[1] < 1:
            raise SeqmodelsError("a prompt needs at least one token")
        if length < 1:
            raise SeqmodelsError("--length must be at least 1")
        states = self._initial_states(prompts.shape[0])
        states = self._prime(tf.constant(prompts[:, :-1]), states)
        token = tf.constant(prompts[:, -1])
        done, size = 0, tf.constant(min(chunk, length))
        while done < length:
            # always the same size (one XLA compilation); the surplus of the last is dropped
            # the step seeds' offset stays int32 (2**31 tokens in, it overflowed into int64)
            ids, token, states = self._run(token, states, tf.constant(done % OFFSET_WRAP), size)
            n = min(chunk, length - done)
            done += n
            ids = ids.numpy()[:, :n]
            if (ids < 0).any():
                raise SeqmodelsError(
                    "the model's outputs are not finite numbers for this text (its weights are "
                    "so large that they overflow: it diverged, e.g. with too high an --lr); "
                    "there is nothing to sample from")
            yield ids

    def generate(self, prompts: np.ndarray, length: int) -> np.ndarray:
        """All generated ids (S, length) at once."""
        return np.concatenate(list(self.stream(prompts, length, chunk=max(length, 1))), axis=1)


def encode_prompt(text: str, tokenizer, vocab: Vocabulary, skip_unknown: bool = False,
                  normal_form: str = "none", lowercase: bool = False
                  ) -> tuple[list[int], list[str]]:
    """Prompt ids and warnings; unknown characters are an error unless skipped (char level).
    normal_form and lowercase: the run's --normalize and --lowercase, applied as to its corpus."""
    from seqmodels.data.corpus import normalise

    if len(text) > MAX_PROMPT_CHARS:
        raise SeqmodelsError(f"the prompt has {len(text):,} characters; at most "
                             f"{MAX_PROMPT_CHARS:,} are supported")
    tokens = tokenizer.tokenize(normalise(text, normal_form, lowercase))
    if text.strip() and not tokens and tokenizer.stopwords:
        raise SeqmodelsError("the prompt holds only the run's stopwords, which its tokenizer "
                             "removes; give other words")
    unknown = [t for t in tokens if t not in vocab or t == UNK]
    warnings = []
    if unknown and tokenizer.level == "char":
        if not skip_unknown:
            shown = ", ".join(repr(c) for c in dict.fromkeys(unknown))
            raise SeqmodelsError(f"the prompt has characters outside the vocabulary: {shown} "
                                 f"(pass --skip-unknown to drop them)")
        tokens = [t for t in tokens if t in vocab and t != UNK]
        warnings.append(f"dropped {len(unknown)} unknown character(s) from the prompt")
    elif unknown:
        shown = ", ".join(repr(w) for w in dict.fromkeys(unknown))
        warnings.append(f"prompt words outside the vocabulary become <unk>: {shown}")
    ids = [vocab.index.get(t, UNK_ID) for t in tokens]
    if not ids:
        raise SeqmodelsError("the prompt is empty" + (" after dropping unknown characters"
                                                      if unknown else ""))
    return ids, warnings


def default_prompt(vocab: Vocabulary, lines: list[str] | None = None,
                   rng: np.random.Generator | None = None, level: str = "char") -> str:
    """A newline if the vocabulary has one, else the first character/word of a random line."""
    if "\n" in vocab:
        return "\n"
    rng = rng or np.random.default_rng()
    candidates = [line for line in (lines or []) if line.strip()]
    if candidates:
        line = candidates[int(rng.integers(len(candidates)))].lstrip()
        first = line[0] if level == "char" else line.split()[0]
        if first in vocab and first not in (PAD, UNK):  # the text may hold "<unk>" itself
            return first
    return vocab.tokens[2] if len(vocab) > 2 else UNK


def _training_lines(run, tokenizer, limit: int = 100_000) -> list[str]:
    """Lines from the start of the run's training text (for a default prompt), if at hand."""
    if "\n" in run.vocab:
        return []  # the default prompt is then a newline; no need to read the corpus
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import prepare_corpus

    try:
        prepared = prepare_corpus(DataConfig.from_json(run.config["data"]))
    except SeqmodelsError:
        return []
    # its own vocabulary: a corpus changed since training has other ids (default_prompt keeps
    # only a first token that the run's vocabulary has)
    head = prepared.vocab.decode(np.asarray(prepared.splits.train[:limit]))
    return tokenizer.detokenize(head).splitlines()


def _joined(prompt: str, text: str, level: str) -> str:
    """The separator a word-level continuation needs after its prompt."""
    if level == "char" or not prompt or not text or prompt[-1].isspace() or text[0].isspace():
        return text
    return text if text[0] in ".,;:!?)]}'\"" else " " + text


class SampleText:
    """One sample's text, detokenized a line at a time so that a long sample costs linear time
    and memory; text that later tokens can still change (a word-level line) is held back."""

    def __init__(self, detokenize: Callable[[list[str]], str], prompt: str, level: str,
                 long_line: int = LONG_LINE) -> None:
        self.detokenize, self.prompt, self.level = detokenize, prompt, level
        self.long_line = long_line
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
        return _joined(self.prompt, first, self.level)[: -len(first) or None] if first else ""

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
        ended = len(self.tokens) if self.level == "char" else self._line_end(before)
        if ended:
            cut = len(region) if self.level == "char" else region.rfind(NEWLINE) + 1
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


def check_memory(model, prompt_tokens: int, length: int, num_samples: int, held: bool) -> None:
    """Refuse a batch of samples whose states, or held text, would not fit in memory."""
    from seqmodels.models.builders import recurrent_layers
    from seqmodels.settings import large_number, require_memory

    width = sum(rl.units for rl in recurrent_layers(model)) * FLOATS_PER_STREAM_UNIT
    width += model.get_layer("logits").units * 4  # logits, probabilities, sorted copies
    need = num_samples * (4 * width + 4 * prompt_tokens + (HELD_BYTES_PER_TOKEN * length
                                                            if held else 0))
    require_memory(need, f"--num-samples {large_number(num_samples)} of --length "
                         f"{large_number(length)}",
                   "generate fewer samples at once or shorter ones (a single sample streams)")


def generate_text(
    run_dir,
    prompt: str | None,
    length: int,
    sampling: SamplingConfig,
    num_samples: int = 1,
    stop_at: str | None = None,
    skip_unknown: bool = False,
    on_text=None,
    on_warning=None,
) -> list[dict]:
    """Generate from a run directory; on_text receives a single sample's text as it grows."""
    from seqmodels.data.config import DataConfig
    from seqmodels.data.prepare import make_tokenizer
    from seqmodels.lm.run import load_run

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise SeqmodelsError(f"num_samples must be a whole number of at least 1, not "
                             f"{num_samples!r}")
    if stop_at == "":
        raise SeqmodelsError("stop_at is empty, which would end every sample at once; give the "
                             "text to stop at, or None")
    if sampling.seed is not None and not 0 <= sampling.seed <= MAX_SEED:
        raise SeqmodelsError(f"the seed must be from 0 to {MAX_SEED}, not {sampling.seed}")
    run = load_run(run_dir)
    data = DataConfig.from_json(run.config["data"])
    tokenizer = make_tokenizer(data)
    never = sorted({c for c in stop_at or "" if c not in run.vocab}) if data.level == "char" \
        else []
    if never:
        raise SeqmodelsError(f"--stop-at {stop_at!r} holds {', '.join(map(repr, never))}, which "
                             f"the run's vocabulary lacks, so no sample could ever produce it")
    if prompt is None:
        prompt = default_prompt(run.vocab, _training_lines(run, tokenizer),
                                np.random.default_rng(sampling.seed), data.level)
    ids, warnings = encode_prompt(prompt, tokenizer, run.vocab, skip_unknown, data.normalize,
                                  data.lowercase)
    for w in warnings:
        if on_warning:
            on_warning(w)
    if warnings:  # show the prompt the model really continues
        prompt = tokenizer.detokenize(run.vocab.decode(ids))
    check_memory(run.model, len(ids), length, num_samples, held=num_samples > 1 or not on_text)
    generator = Generator(run.model, sampling)
    prompts = np.tile(np.asarray(ids, dtype=np.int32), (num_samples, 1))
    samples = [SampleText(tokenizer.detokenize, prompt, data.level) for _ in range(num_samples)]
    done = [False] * num_samples
    if on_text:
        on_text(prompt)
    for chunk in generator.stream(prompts, length):
        for i, row in enumerate(chunk):
            if not done[i]:
                done[i] = samples[i].add(run.vocab.decode(row), stop_at)
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
