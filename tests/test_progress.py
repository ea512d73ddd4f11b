"""Bars on a terminal or in a notebook only; messages through the `seqmodels` logger, silent
in the library unless shown, shown by the command line."""

import logging
import sys
import types

from seqmodels import progress


def test_a_bar_is_drawn_on_a_terminal_or_in_a_notebook_only(monkeypatch):
    assert progress.progress_bar(total=1, show=False).disable is True
    assert progress.progress_bar(total=1, show=True).disable is True  # pytest: not a tty
    assert not progress.in_notebook()
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert progress.in_notebook()
    assert progress.progress_bar(total=1, show=True).disable is False
    assert progress.progress_bar(total=1, show=False).disable is True
    terminal = types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: terminal))
    assert not progress.in_notebook()


def test_messages_are_silent_unless_shown(capsys):
    logger = logging.getLogger("seqmodels")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    before = (list(logger.handlers), logger.level)
    logger.info("not shown")
    with progress.messages_shown():
        logger.info("shown, %s", "once")
        logger.debug("below the level")
    logger.info("not shown either")
    assert capsys.readouterr().err == "shown, once\n"
    assert (list(logger.handlers), logger.level) == before
    mine = logging.Handler(logging.WARNING)
    logger.addHandler(mine)
    try:
        with progress.messages_shown():
            pass
        assert mine.level == logging.WARNING and logger.handlers[-1] is mine
    finally:
        logger.removeHandler(mine)
    handler = progress.show_messages()
    try:
        assert progress.show_messages() is handler  # once, however often
        logger.info("shown again")
        assert capsys.readouterr().err == "shown again\n"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[1])


def test_a_library_training_logs_what_the_command_line_prints(tmp_path, cyclic, caplog):
    from seqmodels.data.config import DataConfig
    from seqmodels.lm.train import train
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import RunOptions, TrainConfig

    with caplog.at_level(logging.INFO, logger="seqmodels"):
        train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=8, embedding_dim=4),
              TrainConfig(epochs=1, batch_size=4, steps_per_epoch=3), out=tmp_path / "run",
              options=RunOptions(progress=True))
    said = [r.getMessage() for r in caplog.records if r.name == "seqmodels"]
    assert said[0].startswith(f"Training in {tmp_path / 'run'}: ")
    assert said[-1].startswith("Time: ")
