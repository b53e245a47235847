"""The citizen test's exposure control: Sympson–Hetter by item id (#16)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import make_bank
from nangluc.engine import (
    CITIZEN_TEST,
    CITIZEN_TEST_V1,
    CONFIGS,
    SympsonHetter,
    answer_item,
    citizen_exposure,
    start_test,
)
from nangluc.items import load_bank
from nangluc.simulations import draw_population, run


def test_control_by_item_id_carries_over_to_another_bank():
    bank = make_bank(n_items=10, n_areas=1, seed=1)
    rule = SympsonHetter(control=(0.2, 0.5), item_ids=(bank.item_ids[3], "not-in-this-bank"))
    control = rule.control_for(bank)
    assert control[3] == 0.2 and np.all(np.delete(control, 3) == 1.0)
    with pytest.raises(ValueError, match="item ids"):
        SympsonHetter(control=(0.2,), item_ids=("a", "b"))


def test_the_default_citizen_test_caps_item_exposure():
    # Issue 16: randomesque (k = 2) left the two most informative items at
    # exposure 0.99 and 0.96 and the test overlap at 0.50.
    bank = load_bank().item_bank
    assert bank.version == citizen_exposure.BANK_VERSION
    truth = draw_population(2_000, bank.n_areas, 0.7, np.random.default_rng(11))
    old = run(bank, CITIZEN_TEST_V1, truth, np.random.default_rng(12))
    new = run(bank, CITIZEN_TEST, truth, np.random.default_rng(12))
    assert old.exposure.max() > 0.9
    assert new.exposure.max() <= 0.65
    assert new.summary["overlap"] < old.summary["overlap"] - 0.04
    # The accuracy and length goals still hold (benchmarks.citizen_test has the full figures).
    assert new.summary["mean_items"] <= 20.5
    assert new.summary["level_accuracy"] >= old.summary["level_accuracy"] - 0.02


def test_tests_started_under_citizen_v1_still_finish_under_it():
    bank = load_bank().item_bank
    assert CONFIGS["citizen-v1"] is CITIZEN_TEST_V1 and CONFIGS[CITIZEN_TEST.name] is CITIZEN_TEST
    state = start_test(bank, CITIZEN_TEST_V1, seed=3)
    state = answer_item(bank, CITIZEN_TEST_V1, state, state.next_item, 1)
    with pytest.raises(ValueError, match="config"):
        answer_item(bank, CITIZEN_TEST, state, state.next_item, 1)
    assert replace(CITIZEN_TEST, name="x").exposure == CITIZEN_TEST.exposure
