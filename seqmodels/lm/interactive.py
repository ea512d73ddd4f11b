"""An interactive session over a loaded model: each prompt continues at once, from a fresh
state or (kept) from where the last continuation ended; or token by token, the user choosing
each next token among the model's top n (textgenrnn's interactive mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from seqmodels.data.vocab import PAD_ID, UNK_ID
from seqmodels.errors import SeqmodelsError

if TYPE_CHECKING:
    from seqmodels.lm.generate import SamplingConfig
    from seqmodels.lm.model import LanguageModel

HELP = """Type text and press Enter: the model continues it.
  :keep    continue from where the last text ended (toggle; off: each prompt starts afresh)
  :choose N  pick each next token yourself among the N likeliest (0: sample again)
  :help    this text        :quit (or Ctrl-D)  end the session"""


class Session:
    """A loaded model, its compiled sampling loop and (when kept) the state the last text left."""

    def __init__(self, model: LanguageModel, sampling: SamplingConfig, length: int) -> None:
        from seqmodels.lm.generate import generator

        self.model, self.sampling, self.length = model, sampling, length
        self.tokenizer = model._text()
        self.generator = generator(model, sampling)
        self.keep = False
        self.choose = 0  # 0: sample; n: the user picks among the n likeliest
        self.state: list[Any] | None = None  # after the last token fed, when kept
        self.last: int | None = None  # the last token, not fed yet
        self.turns = 0  # texts sampled so far

    def _start(self, prompt: str) -> tuple[list[Any], int]:
        """The state after all but the last token of the prompt (after the kept text, when
        kept), and that last token."""
        ids, _ = self.tokenizer.encode_prompt(prompt, skip_unknown=True)
        if self.keep and self.state is not None:
            state, ids = self.state, [self.last, *ids]
        else:
            state = self.model.initial_state(1)
        return self.generator.prime([ids[:-1]], state), ids[-1]

    def continue_text(self, prompt: str, on_text: Callable[[str], None]) -> str:
        """Sample `length` tokens after the prompt; on_text gets the text as it settles."""
        from seqmodels.backend import import_tf
        from seqmodels.lm.generate import CHUNK, MAX_SEED, SampleText

        tf = import_tf()
        state, last = self._start(prompt)
        sample = SampleText(self.tokenizer, prompt)
        token, done = tf.constant([last]), 0
        while done < self.length:  # the last chunk is cut to size (a compilation of its own),
            n = min(CHUNK, self.length - done)  # so the state kept is that of the text shown
            ids, token, state = self.generator._run(token, state, self.generator.seed,
                                                    tf.constant(done), tf.constant(n))
            done += n
            row = ids.numpy()[0]
            if (row < 0).any():
                raise SeqmodelsError("the model's outputs are not finite numbers for this text")
            sample.add(self.tokenizer.vocabulary.decode(row))
            if piece := sample.take_settled():
                on_text(piece)
        if piece := sample.take_rest():
            on_text(piece)
        self.state, self.last = state, int(token.numpy()[0])
        self.turns += 1  # the next text draws anew (reproducibly, when a seed was given)
        self.generator.reseed(None if self.sampling.seed is None
                              else (self.sampling.seed + self.turns) % (MAX_SEED + 1))
        return sample.text()

    def top(self, state: list[Any], token: int, n: int) -> tuple[list[tuple[int, str, float]],
                                                                 list[Any]]:
        """The n likeliest next tokens after feeding token (id, text, probability), and the
        state after it."""
        logits, state = self.model.step([token], state)
        logits = logits[0].astype(np.float64)
        logits[[PAD_ID, UNK_ID]] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        best = np.argsort(-p, kind="stable")[:n]
        return [(int(i), self.tokenizer.decode([int(i)]), float(p[i])) for i in best], state


def run_session(model: LanguageModel, sampling: SamplingConfig, length: int,
                read: Callable[[str], str], write: Callable[[str], None]) -> None:
    """The prompt loop: read(prompt) returns a line (EOFError ends it); write shows text."""
    session = Session(model, sampling, length)
    write(HELP + "\n")
    while True:
        try:
            line = read("> ")
        except (EOFError, KeyboardInterrupt):
            write("\n")
            return
        command = line.strip()
        if command in (":quit", ":q", ":exit"):
            return
        if command == ":help":
            write(HELP + "\n")
        elif command == ":keep":
            session.keep = not session.keep
            write(f"keep: {'on, the next prompt continues the text' if session.keep else 'off'}"
                  f"\n")
        elif command.startswith(":choose"):
            arg = command[len(":choose"):].strip()
            if not (arg.isascii() and arg.isdigit()):
                write("give the number of tokens to choose among, e.g. :choose 5\n")
                continue
            session.choose = int(arg)
            write(f"choose: {f'among the {arg} likeliest' if session.choose else 'off'}\n")
        elif command.startswith(":"):
            write(f"unknown command {command}; :help lists them\n")
        elif not line:
            write("type a prompt (or :help)\n")
        elif session.choose:
            try:
                _choose(session, line, read, write)
            except SeqmodelsError as exc:
                write(f"error: {exc}\n")
        else:
            try:
                session.continue_text(line, write)
            except SeqmodelsError as exc:
                write(f"error: {exc}")
            write("\n")


def _choose(session: Session, prompt: str, read: Callable[[str], str],
            write: Callable[[str], None]) -> None:
    """Token by token: show the likeliest, read a number (Enter: the first; q: stop)."""
    state, last = session._start(prompt)
    text, chosen = "", []
    for _ in range(session.length):
        options, after = session.top(state, last, session.choose)
        write("  ".join(f"{i + 1}: {t!r} ({p:.0%})" for i, (_, t, p) in enumerate(options))
              + "\n")
        try:
            answer = read(f"{prompt + text}| pick 1-{len(options)}, Enter = 1, q = stop: ")
        except (EOFError, KeyboardInterrupt):
            break
        answer = answer.strip()
        if answer.lower() == "q":
            break
        if answer and not (answer.isascii() and answer.isdigit()
                           and 1 <= int(answer) <= len(options)):
            write(f"give a number from 1 to {len(options)}\n")
            continue
        token = options[int(answer or 1) - 1][0]
        chosen.append(token)
        text = session.tokenizer.continuation(prompt, session.tokenizer.decode(chosen))
        state, last = after, token
    session.state, session.last = state, last
    write(prompt + text + "\n")
