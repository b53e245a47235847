"""Sympson–Hetter control parameters derived by simulation reach their target."""

from __future__ import annotations

import numpy as np

from conftest import make_bank
from nangluc.engine import TestConfig
from nangluc.engine.selection import ConditionalSympsonHetter, MaximumInformation
from nangluc.simulations import run
from nangluc.simulations.exposure import (
    conditional_sympson_hetter_control,
    stratum_exposure,
    sympson_hetter_control,
)


def test_sympson_hetter_reaches_its_target_on_new_test_takers():
    # Issue 16: with target 0.25 the maximum exposure ended at 0.266 after the
    # iterations. It must end at or below the target + 0.01, also for test
    # takers the control parameters were not derived on.
    bank = make_bank(n_items=60, n_areas=1, seed=12)
    config = TestConfig(name="sh", selector=MaximumInformation(), max_items=8, min_items=8)
    rng = np.random.default_rng(3)
    derive = rng.normal(size=(6_000, 1))
    fresh = rng.normal(size=(12_000, 1))
    without = run(bank, config, fresh, np.random.default_rng(1))
    assert without.exposure.max() > 0.9
    calibration = sympson_hetter_control(
        bank, config, derive, np.random.default_rng(2), max_rate=0.25
    )
    assert calibration.max_exposure[0] > 0.9
    assert calibration.max_exposure[-1] <= 0.26
    result = run(bank, calibration.config, fresh, np.random.default_rng(4))
    assert result.exposure.max() <= 0.26
    # Every test still has its 8 items.
    assert np.all(result.length == 8)


def test_conditional_sympson_hetter_caps_exposure_within_each_ability_stratum():
    bank = make_bank(n_items=60, n_areas=1, seed=12)
    config = TestConfig(name="csh", selector=MaximumInformation(), max_items=6, min_items=6)
    rng = np.random.default_rng(5)
    derive = rng.normal(size=(8_000, 1))
    fresh = rng.normal(size=(12_000, 1))
    cuts = (-0.5, 0.5)
    rule = ConditionalSympsonHetter(cuts=cuts)
    unconditional = sympson_hetter_control(
        bank, config, derive, np.random.default_rng(2), max_rate=0.3
    )
    plain = run(bank, unconditional.config, fresh, np.random.default_rng(4))
    plain_rates, _ = stratum_exposure(plain, bank, rule.stratum(fresh), 3)
    assert plain.exposure.max() <= 0.31
    assert plain_rates.max() > 0.45  # within an ability group an item is still given to most
    calibration = conditional_sympson_hetter_control(
        bank, config, derive, np.random.default_rng(6), max_rate=0.3, cuts=cuts
    )
    result = run(bank, calibration.config, fresh, np.random.default_rng(4))
    rates, sizes = stratum_exposure(result, bank, rule.stratum(fresh), 3)
    assert sizes.min() > 2_000
    assert rates.max() <= 0.32
    assert np.all(result.length == 6)
