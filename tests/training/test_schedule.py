"""The learning rate over a run: warm-up, and cosine that knows the --max-time budget."""

import pytest

from seqmodels.training.config import TrainConfig
from seqmodels.training.schedule import schedule_lr


def test_warmup_ramps_the_rate_up_linearly():
    config = TrainConfig(lr=1.0, warmup=4)
    rates = [schedule_lr(config, 0, step, 100) for step in range(6)]
    assert rates == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert schedule_lr(config, 1, 0, 3) == 1.0  # counted in global steps, across epochs


def test_cosine_reaches_zero_at_the_end_of_the_budget_or_of_the_epochs():
    budget = TrainConfig(lr=1.0, schedule="cosine", epochs=1000, max_time=100.0)
    assert schedule_lr(budget, 0, 0, 10, seconds=0.0) == pytest.approx(1.0)
    assert schedule_lr(budget, 0, 5, 10, seconds=50.0) == pytest.approx(0.5)
    assert schedule_lr(budget, 0, 9, 10, seconds=100.0) == pytest.approx(0.0)
    assert schedule_lr(budget, 0, 9, 10, seconds=250.0) == pytest.approx(0.0)  # never negative
    epochs = TrainConfig(lr=1.0, schedule="cosine", epochs=2, max_time=1e6)
    assert schedule_lr(epochs, 1, 0, 10, seconds=1.0) == pytest.approx(0.5)  # epochs end first
    plain = TrainConfig(lr=1.0, schedule="cosine", epochs=2)
    assert schedule_lr(plain, 1, 0, 10, seconds=1e9) == pytest.approx(0.5)  # no budget, no time


def test_warmup_and_cosine_together():
    config = TrainConfig(lr=2.0, schedule="cosine", epochs=1, warmup=2)
    assert schedule_lr(config, 0, 0, 4) == pytest.approx(1.0 * 0.5 * 2)  # half ramp, cos(0)
