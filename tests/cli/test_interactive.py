"""`generate-text --interactive`, driven through a pseudo-terminal as a person would."""

import os
import pty
import select
import subprocess
import sys
import time

import pytest


@pytest.fixture(scope="module")
def run(sentence_run):
    return sentence_run


class Terminal:
    """A command on a pseudo-terminal: type lines, wait for text."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True, env={**os.environ, "COLUMNS": "200"})
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until text appears after what earlier calls consumed; returns what came."""
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"waited for {text!r}; the terminal shows {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096).decode("utf-8", "replace")
                except OSError:  # the command ended
                    chunk = ""
                assert chunk, f"the command ended before {text!r}: {self.seen!r}"
                self.seen += chunk
        before, _, self.seen = self.seen.partition(text)
        return before + text

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        try:
            return self.proc.wait(30)
        finally:
            os.close(self.master)


def test_a_prompt_loop_continues_keeps_the_state_and_lets_you_choose(run):
    term = Terminal([sys.executable, "-m", "seqmodels", "generate-text", str(run),
                     "--interactive", "-n", "8", "--seed", "3"])
    try:
        term.expect(":quit")
        term.expect("> ")
        term.type("the cat")
        shown = term.expect("> ")
        assert len(shown.strip()) > len("the cat")  # the continuation came
        term.type(":keep")
        term.expect("keep: on")
        term.type(":choose 2")
        term.expect("choose: among the 2 likeliest")
        term.type("the")
        options = term.expect("pick 1-2")
        assert "1: " in options and "2: " in options and "%)" in options
        term.type("2")
        term.expect("pick 1-2")
        term.type("q")
        term.expect("> ")
        term.type(":quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()


def test_options_that_do_not_apply_are_refused(run):
    from click.testing import CliRunner

    from seqmodels.cli.main import cli

    out = CliRunner().invoke(cli, ["generate-text", str(run), "-i", "--beam", "2"])
    assert out.exit_code == 2 and "--beam do not apply" in out.output


def test_odd_answers_and_bad_prompts_keep_the_session(run):
    """'²' is a digit to str.isdigit but not to int(); a prompt of unknown characters alone is
    an error: both are said in the session, which goes on."""
    import seqmodels
    from seqmodels.lm.generate import SamplingConfig
    from seqmodels.lm.interactive import run_session

    lines = iter([":choose \u00b2", ":choose 2", "the", "\u00b2", "q", "\u00e9\u00e9", ":quit"])
    shown = []
    run_session(seqmodels.load(run), SamplingConfig(seed=1), 4, lambda prompt: next(lines),
                shown.append)
    text = "".join(shown)
    assert "give the number of tokens to choose among" in text
    assert "give a number from 1 to 2" in text
    assert "error: " in text and "empty" in text
