"""Beam search over fake logits whose best sequence is known, and through a trained model."""

import math

import numpy as np
import pytest
from click.testing import CliRunner

from seqmodels.errors import SeqmodelsError
from seqmodels.lm.beam import beam_search

V = 6  # ids: 0 start, 1 A, 2 B, 3 X, 4 Y, 5 end


def table_step(table: dict[int, dict[int, float]]):
    """A step whose next-token probabilities depend on the last token only (its state)."""
    def step(tokens, states):
        logits = np.full((len(tokens), V), -50.0)
        for row, token in enumerate(tokens):
            for nxt, p in table.get(int(token), {}).items():
                logits[row, nxt] = math.log(p)
        return logits, [np.asarray(tokens)]
    return step


# greedy takes A (0.5) and then at best 0.4; B (0.4) is followed by X at 0.9: B X is likelier
GREEDY_TRAP = {0: {1: 0.5, 2: 0.4, 3: 0.1}, 1: {3: 0.4, 4: 0.35, 5: 0.25},
               2: {3: 0.9, 4: 0.1}, 3: {5: 1.0}, 4: {5: 1.0}}


def test_a_beam_finds_the_likelier_sequence_that_greedy_misses():
    step = table_step(GREEDY_TRAP)
    greedy = beam_search(step, [np.zeros(1)], 0, 2, beam=1)[0]
    assert greedy.ids == [1, 3] and greedy.log_prob == pytest.approx(math.log(0.5 * 0.4))
    best = beam_search(step, [np.zeros(1)], 0, 2, beam=2)
    assert best[0].ids == [2, 3] and best[0].log_prob == pytest.approx(math.log(0.4 * 0.9))
    assert best[1].ids == [1, 3]  # the runner-up, ranked after it


def test_length_normalisation_ranks_ended_sequences_per_token():
    """An ending at once (0.45) against four likely tokens (0.55 x 0.8 x 0.8 x 1 = 0.352
    together): by raw log-probability the short one wins; per token the long one."""
    table = {0: {5: 0.45, 1: 0.55}, 1: {2: 0.8, 5: 0.2}, 2: {3: 0.8, 5: 0.2}, 3: {5: 1.0}}
    step = table_step(table)

    def ended(ids):
        return ids[-1] == 5

    raw = beam_search(step, [np.zeros(1)], 0, 5, beam=2, length_penalty=0, finished=ended)
    assert raw[0].ids == [5]
    per_token = beam_search(step, [np.zeros(1)], 0, 5, beam=2, length_penalty=1.0,
                            finished=ended)
    assert per_token[0].ids == [1, 2, 3, 5]
    assert per_token[0].score == pytest.approx(math.log(0.55 * 0.8 * 0.8) / 4)


def test_banned_ids_and_bad_settings():
    step = table_step(GREEDY_TRAP)
    best = beam_search(step, [np.zeros(1)], 0, 2, beam=2, banned=[2])
    assert all(2 not in h.ids for h in best)
    for kwargs, message in (({"beam": 0}, "beam"), ({"beam": 2, "length_penalty": -1},
                                                    "length_penalty")):
        with pytest.raises(SeqmodelsError, match=message):
            beam_search(step, [np.zeros(1)], 0, 2, **kwargs)


@pytest.fixture(scope="module")
def run(sentence_run):
    return sentence_run


def test_a_model_beam_is_at_least_as_likely_as_greedy(run):
    import seqmodels

    model = seqmodels.load(run)
    [greedy] = model.beam_search("the ", 12, beam=1, length_penalty=0)
    best = model.beam_search("the ", 12, beam=4, num_samples=2, length_penalty=0)
    assert best[0]["log_prob"] >= greedy["log_prob"] - 1e-6
    assert best[0]["log_prob"] >= best[1]["log_prob"] and best[0]["tokens"] == 12
    [sampled] = model.generate("the ", 12, seqmodels.SamplingConfig(temperature=0))
    assert greedy["text"] == sampled["text"]  # a beam of one is greedy decoding
    [stopped] = model.beam_search("the ", 40, beam=3, stop_at=".")
    assert stopped["text"].endswith(".") and stopped["text"].count(".") == 1
    with pytest.raises(SeqmodelsError, match="at most beam"):
        model.beam_search("the ", 5, beam=2, num_samples=3)


def test_generate_text_is_the_command_and_generate_its_alias(run):
    from seqmodels.cli.main import cli

    runner = CliRunner()
    out = runner.invoke(cli, ["generate-text", str(run), "--prompt", "the ", "-n", "10",
                              "--beam", "3", "--format", "jsonl"])
    assert out.exit_code == 0, out.output
    assert '"beam": 3' in out.output
    again = runner.invoke(cli, ["generate", str(run), "--prompt", "the ", "-n", "10",
                                "--beam", "3", "--format", "jsonl"])
    assert again.output == out.output  # deterministic: a beam search draws nothing
    assert "generate-text" in runner.invoke(cli, ["--help"]).output
    refused = runner.invoke(cli, ["generate-text", str(run), "--beam", "2", "--top-k", "3"])
    assert refused.exit_code == 2 and "--beam" in refused.output
    alone = runner.invoke(cli, ["generate-text", str(run), "--length-penalty", "0.5"])
    assert alone.exit_code == 2 and "give --beam N" in alone.output
