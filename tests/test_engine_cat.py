"""Selection, content balancing, exposure control, stopping and scoring."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_bank
from nangluc.engine import cat, irt
from nangluc.engine.bank import KINDS
from nangluc.engine.config import CITIZEN_TEST, TestConfig
from nangluc.engine.estimation import EAP, MLE
from nangluc.engine.scoring import (
    LEVELS,
    area_scores,
    level_code,
    level_index,
    level_posterior,
    score,
)
from nangluc.engine.selection import (
    AreaBalance,
    AreaMinimum,
    KindBalance,
    MaximumInformation,
    PosteriorWeightedInformation,
    Randomesque,
    SympsonHetter,
    point_information,
    update_sympson_hetter,
)
from nangluc.engine.stopping import (
    AreaStandardError,
    LevelDecided,
    OverallStandardError,
    ThetaStandardError,
)
from nangluc.engine.tables import bank_tables


def run(bank, config, true_theta, seed=0, selection_theta=None):
    """Drive N tests to the end with simulated responses (lockstep)."""
    rng = np.random.default_rng(seed)
    batch = cat.start(bank, config, true_theta.shape[0], rng, selection_theta=selection_theta)
    while not batch.finished.all():
        item = np.where(batch.finished, 0, batch.next_item)
        theta = true_theta[np.arange(batch.n), bank.area[item]]
        responses = irt.simulate_responses(bank, theta, item, rng)
        batch = cat.advance(bank, config, batch, responses, rng, selection_theta=selection_theta)
    return batch


# ----------------------------------------------------------------- scoring
@pytest.mark.parametrize(
    ("value", "code"),
    [(0, 1), (19.999, 1), (20, 2), (39.99, 2), (40, 3), (60, 4), (79.9, 4), (80, 5), (100, 5)],
)
def test_a_band_lower_bound_belongs_to_it(value, code):
    assert level_code(value) == code
    assert level_index(value) == code - 1
    assert LEVELS[code - 1].code == code
    assert LEVELS[code - 1].lower <= value <= LEVELS[code - 1].upper


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=20))
@settings(max_examples=60, deadline=None)
def test_area_scores_are_in_range_and_monotone(values):
    bank = make_bank()
    theta = np.sort(np.array(values))
    scores = area_scores(bank, np.repeat(theta[:, None], bank.n_areas, axis=1))
    assert np.all((scores >= 0) & (scores <= 100))
    assert np.all(np.diff(scores, axis=0) >= -1e-9)


def test_area_score_is_the_domain_score_over_operational_items():
    bank = make_bank(n_items=30, seed=2, pretest=5)
    theta = np.array([[0.3, -0.2, 1.0, -1.5, 0.0]])
    expected = irt.expected_score(
        theta[0][bank.area], bank.discrimination, bank.thresholds, bank.guessing
    )
    got = area_scores(bank, theta)[0]
    for a in range(bank.n_areas):
        keep = (bank.area == a) & bank.operational
        exact = 100 * np.diagonal(expected)[keep].sum() / bank.max_score[keep].sum()
        assert got[a] == pytest.approx(exact, abs=0.01)
    s = score(bank, theta, np.full_like(theta, 0.3))
    assert s.overall_score[0] == pytest.approx(got.mean())


# --------------------------------------------------------------- selection
def test_maximum_information_picks_the_most_informative_item():
    bank = make_bank(n_items=40, n_areas=1, seed=3)
    config = TestConfig(selector=MaximumInformation(), stopping=(), max_items=5)
    batch = cat.start(bank, config, 1, np.random.default_rng(0))
    info = irt.bank_information(bank, np.array([batch.theta[0, 0]]))[0]
    assert batch.next_item[0] == int(np.argmax(info))


def test_posterior_weighted_information_averages_over_the_posterior():
    bank = make_bank(n_items=20, n_areas=1, seed=4)
    batch = cat.empty(bank, TestConfig(), 1)
    crit = PosteriorWeightedInformation().criterion(bank, batch, np.array([0]))
    grid = bank_tables(bank).quadrature
    weights = np.exp(-0.5 * grid**2)
    weights /= weights.sum()
    expected = weights @ irt.bank_information(bank, grid)
    np.testing.assert_allclose(crit[0], expected, rtol=1e-6)


@given(seed=st.integers(0, 10_000), max_items=st.integers(1, 30), k=st.integers(1, 4))
@settings(max_examples=25, deadline=None)
def test_no_item_repeats_and_max_length_holds(seed, max_items, k):
    bank = make_bank(n_items=45, seed=seed % 7, pretest=4)
    config = TestConfig(
        selector=MaximumInformation(),
        exposure=Randomesque(k=k),
        stopping=(),
        min_items=0,
        max_items=max_items,
        pretest_positions=(2,),
        excluded=(bank.item_ids[0], bank.item_ids[5]),
    )
    rng = np.random.default_rng(seed)
    batch = run(bank, config, rng.normal(size=(6, bank.n_areas)), seed=seed)
    for row in range(batch.n):
        given_items = batch.items[row, : batch.length[row]]
        assert len(set(given_items.tolist())) == given_items.size
        assert batch.scored[row].sum() <= max_items
        assert 0 not in given_items and 5 not in given_items
        assert batch.stop_reason[row] in ("max_items", "no_item_left")
    assert np.all(batch.administered.sum(axis=1) == batch.length)


def test_pretest_items_are_seeded_and_never_scored():
    bank = make_bank(n_items=40, seed=1, pretest=6)
    config = TestConfig(
        selector=MaximumInformation(), stopping=(), max_items=8, pretest_positions=(1, 4)
    )
    batch = run(bank, config, np.zeros((20, bank.n_areas)), seed=2)
    pretest = ~bank.operational
    for row in range(batch.n):
        items = batch.items[row, : batch.length[row]]
        assert pretest[items[1]] and pretest[items[4]]
        assert not batch.scored[row, 1] and not batch.scored[row, 4]
        assert batch.scored[row, : batch.length[row]].sum() == 8
    # pretest answers leave the estimate where the scored answers put it
    scored_only = replace(bank, version="same")
    del scored_only


def test_pretest_responses_do_not_change_the_estimate():
    bank = make_bank(n_items=30, seed=9, pretest=5)
    config = TestConfig(
        selector=MaximumInformation(), stopping=(), max_items=6, pretest_positions=(0,)
    )
    rng = np.random.default_rng(0)
    batch = cat.start(bank, config, 1, rng)
    assert not bank.operational[batch.next_item[0]]
    before = batch.theta.copy()
    after = cat.advance(bank, config, batch, np.array([1]), rng)
    np.testing.assert_array_equal(after.theta, before)
    assert after.area_counts.sum() == 0


def test_kind_balance_reaches_the_target_shares():
    bank = make_bank(n_items=90, seed=2)
    config = TestConfig(
        selector=MaximumInformation(),
        content=(KindBalance(targets=(0.5, 0.3, 0.2)),),
        stopping=(),
        max_items=20,
    )
    batch = run(bank, config, np.random.default_rng(1).normal(size=(30, bank.n_areas)))
    for row in range(batch.n):
        kinds = bank.kind[batch.items[row, :20]]
        counts = np.bincount(kinds, minlength=len(KINDS))
        np.testing.assert_array_equal(counts, [10, 6, 4])


def test_area_minimum_covers_every_area_first():
    bank = make_bank(n_items=60, seed=6)
    config = TestConfig(
        selector=MaximumInformation(), content=(AreaMinimum(2),), stopping=(), max_items=10
    )
    batch = run(bank, config, np.random.default_rng(2).normal(size=(20, bank.n_areas)))
    np.testing.assert_array_equal(batch.area_counts, 2)


def test_area_balance_spreads_items_evenly():
    bank = make_bank(n_items=100, seed=6)
    config = TestConfig(
        selector=MaximumInformation(), content=(AreaBalance(),), stopping=(), max_items=15
    )
    batch = run(bank, config, np.random.default_rng(3).normal(size=(10, bank.n_areas)))
    np.testing.assert_array_equal(batch.area_counts, 3)


def test_randomesque_chooses_uniformly_among_the_best_k():
    criterion = np.tile(np.array([5.0, 1.0, 4.0, 3.0, 2.0]), (30_000, 1))
    eligible = np.ones_like(criterion, dtype=bool)
    eligible[:, 0] = False
    picked = Randomesque(k=2).choose(criterion, eligible, np.random.default_rng(0), None)
    assert set(np.unique(picked)) == {2, 3}
    assert np.mean(picked == 2) == pytest.approx(0.5, abs=0.02)


def test_sympson_hetter_caps_selection_by_its_control_parameters():
    criterion = np.tile(np.array([5.0, 4.0, 3.0]), (40_000, 1))
    eligible = np.ones_like(criterion, dtype=bool)
    lottery = np.random.default_rng(1).random(criterion.shape)
    picked = SympsonHetter(control=(0.25, 1.0, 1.0)).choose(criterion, eligible, None, lottery)
    assert np.mean(picked == 0) == pytest.approx(0.25, abs=0.01)
    assert np.mean(picked == 1) == pytest.approx(0.75, abs=0.01)
    never = SympsonHetter(control=(0.0, 0.0, 0.0)).choose(criterion, eligible, None, lottery)
    assert np.all(never == 0)  # nothing accepted: the best eligible item is still given


def test_sympson_hetter_iterations_bring_exposure_under_the_cap():
    bank = make_bank(n_items=60, n_areas=1, seed=12)
    control = np.ones(bank.n_items)
    theta = np.random.default_rng(5).normal(size=(800, 1))
    for _ in range(8):
        config = TestConfig(
            selector=MaximumInformation(),
            exposure=SympsonHetter(tuple(control)),
            stopping=(),
            max_items=10,
        )
        batch = run(bank, config, theta, seed=7)
        rate = batch.administered.mean(axis=0)
        control = update_sympson_hetter(control, rate, max_rate=0.3)
    assert rate.max() <= 0.35
    unconstrained = run(bank, replace(config, exposure=None), theta, seed=7).administered.mean(
        axis=0
    )
    assert unconstrained.max() > 0.9


def test_update_sympson_hetter_formula():
    new = update_sympson_hetter(np.array([1.0, 0.5, 1.0]), np.array([0.6, 0.2, 0.1]), max_rate=0.3)
    # r / P(S) = 0.3 / 0.6; 0.3 / 0.4 = 0.75 capped at 1.25 x 0.5; under the cap: 1.
    np.testing.assert_allclose(new, [0.5, 0.625, 1.0])
    unlimited = update_sympson_hetter(
        np.array([1.0, 0.5, 1.0]), np.array([0.6, 0.2, 0.1]), max_rate=0.3, growth=10.0
    )
    np.testing.assert_allclose(unlimited, [0.5, 0.75, 1.0])


def test_sympson_hetter_does_not_reset_a_lowered_item_without_exposure():
    # Issue 16: an item whose k was lowered and that got no exposure in one
    # iteration went back to k = 1, and the maximum exposure never reached the target.
    new = update_sympson_hetter(np.array([0.2, 1.0]), np.array([0.0, 0.1]), max_rate=0.25)
    assert new[0] == pytest.approx(0.25)  # grows by at most 1.25x
    assert new[1] == 1.0
    # An item exposed above the target never gets a higher k.
    again = update_sympson_hetter(np.array([0.3]), np.array([0.3]), max_rate=0.25)
    assert again[0] <= 0.3


def test_no_item_left_stops_the_test():
    bank = make_bank(n_items=12, seed=2)
    config = TestConfig(selector=MaximumInformation(), stopping=(), min_items=0, max_items=40)
    batch = run(bank, config, np.zeros((3, bank.n_areas)))
    assert set(batch.stop_reason) == {"no_item_left"}
    assert np.all(batch.length == 12)


def test_uninformative_items_are_not_given():
    bank = make_bank(n_items=40, seed=2)
    config = TestConfig(
        selector=MaximumInformation(), stopping=(), min_items=0, max_items=40, min_information=0.2
    )
    batch = run(bank, config, np.full((5, bank.n_areas), 5.5))
    for row in range(batch.n):
        items = batch.items[row, : batch.length[row]]
        assert batch.stop_reason[row] == "no_item_left"
        assert items.size < bank.n_items


# ---------------------------------------------------------------- stopping
def test_theta_standard_error_rule_stops_at_the_target():
    bank = make_bank(n_items=150, n_areas=1, seed=4)
    config = TestConfig(
        selector=MaximumInformation(),
        estimator=MLE(),
        stopping=(ThetaStandardError(0.35),),
        max_items=60,
    )
    batch = run(bank, config, np.random.default_rng(3).normal(size=(50, 1)))
    done = batch.stop_reason == "theta_se"
    assert done.mean() > 0.9
    assert np.all(batch.se[done, 0] <= 0.35)


def test_min_items_gate_the_target_rules():
    bank = make_bank(n_items=80, seed=4)
    config = TestConfig(stopping=(OverallStandardError(50.0),), min_items=7, max_items=20)
    batch = run(bank, config, np.zeros((10, bank.n_areas)))
    np.testing.assert_array_equal(batch.scored_length, 7)
    assert set(batch.stop_reason) == {"overall_se"}


def test_level_decided_rule_matches_the_95_percent_posterior_interval():
    bank = make_bank(n_items=100, seed=8)
    config = TestConfig(stopping=(LevelDecided(),), max_items=40)
    batch = run(bank, config, np.random.default_rng(4).normal(size=(40, bank.n_areas)))
    decided = batch.stop_reason == "level_decided"
    assert decided.any() and (batch.stop_reason == "max_items").any()
    joint = config.posterior.posterior(bank, batch.loglik)
    levels = level_posterior(bank, joint.weights, joint.correlation)
    overall = score(bank, batch.theta, batch.se, batch.theta_corr).overall_score
    interval = levels.overall_interval(bank, 0.95)
    inside = (level_index(interval[:, 0]) == level_index(overall)) & (
        level_index(interval[:, 1]) == level_index(overall)
    )
    np.testing.assert_array_equal(inside[decided], True)
    assert not inside[batch.stop_reason == "max_items"].any()


def test_area_standard_error_rule():
    bank = make_bank(n_items=150, seed=8)
    config = TestConfig(stopping=(AreaStandardError(0.6),), max_items=60)
    batch = run(bank, config, np.zeros((10, bank.n_areas)))
    ok = batch.stop_reason == "area_se"
    assert ok.any() and np.all(batch.se[ok] <= 0.6)


def test_oracle_selection_uses_the_given_theta():
    bank = make_bank(n_items=60, n_areas=1, seed=2)
    config = TestConfig(selector=MaximumInformation(), stopping=(), max_items=1)
    truth = np.array([[2.5]])
    batch = cat.start(bank, config, 1, np.random.default_rng(0), selection_theta=truth)
    info = point_information(bank, truth)
    assert batch.next_item[0] == int(np.argmax(info[0]))


def test_responses_out_of_range_are_refused():
    bank = make_bank(n_items=20, seed=1)
    batch = cat.start(bank, TestConfig(max_items=5), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="out of range"):
        cat.advance(
            bank, TestConfig(max_items=5), batch, np.array([0, 9]), np.random.default_rng(0)
        )


def test_config_validation():
    with pytest.raises(ValueError, match="min_items"):
        TestConfig(min_items=5, max_items=3)
    with pytest.raises(ValueError, match="randomesque"):
        Randomesque(k=0)
    with pytest.raises(ValueError, match="kind targets"):
        KindBalance(targets=(1.0, -1.0, 0.0))
    assert CITIZEN_TEST.describe()["name"] == CITIZEN_TEST.name


def test_batch_rows_do_not_interact():
    bank = make_bank(n_items=60, seed=3)
    config = TestConfig(selector=MaximumInformation(), estimator=EAP(), stopping=(), max_items=12)
    truth = np.random.default_rng(0).normal(size=(4, bank.n_areas))
    rng = np.random.default_rng(1)
    responses = rng.integers(0, 2, size=(12, 4))
    batch = cat.start(bank, config, 4, rng)
    singles = [cat.start(bank, config, 1, rng) for _ in range(4)]
    for step in range(12):
        batch = cat.advance(bank, config, batch, responses[step], rng)
        singles = [
            cat.advance(bank, config, s, responses[step, i : i + 1], rng)
            for i, s in enumerate(singles)
        ]
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(batch.items[i], single.items[0])
        np.testing.assert_allclose(batch.theta[i], single.theta[0])
    del truth


def test_informative_range_matches_point_information():
    bank = make_bank(n_items=50, seed=5)
    tables = bank_tables(bank)
    low, high = tables.informative_range(0.05)
    theta = np.linspace(-5.9, 5.9, 237)
    info = irt.bank_information(bank, theta)  # (T, I)
    inside = (theta[:, None] >= low[None, :]) & (theta[:, None] <= high[None, :])
    # Agreement except within a grid step of the range's ends.
    step = tables.fine_step
    near_end = (np.abs(theta[:, None] - low[None, :]) < step) | (
        np.abs(theta[:, None] - high[None, :]) < step
    )
    assert np.all((inside == (info >= 0.05)) | near_end)


def test_normal_weighted_information_is_the_same_for_few_and_many_rows():
    from nangluc.engine.selection import normal_weighted_information

    bank = make_bank(n_items=60, seed=9)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(20, bank.n_areas))
    se = rng.uniform(0.2, 1.0, size=(20, bank.n_areas))
    many = normal_weighted_information(bank, theta, se)  # per-area products
    few = np.vstack(
        [normal_weighted_information(bank, theta[i : i + 1], se[i : i + 1]) for i in range(20)]
    )
    np.testing.assert_allclose(few, many, rtol=1e-12, atol=1e-15)
    grid = bank_tables(bank).quadrature
    w = np.exp(-0.5 * ((grid - theta[3, 2]) / se[3, 2]) ** 2)
    item = int(np.flatnonzero(bank.area == 2)[0])
    exact = (w / w.sum()) @ irt.bank_information(bank, grid)[:, item]
    assert many[3, item] == pytest.approx(exact, rel=1e-9)
