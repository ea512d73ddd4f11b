"""Where a run's time goes, and a `max_time` budget that counts start-up and the run's end:
the time accounting, the foreseen final validation, and validations skipped to keep within the
budget's share."""

import time

import numpy as np
import pytest

from seqmodels.data.config import DataConfig
from seqmodels.errors import SeqmodelsError
from seqmodels.lm.config import WindowConfig
from seqmodels.lm.samples import Samples
from seqmodels.lm.train import train
from seqmodels.models.config import ModelConfig
from seqmodels.training import checkpoint, timing
from seqmodels.training.config import RunOptions, TrainConfig
from seqmodels.training.progress import Progress
from seqmodels.training.rundir import RunDir
from seqmodels.training.trainer import Trainer, validation_affordable


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_time_spent_counts_each_part_once_and_the_rest_as_steps(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "monotonic", clock)
    spent = timing.TimeSpent({"steps": 5.0, "validation": 1.0}, started=90.0)
    clock.now = 103.0  # 3 s of steps
    with spent.on("validation"):
        clock.now = 105.0
        with spent.on("writes"):  # the best model's write, inside a validation
            clock.now = 106.5
        clock.now = 107.0
        assert spent.totals()["validation"] == pytest.approx(1.0 + 2.5)  # open: up to now
    with spent.on("compile"):
        clock.now = 109.0
    clock.now = 110.0  # 1 s more of steps
    totals = spent.totals()
    assert totals == pytest.approx({"startup": 10.0, "compile": 2.0, "steps": 5.0 + 4.0,
                                    "validation": 1.0 + 2.5, "writes": 1.5, "callbacks": 0.0})
    assert sum(totals.values()) == pytest.approx(6.0 + 20.0)  # the earlier run's, and 90 -> 110
    assert spent.elapsed() == 20.0 and spent.training() == 10.0
    assert spent.last["validation"] == pytest.approx(2.5)  # its writes left out
    assert spent.columns()["startup_seconds"] == 10.0
    line = spent.summary()
    assert line.startswith("Time: 26.0 s in all: start-up 10.0 s (38.5%), compilation 2.0 s")
    assert "writes 1.5 s" in line and "samples" not in line  # 0 s parts are left out
    assert line.endswith("43.8% of the training time went around the steps.")  # 7 of 16 s


def test_a_checkpoint_keeps_the_time_spent_and_refuses_a_damaged_one():
    p = Progress.from_json({**Progress().to_json(), "time_spent": {"steps": 3.5, "new": 1}}, "x")
    assert p.time_spent == {**dict.fromkeys(timing.PARTS, 0.0), "steps": 3.5}
    assert Progress.from_json({k: v for k, v in Progress().to_json().items()
                               if k != "time_spent"}, "x").time_spent["steps"] == 0.0  # older
    for bad in ({"steps": -1}, {"steps": "1"}, [1], {"steps": float("nan")}):
        with pytest.raises(SeqmodelsError, match="'time_spent' must be an object of seconds"):
            Progress.from_json({**Progress().to_json(), "time_spent": bad}, "x")


def budget_run(tmp_path, cyclic, name, options=None, **settings):
    windows = WindowConfig(seq_len=16, stateful=settings.pop("stateful", False))
    config = TrainConfig(**{"epochs": 3, "batch_size": 8, "steps_per_epoch": 3,
                            "deterministic": True, **settings})
    return train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=16,
                                                                embedding_dim=8),
                 config, windows, out=tmp_path / name,
                 options=options or RunOptions(cache_dir=tmp_path / "cache"))


def test_the_budget_counts_from_the_start_of_the_command(tmp_path, cyclic):
    options = RunOptions(cache_dir=tmp_path / "cache", started=time.monotonic() - 59.0)
    run = budget_run(tmp_path, cyclic, "late", options, max_time=60.0)
    assert run.stop_reason == "max-time"
    assert [(r["epoch"], r["global_step"]) for r in run.history] == [(1, 1)]  # validated
    assert run.time_spent["startup"] >= 59.0
    assert run.history[-1]["startup_seconds"] == pytest.approx(run.time_spent["startup"])


def test_validations_before_the_last_stay_within_their_share_of_the_budget():
    assert validation_affordable(spent=0.0, one=5.0, budget=600.0)  # 10 s of the 18 s share
    assert not validation_affordable(spent=8.5, one=5.0, budget=600.0)  # 18.5 s
    assert not validation_affordable(spent=0.0, one=10.0, budget=600.0)  # with the final one
    assert validation_affordable(spent=100.0, one=10.0, budget=0.0)  # no budget: always


def foresee(monkeypatch, seconds: float) -> None:
    """Make every validation foreseen to take `seconds` (none is measured in time)."""
    def fake(self):
        self._validated = True  # the first real validation then compiles nothing
        self._validation_estimate = seconds
    monkeypatch.setattr(Trainer, "_foresee_validation", fake)
    monkeypatch.setattr(Trainer, "_validation_seconds", lambda self: seconds)


def test_the_budget_keeps_room_for_the_final_validation(tmp_path, cyclic, monkeypatch):
    foresee(monkeypatch, 1000.0)  # longer than the budget: no step fits before it
    run = budget_run(tmp_path, cyclic, "room", max_time=600.0)
    assert run.stop_reason == "max-time"
    assert [r["global_step"] for r in run.history] == [1]


def test_a_budget_skips_validations_past_its_share_but_never_the_last(tmp_path, cyclic,
                                                                      monkeypatch):
    foresee(monkeypatch, 10.0)  # this one and the final: 20 s > 3% of 600 s
    skipped = budget_run(tmp_path, cyclic, "skipped", max_time=600.0)
    assert skipped.stop_reason == "completed"
    assert [(r["epoch"], r["global_step"]) for r in skipped.history] == [(3, 9)]
    import keras

    watched = budget_run(tmp_path, cyclic, "watched", max_time=600.0, options=RunOptions(
        cache_dir=tmp_path / "cache", callbacks=[keras.callbacks.Callback()]))
    assert [r["global_step"] for r in watched.history] == [3, 6, 9]  # a user's callback: all
    sampled = budget_run(tmp_path, cyclic, "sampled", max_time=600.0, options=RunOptions(
        cache_dir=tmp_path / "cache", callbacks=[Samples(length=5, show=False)]))
    assert [r["global_step"] for r in sampled.history] == [9]  # samples read no validation
    assert (sampled.path / "samples.txt").read_text().count("step 9") == 1
    patient = budget_run(tmp_path, cyclic, "patient", max_time=600.0, patience=5)
    assert [r["global_step"] for r in patient.history] == [3, 6, 9]  # patience counts them all
    unbudgeted = budget_run(tmp_path, cyclic, "unbudgeted")
    assert [r["global_step"] for r in unbudgeted.history] == [3, 6, 9]
    for a, b in zip(*(checkpoint.read(RunDir(r.path).latest_checkpoint()).arrays["weights"]
                      for r in (skipped, unbudgeted))):
        np.testing.assert_array_equal(a, b)  # skipping validations changes no step


def test_foreseeing_the_validation_leaves_a_stateful_carry_alone(tmp_path, cyclic):
    budgeted = budget_run(tmp_path, cyclic, "carry-budget", stateful=True, max_time=3600.0,
                          epochs=1)
    plain = budget_run(tmp_path, cyclic, "carry-plain", stateful=True, epochs=1)
    for a, b in zip(*(checkpoint.read(RunDir(r.path).latest_checkpoint()).arrays["weights"]
                      for r in (budgeted, plain))):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert budgeted.history[-1]["val_loss"] == pytest.approx(plain.history[-1]["val_loss"],
                                                             abs=1e-6)
    spent = budgeted.time_spent
    assert set(spent) == set(timing.PARTS) and all(s >= 0 for s in spent.values())
    assert spent["compile"] > 0 and spent["steps"] > 0 and spent["validation"] > 0
    row = budgeted.history[-1]
    assert all(row[f"{part}_seconds"] <= spent[part] * (1 + 1e-5) for part in timing.PARTS)


def test_training_png_draws_the_loss_between_validations(tmp_path, cyclic):
    """training.png had one point per validation (3 points for a 10-minute run): the mean
    training loss of every LOSS_POINT_STEPS steps is kept with the progress and drawn too."""
    from seqmodels.data.config import DataConfig
    from seqmodels.lm.config import WindowConfig
    from seqmodels.lm.train import train
    from seqmodels.models.config import ModelConfig
    from seqmodels.training import checkpoint
    from seqmodels.training.config import TrainConfig
    from seqmodels.training.rundir import RunDir
    from seqmodels.training.trainer import LOSS_POINT_STEPS

    run = train(DataConfig(corpus=[str(cyclic)]), ModelConfig(layers=1, units=8,
                                                               embedding_dim=4),
                TrainConfig(epochs=1, batch_size=4, steps_per_epoch=2 * LOSS_POINT_STEPS + 3),
                WindowConfig(seq_len=8), out=tmp_path / "run")
    points = checkpoint.read(RunDir(run.path).latest_checkpoint()).progress["loss_points"]
    assert len(points) == 2 and points[0][0] < points[1][0] <= run.history[-1]["tokens"]
    assert all(value > 0 for _, value in points)
    assert (run.path / "training.png").read_bytes()[:4] == b"\x89PNG"


def test_loss_points_past_the_cap_merge_in_pairs_and_keep_the_span():
    from seqmodels.training.trainer import _halved

    points = [[10 * i, float(i)] for i in range(1, 8)]
    assert _halved(points) == [[20, 1.5], [40, 3.5], [60, 5.5], [70, 7.0]]
