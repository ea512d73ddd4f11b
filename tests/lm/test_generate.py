"""Generation: greedy equals the full model's argmax, seeds, batches, prompts, stop-at, CLI."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import seqmodels
from seqmodels.cli.main import cli
from seqmodels.data.tokenizers import CharTokenizer, WordTokenizer
from seqmodels.data.vocab import UNK_ID, Vocabulary
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.generate import Generator, SampleText, SamplingConfig
from seqmodels.lm.model import LanguageModel
from seqmodels.models.config import ModelConfig

KINDS = {"char": CharTokenizer, "word": WordTokenizer}


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    return LanguageModel.build(ModelConfig(cell="lstm", layers=2, units=12, embedding_dim=6),
                               vocab_size=11)


def test_greedy_equals_argmax_of_the_full_model(model):
    prompt = np.array([[3, 5, 7]], dtype=np.int32)
    out = Generator(model, SamplingConfig(temperature=0)).generate(prompt, 20)[0]
    seq = list(prompt[0])
    for token in out:
        logits = np.asarray(model(np.array([seq], dtype=np.int32)))[0, -1]
        assert token == int(np.argmax(logits))
        seq.append(int(token))


def test_same_seed_same_text_any_chunking(model):
    prompts = np.array([[2], [2], [4]], dtype=np.int32)
    config = SamplingConfig(temperature=1.0, seed=7)
    a = Generator(model, config).generate(prompts, 50)
    b = np.concatenate(list(Generator(model, config).stream(prompts, 50, chunk=16)), axis=1)
    c = Generator(model, SamplingConfig(temperature=1.0, seed=8)).generate(prompts, 50)
    assert a.shape == (3, 50) and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # rows of a batch are independent samples


def test_the_step_seed_offset_stays_int32_however_long_the_stream(model, monkeypatch):
    """2**31 tokens into one stream the offset became int64 and the compiled loop failed; it
    now wraps below 2**30, where offset + step cannot leave int32."""
    import seqmodels.lm.generate as gen

    generator = Generator(model, SamplingConfig(temperature=1.0, seed=3))
    prompts = np.array([[2]], dtype=np.int32)
    offsets = []
    run = generator._run

    def recording(token, states, seed, offset, n):
        offsets.append((int(offset), offset.dtype.name))
        return run(token, states, seed, offset, n)

    monkeypatch.setattr(generator, "_run", recording)
    monkeypatch.setattr(gen, "OFFSET_WRAP", 40)
    list(generator.stream(prompts, 100, chunk=16))
    assert offsets == [(16 * i % 40, "int32") for i in range(7)]
    ids, _, _ = run(prompts[:, 0], generator._initial_states(1), generator.seed,
                    generator.tf.constant(2**30 - 1), 256)
    assert ids.shape == (1, 256)


def test_top_k_one_is_greedy(model):
    prompt = np.array([[1, 2]], dtype=np.int32)
    greedy = Generator(model, SamplingConfig(temperature=0)).generate(prompt, 15)
    top1 = Generator(model, SamplingConfig(temperature=1.5, top_k=1, seed=3)).generate(prompt, 15)
    assert np.array_equal(greedy, top1)


def test_prompt_outside_the_vocabulary():
    vocab = Vocabulary.from_tokens("abc \n")
    chars = CharTokenizer(vocabulary=vocab)
    with pytest.raises(SeqmodelsError, match=r"outside the vocabulary: 'x', 'é'"):
        chars.encode_prompt("abxéx")
    ids, warnings = chars.encode_prompt("abxéx", skip_unknown=True)
    assert ids == [vocab.index["a"], vocab.index["b"]] and "dropped 3" in warnings[0]
    words = Vocabulary.from_tokens(["the", "cat", "\n"])
    ids, warnings = WordTokenizer(vocabulary=words).encode_prompt("the dog")
    assert ids == [words.index["the"], UNK_ID] and "'dog'" in warnings[0]


def test_the_prompt_is_normalised_and_lowercased_as_the_corpus_was():
    """A --lowercase, NFC run: 'CAFÉ' and a decomposed 'café' (e + U+0301) find 'é'."""
    vocab = Vocabulary.from_tokens("acfé \n")
    expected = [vocab.index[c] for c in "café"]
    for typed in ("CAFÉ", "cafe\u0301", "Cafe\u0301"):
        ids, warnings = CharTokenizer(lowercase=True, vocabulary=vocab).encode_prompt(typed)
        assert ids == expected and not warnings
    with pytest.raises(SeqmodelsError, match="outside the vocabulary"):  # as before, unasked
        CharTokenizer(vocabulary=vocab).encode_prompt("CAFÉ")
    words = Vocabulary.from_tokens(["café", "über", "\n"])
    ids, warnings = WordTokenizer("whitespace", lowercase=True,
                                  vocabulary=words).encode_prompt("Café Über")
    assert ids == [words.index["café"], words.index["über"]] and not warnings
    with pytest.raises(SeqmodelsError, match="only the run's stopwords"):  # not "empty"
        WordTokenizer("whitespace", ["the"], lowercase=True,
                      vocabulary=words).encode_prompt("THE the")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_tiny):
    root = tmp_path_factory.mktemp("gen")
    corpus = root / "c.txt"
    corpus.write_text("the cat sat on the mat .\nthe dog sat on the log .\n" * 80)
    return {level: train_tiny(corpus, root / level, level=level, cache_dir=root / "cache",
                              epochs=3, batch_size=8, seq_len=12, lr=0.01)
            for level in ("char", "word", "byte", "subword")}


@pytest.mark.parametrize("level", ["char", "word", "byte", "subword"])
def test_streamed_pieces_add_up_to_the_sample(runs, level):
    pieces = []
    [sample] = seqmodels.load(runs[level]).generate("the", 40, SamplingConfig(seed=1),
                                                    on_text=pieces.append)
    assert "".join(pieces) == sample["prompt"] + sample["text"]
    assert sample["tokens"] == 40 and len(pieces) >= 2


def test_stop_at_ends_each_sample(runs):
    samples = seqmodels.load(runs["char"]).generate(
        "the", 200, SamplingConfig(temperature=0.5, seed=2), num_samples=3, stop_at="\n")
    for s in samples:
        assert s["text"].count("\n") == 1 and s["text"].endswith("\n")
        assert s["tokens"] == len(s["text"])  # char level: tokens produced up to the stop


@pytest.mark.parametrize("length,num_samples", [(10.5, 1), (True, 1), (10, 2.0)])
def test_a_length_or_count_that_is_not_a_whole_number_is_refused_by_name(runs, length,
                                                                          num_samples):
    """generate(run, "the", 10.5) gave TensorFlow's TypeError."""
    name = "length" if num_samples == 1 else "num_samples"
    with pytest.raises(SeqmodelsError, match=f"{name} must be a whole number of at least 1"):
        seqmodels.load(runs["char"]).generate("the", length, num_samples=num_samples)


def test_generate_cli_text_and_jsonl(runs):
    result = CliRunner().invoke(cli, ["generate", str(runs["word"]), "--prompt", "the cat",
                                      "-n", "20", "--seed", "4", "-t", "0.8", "--top-p", "0.9"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("the cat")
    again = CliRunner().invoke(cli, ["generate", str(runs["word"]), "--prompt", "the cat",
                                     "-n", "20", "--seed", "4", "-t", "0.8", "--top-p", "0.9"])
    assert again.output == result.output  # same seed, same text
    result = CliRunner().invoke(cli, ["generate", str(runs["char"]), "-s", "3", "-n", "30",
                                      "--format", "jsonl", "--top-k", "3", "--seed", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["sample"] for r in rows] == [0, 1, 2]
    assert all(r["top_k"] == 3 and r["seed"] == 1 and r["tokens"] == 30 for r in rows)


@pytest.mark.parametrize("extra", [["--seed", "1"], ["--num-samples", "2"],
                                   ["--format", "jsonl"], ["--beam", "2"]])
def test_a_terminal_that_cannot_show_the_text_gets_question_marks_and_one_warning(runs, extra):
    """Under LC_ALL=en_US.ISO-8859-1 a Greek prompt ended in a UnicodeEncodeError traceback."""
    result = CliRunner(charset="latin-1").invoke(cli, [
        "generate-text", str(runs["byte"]), "--prompt", "the \u03b1\u03b2 caf\u00e9", "-n", "8",
        *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "\u03b1" not in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    if "jsonl" in extra:  # JSON keeps every character, as \u escapes
        assert json.loads(result.stdout.splitlines()[0])["prompt"] == "the \u03b1\u03b2 caf\u00e9"
        assert warnings == []
        return
    assert "the ?? caf\u00e9" in result.stdout  # what latin-1 has stays
    assert len(warnings) == 1 and "latin-1" in warnings[0] and "shown as '?'" in warnings[0]


def test_generate_cli_unknown_prompt_is_one_line(runs):
    result = CliRunner().invoke(cli, ["generate", str(runs["char"]), "--prompt", "the ©"])
    assert result.exit_code == 1 and "'©'" in result.output and "--skip-unknown" in result.output
    result = CliRunner().invoke(cli, ["generate", str(runs["char"]), "--prompt", "the ©",
                                      "--skip-unknown", "-n", "5"])
    assert result.exit_code == 0 and result.stdout.startswith("the ")  # continues "the "
    assert "©" not in result.stdout
    assert "dropped 1 unknown character" in result.stderr


def test_default_prompt():
    newline = CharTokenizer(vocabulary=Vocabulary.from_tokens("ab\n"))
    assert newline.default_prompt() == "\n"
    lines = ["Alpha beta", "", "Gamma delta"]
    rng = np.random.default_rng(0)
    words = WordTokenizer(vocabulary=Vocabulary.from_tokens(["Alpha", "beta", "Gamma", "delta"]))
    assert {words.default_prompt(lines, rng) for _ in range(20)} == {"Alpha", "Gamma"}
    chars = CharTokenizer(vocabulary=Vocabulary.from_tokens("AlphaGamma"))
    assert {chars.default_prompt(lines, rng) for _ in range(20)} == {"A", "G"}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_cell_generates_and_evaluates(cell):
    from seqmodels.lm.evaluate import evaluate_ids

    net = LanguageModel.build(ModelConfig(cell=cell, layers=2, units=8, embedding_dim=4),
                              vocab_size=9)
    prompts = np.array([[2, 3], [4, 5]], dtype=np.int32)
    greedy = Generator(net, SamplingConfig(temperature=0)).generate(prompts, 12)
    seq = list(prompts[0])
    for token in greedy[0]:
        logits = np.asarray(net(np.array([seq], np.int32)))[0, -1]
        assert token == 2 + int(np.argmax(logits[2:]))  # never <pad> (0) or <unk> (1)
        seq.append(int(token))
    ids = np.random.default_rng(1).integers(0, 9, 300).astype(np.int32)
    full = np.asarray(net(ids[None, :-1]))[0]
    shifted = full - full.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = -np.mean(log_p[np.arange(299), ids[1:]])
    assert evaluate_ids(net, ids).cross_entropy == pytest.approx(expected, rel=1e-5)


WORD_TOKENS = ["the", "cat", "do", "n't", ",", ".", "``", "''", "(", ")", "'s", "\n", "$", "--",
               "can", "not", "gon", "na", "'t", "is", "..."]


def _stop(stop_at, text, body):
    """Where stop_at ends in text, body joined to its prompt; a match inside the separator
    (the space before a word-level body) does not count. -1: nowhere."""
    if not stop_at:
        return -1
    at = text.find(stop_at, max(0, len(text) - len(body) - len(stop_at) + 1))
    return -1 if at < 0 else at + len(stop_at)


def _whole_text(tokens, chunk, tokenizer, prompt, stop_at):
    """A sample's text and token count found as generate_text once did: by detokenizing all of
    it after every chunk."""
    kept: list[str] = []
    for start in range(0, len(tokens), chunk):
        before = len(kept)
        kept.extend(tokens[start : start + chunk])
        body = tokenizer.detokenize(kept)
        text = tokenizer.continuation(prompt, body)
        end = _stop(stop_at, text, body)
        if end >= 0:
            for n in range(before + 1, len(kept) + 1):
                part = tokenizer.detokenize(kept[:n])
                if _stop(stop_at, tokenizer.continuation(prompt, part), part) >= 0:
                    del kept[n:]
                    break
            return text[:end], len(kept)
    return tokenizer.continuation(prompt, tokenizer.detokenize(kept)), len(kept)


@settings(max_examples=200, deadline=None)
@given(level=st.sampled_from(["word", "char"]), data=st.data(),
       chunk=st.integers(1, 7), prompt=st.sampled_from(["", "a", "a ", "x\n"]),
       stop_at=st.sampled_from([None, "\n", ".", "cat", " the", "n't", '"', "e c", "\n\n", " "]),
       long_line=st.sampled_from([3, 8, 1024]))
def test_line_by_line_text_equals_detokenizing_it_all(level, data, chunk, prompt, stop_at,
                                                      long_line):
    """SampleText keeps only the current line unsettled; its text, token count, stop and
    streamed pieces are what detokenizing the whole sample after every chunk gives."""
    alphabet = WORD_TOKENS if level == "word" else list("the cat.\n'\"")
    tokens = data.draw(st.lists(st.sampled_from(alphabet), max_size=40))
    tokenizer = KINDS[level]()
    sample = SampleText(tokenizer, prompt, long_line=long_line)
    streamed = ""
    for start in range(0, len(tokens), chunk):
        stopped = sample.add(tokens[start : start + chunk], stop_at)
        streamed += sample.take_settled()
        assert sample.text().startswith(streamed)
        if stopped:
            break
    streamed += sample.take_rest()
    expected = _whole_text(tokens, chunk, tokenizer, prompt, stop_at)
    assert (sample.text(), sample.token_count) == expected
    assert streamed == expected[0]


def test_a_long_word_level_sample_is_detokenized_a_line_at_a_time(monkeypatch):
    """A 20,000-token sample used to be detokenized whole every chunk (quadratic time); now
    each token passes through the detokenizer a bounded number of times."""
    tokenizer, counted = WordTokenizer(), WordTokenizer()
    seen = []

    def counting(tokens):
        seen.append(len(tokens))
        return tokenizer.detokenize(tokens)

    counted.detokenize = counting
    line = ["the", "cat", "sat", ",", "and", "the", "dog", "ran", ".", "\n"]
    tokens = line * 2000
    sample = SampleText(counted, "")
    for start in range(0, len(tokens), 256):
        sample.add(tokens[start : start + 256], stop_at="never there")
        sample.take_settled()
    assert sample.text() == tokenizer.detokenize(tokens)
    assert sum(seen) <= 2 * len(tokens)


def test_a_byte_level_model_takes_any_prompt_and_writes_utf8(runs):
    """Byte level: no character is unknown, and what it writes decodes (U+FFFD at worst)."""
    model = seqmodels.load(runs["byte"])
    [sample] = model.generate("the © caf\u00e9", 60, SamplingConfig(seed=3))
    assert sample["prompt"] == "the © caf\u00e9" and sample["tokens"] == 60
    assert model.evaluate(text="the © sat.\n").oov == 0


def test_levels_compare_per_character_over_the_same_characters(runs):
    """The same text scored at every level: per-character figures divide each level's total
    nats by the text's own character count, so one number compares char, word and subword."""
    text = "the cat sat on the log .\nthe dog sat on the mat .\n"
    for level in ("char", "word", "subword"):
        m = seqmodels.load(runs[level]).evaluate(text=text)
        assert m.characters == len(text)
        assert m.nats_per_char == pytest.approx(m.cross_entropy * m.tokens / len(text))
        assert m.bits_per_char == pytest.approx(m.nats_per_char / math.log(2))
    windowed = seqmodels.load(runs["word"]).evaluate(text=text, context=4)  # tail unscored
    assert windowed.characters < len(text)


def test_a_subword_model_writes_words_and_keeps_its_merges(runs):
    model = seqmodels.load(runs["subword"])
    assert model.tokenizer.level == "subword" and model.vocabulary.merges
    assert len(model.tokenizer.encode("the cat sat")) < len("the cat sat") / 2
    history = (runs["subword"] / "history.csv").read_text().splitlines()
    assert "val_bits_per_char" in history[0].split(",")
