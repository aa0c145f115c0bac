"""The study's statistics: mean ± s.e. over seeds and the paired gain of transport over best-of-N."""

import math

import pytest

from vgf_ray.seed_stats import mean_se, transport_gain


def test_mean_se_is_the_standard_error_of_the_mean():
    mean, se = mean_se([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4)
    assert se == pytest.approx(0.2 / math.sqrt(3))  # sample std 0.2 over sqrt(3) seeds
    assert math.isnan(mean_se([0.5])[1])
    with pytest.raises(ValueError, match="at least one value"):
        mean_se([])


def test_transport_gain_is_paired_and_picks_the_best_budget():
    # L=0 varies a lot between seeds, but L=2 beats it by exactly 0.1 in every seed: a paired gain with no spread.
    per_seed = {"0": {0: 0.1, 1: 0.0, 2: 0.2}, "1": {0: 0.7, 1: 0.9, 2: 0.8}, "2": {0: 0.4, 1: 0.3, 2: 0.5}}
    budget, mean, se = transport_gain(per_seed)
    assert budget == 2 and mean == pytest.approx(0.1) and se == pytest.approx(0.0, abs=1e-12)


def test_transport_gain_uses_only_budgets_every_seed_has():
    per_seed = {"0": {0: 0.5, 1: 0.2, 3: 0.9}, "1": {0: 0.5, 1: 0.4}}
    assert transport_gain(per_seed)[:2] == (1, pytest.approx(-0.2))  # L=3 is missing in seed 1
    assert transport_gain({"0": {0: 0.5}}) is None  # best-of-N only (a baseline's row)
    assert transport_gain({"0": {1: 0.5}}) is None  # no L=0 to pair with
