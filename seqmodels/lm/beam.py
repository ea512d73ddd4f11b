"""Beam search: the continuations a model finds most likely, keeping the best few at each step.

It runs over any step function (ids (B,), states) -> (logits (B, V), states), so it is tested
with fake logits whose best sequence is known, and runs a LanguageModel through its step()."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqmodels.errors import SeqmodelsError

Step = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]
MAX_BEAM = 64


@dataclass
class Hypothesis:
    """One continuation: its ids, the sum of their log-probabilities, and that sum divided by
    its length to the power of the length penalty (what beams are ranked by at the end)."""

    ids: list[int]
    log_prob: float
    score: float


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _normalised(log_prob: float, length: int, penalty: float) -> float:
    return log_prob / max(1, length) ** penalty


def beam_search(step: Step, states: Any, last: int, length: int, beam: int,
                length_penalty: float = 1.0, banned: Sequence[int] = (),
                finished: Callable[[list[int]], bool] | None = None,
                select: Callable[[Any, np.ndarray], Any] | None = None) -> list[Hypothesis]:
    """The `beam` best continuations of at most `length` ids after the token `last`, from the
    states (of one stream) that the tokens before it left. A continuation ends where
    finished(ids) says so, or at `length`; they are ranked by log-probability / length **
    length_penalty (0: the raw sum, which favours short ones). banned ids are never chosen;
    select(states, rows) picks the states of the given beams (default: each state's rows)."""
    if not 1 <= beam <= MAX_BEAM:
        raise SeqmodelsError(f"`beam` must be from 1 to {MAX_BEAM}, not {beam}")
    if length < 1:
        raise SeqmodelsError("`length` must be at least 1")
    if not length_penalty >= 0:
        raise SeqmodelsError("`length_penalty` must be at least 0")
    select = select or (lambda s, rows: [np.asarray(x)[rows] for x in s])
    live: list[list[int]] = [[]]
    sums = np.zeros(1)
    tokens = np.array([last])
    done: list[Hypothesis] = []
    for t in range(length):
        logits, states = step(tokens, states)
        logp = _log_softmax(np.asarray(logits))
        if banned:
            logp[:, list(banned)] = -np.inf
        scores = (sums[:, None] + logp).ravel()
        V = logp.shape[1]
        k = min(len(scores), 2 * beam)  # room for beams that finish here
        order = np.argpartition(-scores, k - 1)[:k]
        order = order[np.argsort(-scores[order], kind="stable")]
        keep_rows, keep_ids, keep_sums = [], [], []
        for flat in order:
            if not np.isfinite(scores[flat]):
                break
            row, token = divmod(int(flat), V)
            ids = live[row] + [token]
            if finished is not None and finished(ids):
                done.append(Hypothesis(ids, float(scores[flat]),
                                       _normalised(float(scores[flat]), len(ids),
                                                   length_penalty)))
            elif len(keep_rows) < beam:
                keep_rows.append(row)
                keep_ids.append(ids)
                keep_sums.append(scores[flat])
        done.sort(key=lambda h: -h.score)
        del done[beam:]
        if not keep_rows:
            break
        if len(done) == beam:  # no live beam can still beat the finished ones?
            best_live = max(keep_sums)  # log-probabilities only fall as a beam grows
            if length_penalty == 0 and best_live <= done[-1].score:
                break
        live, sums = keep_ids, np.array(keep_sums)
        tokens = np.array([ids[-1] for ids in live])
        states = select(states, np.array(keep_rows))
        if t == length - 1:
            done.extend(Hypothesis(ids, float(s), _normalised(float(s), len(ids),
                                                              length_penalty))
                        for ids, s in zip(live, sums))
    done.sort(key=lambda h: -h.score)
    if not done:
        raise SeqmodelsError("the model's outputs are not finite numbers for this text; "
                             "there is nothing to search")
    return done[:beam]
