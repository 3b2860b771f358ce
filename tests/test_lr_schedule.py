"""Per-iteration learning rates: linear warmup, multistep and cosine decay (reference values by hand)."""

import math

import numpy as np
import pytest

from src.train.lr_schedule import learning_rates


def test_warmup_then_multistep():
    rates = learning_rates(10, 0.1, "multistep", warmup_steps=4, milestones=[6, 8], gamma=0.1)
    expected = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert rates.dtype == np.float32


def test_warmup_then_cosine_to_min_lr():
    rates = learning_rates(14, 0.2, "cosine", warmup_steps=4, min_lr=0.02)
    np.testing.assert_allclose(rates[:4], [0.05, 0.1, 0.15, 0.2], rtol=1e-6)
    # after warmup: min + (base - min)(1 + cos(pi k / 10)) / 2, k = 0..9
    expected = [0.02 + 0.18 * (1 + math.cos(math.pi * k / 10)) / 2 for k in range(10)]
    np.testing.assert_allclose(rates[4:], expected, rtol=1e-6)
    assert rates[4] == pytest.approx(0.2) and rates[9] == pytest.approx(0.11)


def test_multistep_without_warmup_is_piecewise_constant():
    rates = learning_rates(28000, 0.1, "multistep", milestones=[16000, 24000])
    assert rates[0] == rates[15999] == pytest.approx(0.1)
    assert rates[16000] == rates[23999] == pytest.approx(0.01)
    assert rates[24000] == rates[-1] == pytest.approx(0.001)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="poly"):
        learning_rates(5, 0.1, "poly")
