"""One source of defaults: every option named like a setting shows that setting's default."""

import dataclasses

import click
import pytest

from seqmodels.cli.main import cli
from seqmodels.data.config import DataConfig
from seqmodels.forecast.defaults import default_model, default_train_config
from seqmodels.forecast.series import SeriesConfig
from seqmodels.models.config import CELL_NAMES, ModelConfig
from seqmodels.training.config import OPTIMIZERS, SCHEDULES, TrainConfig


def _defaults(*path: str) -> dict[str, object]:
    """The value every option of the command at path takes when not given (after its type and
    callback: --splits becomes a tuple, a flag False)."""
    command = cli
    for name in path:
        command = command.commands[name]
    ctx = click.Context(command)
    return {p.name: p.process_value(ctx, p.get_default(ctx)) for p in command.params
            if isinstance(p, click.Option)}


def _fields(*configs) -> dict[str, object]:
    return {f.name: getattr(c, f.name) for c in configs for f in dataclasses.fields(c)}


@pytest.mark.parametrize("path, configs", [
    (("train",), (DataConfig(), ModelConfig(), TrainConfig())),
    (("forecast", "train"), (SeriesConfig(), default_model(), default_train_config())),
    (("corpus",), (DataConfig(), TrainConfig())),
])
def test_option_defaults_are_the_config_defaults(path, configs):
    defaults, fields = _defaults(*path), _fields(*configs)
    shared = {name for name in defaults if name in fields}
    assert len(shared) >= 8 and "splits" in shared, shared
    for name in shared:
        assert defaults[name] == fields[name], name


def test_choices_come_from_the_configs():
    options = {p.name: p for p in cli.commands["train"].params}
    assert tuple(options["cell"].type.choices) == CELL_NAMES
    assert tuple(options["optimizer"].type.choices) == OPTIMIZERS
    assert tuple(options["schedule"].type.choices) == SCHEDULES
