"""train()'s arguments are checked before anything loads: what a resume may change, what goes
with what, and the options of a process; errors name settings as Python spells them."""

import sys

import pytest

import seqmodels
from seqmodels.errors import ResumableError, SeqmodelsError


def test_a_resume_takes_changes_not_new_settings(tmp_path):
    with pytest.raises(SeqmodelsError, match="give changes instead of data, config"):
        seqmodels.train(seqmodels.DataConfig(), config=seqmodels.TrainConfig(),
                        resume=tmp_path)
    with pytest.raises(SeqmodelsError, match="changes apply to a resumed run"):
        seqmodels.train(changes={"epochs": 3}, out=tmp_path / "new")
    with pytest.raises(SeqmodelsError, match="only epochs, max_time, on_nan, xla can change, "
                                             "not lr"):
        seqmodels.TrainConfig().with_changes({"lr": 0.1})


@pytest.mark.parametrize("options, words", [
    (seqmodels.RunOptions(strategy="ps"), "strategy must be one of"),
    (seqmodels.RunOptions(cluster="a:1,b:2"), "cluster and worker_index go with strategy"),
    (seqmodels.RunOptions(workers=0), "workers must be a whole number"),
    (seqmodels.RunOptions(callbacks=print), "callbacks must be a list"),
])
def test_bad_run_options_are_refused_before_anything_loads(tmp_path, options, words):
    with pytest.raises(SeqmodelsError, match=words):
        seqmodels.train(out=tmp_path / "r", options=options)
    with pytest.raises(SeqmodelsError, match=words):
        seqmodels.train_forecaster(out=tmp_path / "f", options=options)


def test_settings_are_named_as_python_spells_them():
    with pytest.raises(SeqmodelsError) as info:
        seqmodels.TrainConfig(lr=-1).validate()
    assert str(info.value) == "lr must be positive"
    assert info.value.message == "`lr` must be positive"  # marked, for the command line
    with pytest.raises(SeqmodelsError, match="^seq_len must be a whole number"):
        seqmodels.WindowConfig(seq_len=0).validate()
    nested = SeqmodelsError(f"config.json: {info.value}")  # one message inside another
    assert nested.message == "config.json: `lr` must be positive"
    assert str(nested) == "config.json: lr must be positive"


def test_a_resumable_error_says_how_to_go_on():
    error = ResumableError("interrupted; checkpoint saved at epoch 2, step 5", "runs/x",
                           exit_code=130)
    assert str(error) == "interrupted; checkpoint saved at epoch 2, step 5"
    error.resume_with("seqmodels train --resume runs/x")
    assert str(error).endswith(". Resume with: seqmodels train --resume runs/x")
    assert error.exit_code == 130 and error.run_dir == "runs/x"


def test_train_refuses_before_tensorflow_loads(tmp_path):
    """A refusal of the settings comes at once: TensorFlow is not even imported."""
    import subprocess

    code = ("import sys, seqmodels\n"
            "try:\n    seqmodels.train(config=seqmodels.TrainConfig(epochs=0))\n"
            "except seqmodels.SeqmodelsError as e:\n    print(e)\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split("\n")
    assert out[:2] == ["epochs must be at least 1", "False"]
