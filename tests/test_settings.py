"""Every settings dataclass reads back from JSON by one strict rule, without TensorFlow."""

import subprocess
import sys

import pytest

from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.forecast.series import SeriesConfig
from seqmodels.models.config import ModelConfig
from seqmodels.training.config import RESUMABLE, TrainConfig

CONFIGS = [(DataConfig, "data"), (ModelConfig, "model"), (TrainConfig, "training"),
           (SeriesConfig, "series")]


@pytest.mark.parametrize("cls, what", CONFIGS)
def test_to_json_reads_back_to_an_equal_config(cls, what):
    config = cls()
    assert cls.from_json(config.to_json()) == config


@pytest.mark.parametrize("cls, what", CONFIGS)
def test_unknown_keys_are_refused_by_name(cls, what):
    with pytest.raises(SeqmodelsError, match=rf"unknown {what} setting\(s\): colour, speed"):
        cls.from_json({**cls().to_json(), "speed": 1, "colour": "red"})


@pytest.mark.parametrize("cls, what", CONFIGS)
def test_a_settings_section_that_is_not_an_object_is_refused(cls, what):
    with pytest.raises(SeqmodelsError, match=f"the {what} settings must be a JSON object"):
        cls.from_json(["not", "an", "object"])


def test_only_the_resumable_settings_change_on_resume():
    config = TrainConfig(epochs=3, max_time=60.0)
    changed = config.with_changes({"epochs": 5, "max_time": None, "on_nan": "rollback"})
    assert (changed.epochs, changed.max_time, changed.on_nan) == (5, 60.0, "rollback")
    assert config.epochs == 3  # a copy: the caller's config is left alone
    assert set(RESUMABLE) == {"epochs", "max_time", "on_nan", "xla"}
    with pytest.raises(SeqmodelsError, match="can change, not batch_size"):
        config.with_changes({"batch_size": 8})
    assert config.with_changes({"max_time": 0}).max_time is None  # 0 removes the budget


def test_the_config_modules_load_no_tensorflow():
    code = ("import sys; import seqmodels.data.config, seqmodels.models.config, "
            "seqmodels.training.config, seqmodels.forecast.series, seqmodels.cli, seqmodels, "
            "seqmodels.lm.config, seqmodels.lm.model, seqmodels.training.rundir; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resume_plan_names_the_limit_that_stops_a_resumed_run_first():
    """The README's example: TrainConfig(epochs=3, max_time=300) resumed after 3 epochs."""
    stored = TrainConfig(epochs=3, max_time=300)
    assert stored.with_changes({"epochs": 6}).resume_plan(3) == (
        "on to epoch 6 or for another 5m, whichever comes first (the run's `max_time`; a new "
        "one replaces it)")
    assert stored.with_changes({"epochs": 6, "max_time": 0}).resume_plan(3) == "on to epoch 6"
    assert stored.resume_plan(3) == ("no training: its 3 epoch(s) are done (a larger `epochs` "
                                     "trains on)")


@pytest.mark.parametrize("given,words", [
    ({"epochs": True}, "epochs must be a whole number, not True"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"lr": "0.1"}, "lr must be a finite number or null, not '0.1'"),
    ({"clipnorm": float("nan")}, "clipnorm must be a finite number or null"),
])
def test_settings_of_the_wrong_type_from_python_are_refused_by_name(given, words):
    """TrainConfig(epochs=True) trained one epoch; a string rate failed inside TensorFlow."""
    with pytest.raises(SeqmodelsError, match=words):
        TrainConfig(**given).validate()


def test_a_corpus_given_as_one_path_is_a_list_of_one(tmp_path, cat_text):
    """DataConfig(corpus="file.txt") was read as the paths 'f', 'i', 'l', ... and walked the
    file system from '/' ("no such file: t")."""
    from seqmodels.data.prepare import prepare_corpus

    path = tmp_path / "c.txt"
    path.write_text(cat_text)
    for given in (str(path), path, (path,)):
        config = DataConfig(corpus=given)
        assert config.corpus == [str(path)]
        assert prepare_corpus(config, use_cache=False).stats["characters"] == len(cat_text)
