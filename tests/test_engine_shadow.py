"""Shadow tests: content constraints and enemy items hold in every finished test."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from conftest import make_bank
from nangluc.engine import CITIZEN_TEST, MaximumInformation, TestConfig, cat, irt
from nangluc.engine.bank import KINDS
from nangluc.engine.session import answer_item, start_test
from nangluc.engine.shadow import Constraint, ShadowTest, _solve


def _drive(bank, config, truth, seed=0):
    rng = np.random.default_rng(seed)
    batch = cat.start(bank, config, truth.shape[0], rng)
    while not batch.finished.all():
        item = np.where(batch.finished, 0, batch.next_item)
        responses = irt.simulate_responses(
            bank, truth[np.arange(batch.n), bank.area[item]], item, rng
        )
        batch = cat.advance(bank, config, batch, responses, rng)
    return batch


def test_every_finished_test_meets_the_constraints_and_enemy_rule():
    bank = make_bank(n_items=60, n_areas=3, seed=21)
    enemies = (
        tuple(bank.item_ids[:4]),
        tuple(bank.item_ids[10:13]),
        ("1.1.999", bank.item_ids[20], bank.item_ids[21]),
    )
    shadow = ShadowTest(
        length=12,
        constraints=(
            Constraint("area", "1", minimum=5, maximum=5),
            Constraint("area", "2", minimum=3),
            Constraint("kind", "attitude", minimum=2, maximum=3),
        ),
        enemies=enemies,
    )
    config = TestConfig(
        name="shadow", selector=MaximumInformation(), shadow=shadow, min_items=12, max_items=12
    )
    truth = np.random.default_rng(3).normal(size=(40, 3))
    batch = _drive(bank, config, truth)
    unconstrained = _drive(bank, replace(config, shadow=None), truth)
    for row in range(40):
        given = batch.items[row][batch.items[row] >= 0]
        assert given.size == 12
        assert np.sum(bank.area[given] == 0) == 5
        assert np.sum(bank.area[given] == 1) >= 3
        assert 2 <= np.sum(bank.kind[given] == KINDS.index("attitude")) <= 3
        for group in enemies:
            members = [bank.index(i) for i in group if i in bank.item_ids]
            assert np.isin(given, members).sum() <= 1
    # Without the shadow test the same rules break the constraints for some test takers.
    broken = [np.sum(bank.area[row[row >= 0]] == 0) != 5 for row in unconstrained.items]
    assert any(broken)


def test_shadow_solution_is_the_best_feasible_test():
    rng = np.random.default_rng(4)
    n = 12
    criterion = rng.random(n)
    given = np.zeros(n, dtype=bool)
    given[0] = True
    free = ~given
    groups = [np.arange(n) < 6]
    enemy = np.zeros(n, dtype=bool)
    enemy[[1, 2, 3]] = True
    constraints = (Constraint("area", "1", minimum=2, maximum=3),)
    chosen = _solve(criterion, given, free, 5, groups, [enemy], constraints)
    best, best_value = None, -np.inf
    for combo in itertools.combinations(range(1, n), 4):
        test = np.zeros(n, dtype=bool)
        test[[0, *combo]] = True
        if not 2 <= test[:6].sum() <= 3 or test[[1, 2, 3]].sum() > 1:
            continue
        if criterion[test].sum() > best_value:
            best, best_value = test, criterion[test].sum()
    np.testing.assert_array_equal(chosen, best)


def test_impossible_constraints_fall_back_to_the_enemy_rule():
    bank = make_bank(n_items=20, n_areas=2, seed=22)
    shadow = ShadowTest(length=5, constraints=(Constraint("area", "1", minimum=50),),
                        enemies=((bank.item_ids[0], bank.item_ids[1]),))  # fmt: skip
    config = TestConfig(
        name="s", selector=MaximumInformation(), shadow=shadow, min_items=6, max_items=6
    )
    batch = _drive(bank, config, np.zeros((5, 2)))
    assert np.all(batch.length == 6)
    for row in batch.items:
        assert np.isin(row, [0, 1]).sum() <= 1


def test_shadow_rules_are_checked():
    with pytest.raises(ValueError, match="attribute"):
        Constraint("colour", "red")
    with pytest.raises(ValueError, match="maximum"):
        Constraint("area", "1", minimum=3, maximum=2)
    with pytest.raises(ValueError, match="enemy set"):
        ShadowTest(enemies=(("a",),))
    bank = make_bank(n_items=10, n_areas=1, seed=2)
    with pytest.raises(ValueError, match="not an area"):
        Constraint("area", "9").members(bank)


def test_a_session_with_a_shadow_test_replays_exactly(big_bank):
    shadow = ShadowTest(
        length=15, constraints=tuple(Constraint("area", c, minimum=2) for c in big_bank.area_codes)
    )
    config = replace(CITIZEN_TEST, name="citizen-shadow", shadow=shadow)
    state = start_test(big_bank, config, seed=5)
    while not state.finished:
        state = answer_item(big_bank, config, state, state.next_item, 1)
    from nangluc.engine.session import replay

    assert replay(big_bank, config, state).finished[0]
    given = big_bank.indices(state.administered)
    if len(given) >= 15:
        assert np.all(np.bincount(big_bank.area[given], minlength=5) >= 2)
