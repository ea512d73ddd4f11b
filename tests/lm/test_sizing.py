"""A model size fitted to the budget: the measured ladder, the speed probe, the reason."""

import pytest

from seqmodels.lm import sizing
from seqmodels.models.config import ModelConfig


def test_each_rung_of_the_ladder_is_chosen_from_its_minutes_on():
    for i, (layers, units, from_minutes) in enumerate(sizing.LADDER):
        assert sizing.size_for(from_minutes) == (layers, units)
        if i + 1 < len(sizing.LADDER):
            assert sizing.size_for(sizing.LADDER[i + 1][2] * 0.99) == (layers, units)
    assert sizing.size_for(0.01) == sizing.LADDER[0][:2]
    assert sizing.size_for(10_000) == sizing.LADDER[-1][:2]
    assert [rung[2] for rung in sizing.LADDER] == sorted(rung[2] for rung in sizing.LADDER)


def test_a_faster_machine_affords_a_larger_model_in_the_same_minutes():
    small, large = sizing.LADDER[0], sizing.LADDER[-1]
    seconds = large[2] * 60 * 0.5  # half the reference minutes the large rung needs
    slow = sizing.fit_to_budget(ModelConfig(), seconds, speedup=1.0)
    fast = sizing.fit_to_budget(ModelConfig(), seconds, speedup=4.0)
    assert (slow.config.layers, slow.config.units) != large[:2]
    assert (fast.config.layers, fast.config.units) == large[:2]
    assert sizing.size_for(0) == small[:2]


def test_the_fitted_size_keeps_every_other_setting_and_says_why():
    model = ModelConfig(cell="gru", embedding_dim=32, dropout=0.1)
    fitted = sizing.fit_to_budget(model, 30, speedup=2.0)
    assert (fitted.config.cell, fitted.config.embedding_dim, fitted.config.dropout) == (
        "gru", 32, 0.1)
    layers, units = sizing.size_for(1.0)
    assert (fitted.config.layers, fitted.config.units) == (layers, units)
    assert fitted.reason.startswith(f"Model size: {layers} x {units} GRU, fitted to the budget "
                                    "of 30s: this machine ran the speed probe 2x as fast as the "
                                    "reference machine, so the budget is worth 1 of its minutes")
    assert "as fast as the reference machine (1.00x)" in sizing.fit_to_budget(
        model, 30, speedup=1.0).reason
    assert "--layers and --units choose the size yourself" in fitted.reason


@pytest.mark.parametrize("settings, fits", [
    (("char",), True), (("byte",), True), (("word",), False), (("subword",), False),
    (("char", "gru"), False), (("char", "lstm", 32), False), (("char", "lstm", 64, 50), False),
    (("char", "lstm", 64, 100), True)])
def test_sizes_are_fitted_for_the_settings_they_were_measured_with(settings, fits):
    assert sizing.fits_budget(*settings) is fits


@pytest.mark.parametrize("budget", [0, -5, "10m", float("inf"), True])
def test_a_budget_that_is_not_seconds_is_one_line(budget):
    with pytest.raises(sizing.SeqmodelsError, match="max_time must be a number of seconds"):
        sizing.fit_to_budget(ModelConfig(), budget, speedup=1.0)


def test_the_probe_times_the_machine():
    seconds = sizing.probe_seconds(repeats=2)
    assert 0 < seconds < 5
