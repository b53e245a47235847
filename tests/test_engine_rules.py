"""Selection rules (KL, posterior KL, MEPV, random, a-stratified) and Warm's WLE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from conftest import make_bank
from nangluc.engine import cat, irt
from nangluc.engine.config import TestConfig
from nangluc.engine.estimation import (
    EAP,
    ESTIMATORS,
    MAP,
    MLE,
    WLE,
    CorrelatedEAP,
    posterior_weights,
)
from nangluc.engine.selection import (
    SELECTORS,
    AStratified,
    KullbackLeibler,
    MinimumExpectedPosteriorVariance,
    OverallPrecision,
    PosteriorKullbackLeibler,
    PosteriorWeightedInformation,
    RandomSelection,
)
from nangluc.engine.tables import bank_tables


def _drive(bank, config, truth, seed=0, steps=None):
    rng = np.random.default_rng(seed)
    batch = cat.start(bank, config, truth.shape[0], rng)
    taken = 0
    while not batch.finished.all() and (steps is None or taken < steps):
        item = np.where(batch.finished, 0, batch.next_item)
        responses = irt.simulate_responses(
            bank, truth[np.arange(batch.n), bank.area[item]], item, rng
        )
        batch = cat.advance(bank, config, batch, responses, rng)
        taken += 1
    return batch


@pytest.mark.parametrize("selector", sorted(SELECTORS))
@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_selector_runs_with_every_estimator(every_model_bank, selector, estimator):
    bank = every_model_bank
    config = TestConfig(
        name="grid",
        selector=SELECTORS[selector](),
        estimator=ESTIMATORS[estimator](),
        min_items=6,
        max_items=6,
    )
    truth = np.random.default_rng(1).normal(size=(12, bank.n_areas))
    batch = _drive(bank, config, truth)
    assert np.all(batch.length == 6)
    assert np.all(np.isfinite(batch.theta)) and np.all(batch.se > 0)
    # No item twice in a test.
    for row in batch.items:
        given = row[row >= 0]
        assert given.size == np.unique(given).size


def _one_area_batch(bank, items, responses, estimator=None):
    """A batch (N = 1) that has answered ``items`` with ``responses``."""
    config = TestConfig(name="t", estimator=estimator or EAP(), max_items=40)
    batch = cat.start(bank, config, 1, np.random.default_rng(0))
    for item, response in zip(items, responses, strict=True):
        batch = cat._replace(batch, next_item=np.array([item], dtype=np.int32))
        batch = cat.advance(bank, config, batch, np.array([response]), np.random.default_rng(1))
    return batch


def test_minimum_expected_posterior_variance_matches_brute_force():
    bank = make_bank(n_items=15, n_areas=1, seed=7, models=("2pl", "grm", "gpcm"))
    batch = _one_area_batch(bank, [0, 1], [1, 2])
    crit = MinimumExpectedPosteriorVariance().criterion(bank, batch, np.array([0]))[0]
    tables = bank_tables(bank)
    grid = tables.quadrature
    w = posterior_weights(bank, EAP(), batch.loglik)[0, 0]
    current = w @ grid**2 - (w @ grid) ** 2
    for item in range(bank.n_items):
        expected = 0.0
        for k in range(int(bank.n_categories[item])):
            p_k = np.exp(tables.log_prob[item, k])
            predictive = w @ p_k
            post = w * p_k / predictive
            expected += predictive * (post @ grid**2 - (post @ grid) ** 2)
        assert crit[item] == pytest.approx(current - expected, rel=1e-6, abs=1e-12)


def test_kullback_leibler_is_the_integral_around_the_estimate():
    bank = make_bank(n_items=9, n_areas=1, seed=8, models=("3pl", "grm", "pcm"))
    batch = _one_area_batch(bank, [0, 1, 2, 3], [1, 0, 2, 1])
    theta, n = batch.theta[0, 0], int(batch.area_counts[0, 0])
    delta = 3.0 / np.sqrt(n)
    crit = KullbackLeibler(points=41).criterion(bank, batch, np.array([0]))[0]
    for item in range(bank.n_items):
        p_hat = irt.bank_probabilities(bank, np.array([theta]))[0, item]

        def kl(t, item=item, p_hat=p_hat):
            p = irt.bank_probabilities(bank, np.array([t]))[0, item]
            keep = p_hat > 0
            return float(np.sum(p_hat[keep] * np.log(p_hat[keep] / p[keep])))

        exact, _ = quad(kl, theta - delta, theta + delta)
        assert crit[item] == pytest.approx(exact, rel=1e-4, abs=1e-9)


def test_posterior_kullback_leibler_averages_over_the_estimators_posterior():
    bank = make_bank(n_items=10, n_areas=1, seed=9)
    estimator = EAP(prior_mean=0.5, prior_sd=0.7)
    batch = _one_area_batch(bank, [0, 1], [1, 0], estimator)
    crit = PosteriorKullbackLeibler().criterion(bank, batch, np.array([0]), estimator=estimator)[0]
    grid = bank_tables(bank).quadrature
    w = posterior_weights(bank, estimator, batch.loglik)[0, 0]
    p_hat = irt.bank_probabilities(bank, batch.theta[0, :1])[0]
    p_grid = irt.bank_probabilities(bank, grid)
    for item in range(bank.n_items):
        keep = p_hat[item] > 0
        kl = (p_hat[item, keep] * np.log(p_hat[item, keep] / p_grid[:, item, keep])).sum(axis=1)
        assert crit[item] == pytest.approx(w @ kl, rel=1e-6)


def test_posterior_weighted_rules_use_the_estimators_own_posterior():
    # Issue 16: posterior-weighted information used its own N(0, 1) per area,
    # ignoring the estimator's prior and what CorrelatedEAP borrows.
    bank = make_bank(n_items=30, n_areas=3, seed=10)
    rows = np.array([0])
    shifted = EAP(prior_mean=1.0, prior_sd=0.6)
    empty = cat.empty(bank, TestConfig(name="t", estimator=shifted), 1)
    default = PosteriorWeightedInformation().criterion(bank, empty, rows, estimator=EAP())
    own = PosteriorWeightedInformation().criterion(bank, empty, rows, estimator=shifted)
    grid = bank_tables(bank).quadrature
    w = np.exp(-0.5 * ((grid - 1.0) / 0.6) ** 2)
    expected = (w / w.sum()) @ irt.bank_information(bank, grid)
    np.testing.assert_allclose(own[0], expected, rtol=1e-6)
    assert not np.allclose(own, default)
    # CorrelatedEAP: answers in area 0 move the posterior of areas 1 and 2.
    correlated = CorrelatedEAP(correlation=0.8)
    batch = _one_area_batch(bank, [0, 3, 6, 9], [1, 1, 1, 1], correlated)
    assert batch.area_counts[0].tolist() == [4, 0, 0]
    borrowed = posterior_weights(bank, correlated, batch.loglik)[0]
    alone = posterior_weights(bank, EAP(), batch.loglik)[0]
    assert borrowed[1] @ grid > alone[1] @ grid + 0.3  # area 1 borrows the high answers
    crit = PosteriorWeightedInformation().criterion(bank, batch, rows, estimator=correlated)[0]
    area1 = np.flatnonzero(bank.area == 1)
    np.testing.assert_allclose(
        crit[area1], borrowed[1] @ irt.bank_information(bank, grid)[:, area1], rtol=1e-6
    )


def test_overall_precision_has_no_unused_prior():
    # Issue 16: OverallPrecision.prior_mean and prior_sd were never used.
    assert not hasattr(OverallPrecision(), "prior_mean")
    assert not hasattr(OverallPrecision(), "prior_sd")


def test_random_selection_is_uniform_over_eligible_items():
    bank = make_bank(n_items=10, n_areas=1, seed=11)
    config = TestConfig(name="r", selector=RandomSelection(), max_items=3)
    first = cat.start(bank, config, 20_000, np.random.default_rng(3)).next_item
    shares = np.bincount(first, minlength=bank.n_items) / first.size
    np.testing.assert_allclose(shares, 0.1, atol=0.015)
    with pytest.raises(ValueError, match="random generator"):
        RandomSelection().criterion(bank, cat.empty(bank, config, 1), np.array([0]))


def test_a_stratified_spends_low_discrimination_items_first():
    bank = make_bank(n_items=40, n_areas=1, seed=13, models=("2pl",))
    config = TestConfig(
        name="a", selector=AStratified(strata=4, items_per_stratum=3), min_items=12, max_items=12
    )
    truth = np.random.default_rng(4).normal(size=(30, 1))
    batch = _drive(bank, config, truth)
    order = np.argsort(bank.discrimination, kind="stable")
    stratum = np.empty(bank.n_items, dtype=int)
    stratum[order] = np.arange(bank.n_items) * 4 // bank.n_items
    given = stratum[batch.items[:, :12]]
    np.testing.assert_array_equal(given, np.repeat(np.arange(4), 3)[None, :].repeat(30, axis=0))


# ------------------------------------------------------------------- WLE
def _evidence(bank, items, responses):
    grid = bank_tables(bank).quadrature
    items = np.asarray(items)
    responses = np.asarray(responses)
    loglik = irt.log_likelihood(bank, grid, items, responses)[None, :]
    return loglik, items[None, :], responses[None, :], np.ones((1, items.size), dtype=bool)


def test_wle_is_the_mode_of_likelihood_times_root_information_for_2pl():
    bank = make_bank(n_items=20, n_areas=1, seed=14, models=("2pl",))
    rng = np.random.default_rng(0)
    fine = np.linspace(-6, 6, 60_001)
    items = np.arange(20)
    for responses in (rng.integers(0, 2, 20), np.ones(20, dtype=int)):
        theta, se = WLE(bound=6).estimate(bank, *_evidence(bank, items, responses))
        weighted = irt.log_likelihood(bank, fine, items, responses) + 0.5 * np.log(
            irt.bank_information(bank, fine).sum(axis=1)
        )
        assert theta[0] == pytest.approx(fine[np.argmax(weighted)], abs=5e-4)
        assert abs(theta[0]) < 5.9  # finite for all-correct, unlike the MLE
        assert se[0] == pytest.approx(
            1 / np.sqrt(irt.bank_information(bank, theta).sum()), rel=1e-6
        )
    all_right, _ = MLE(bound=6).estimate(bank, *_evidence(bank, items, np.ones(20, dtype=int)))
    assert all_right[0] == 6.0


def test_wle_solves_warms_score_equation_for_graded_and_3pl_items():
    bank = make_bank(n_items=24, n_areas=1, seed=15, models=("3pl", "grm"))
    rng = np.random.default_rng(2)
    items = np.arange(24)
    responses = irt.simulate_responses(bank, np.full(24, 0.4), items, rng)
    theta, _ = WLE().estimate(bank, *_evidence(bank, items, responses))
    h = 1e-4

    def loglik(t):
        return irt.log_likelihood(bank, np.array([t]), items, responses)[0]

    def information(t):
        return irt.bank_information(bank, np.array([t]))[0].sum()

    t = theta[0]
    gradient = (loglik(t + h) - loglik(t - h)) / (2 * h)
    # J = sum_k P' P'' / P from finite differences of the probabilities.
    p = irt.bank_probabilities(bank, np.array([t - h, t, t + h]))
    dp = (p[2] - p[0]) / (2 * h)
    d2p = (p[2] - 2 * p[1] + p[0]) / h**2
    j = np.where(p[1] > 1e-12, dp * d2p / np.maximum(p[1], 1e-12), 0).sum()
    assert gradient + j / (2 * information(t)) == pytest.approx(0.0, abs=1e-4)
    # Less biased than the MLE on average is the point; here: close to it.
    mle, _ = MLE().estimate(bank, *_evidence(bank, items, responses))
    assert abs(theta[0] - mle[0]) < 0.3


def test_wle_without_answers_is_zero_with_the_largest_se():
    bank = make_bank(n_items=5, n_areas=1, seed=16)
    grid = bank_tables(bank).quadrature
    theta, se = WLE(max_se=7.0).estimate(
        bank,
        np.zeros((1, grid.size)),
        np.full((1, 2), -1),
        np.full((1, 2), -1),
        np.zeros((1, 2), bool),
    )
    assert theta[0] == 0.0 and se[0] == 7.0


def test_every_estimator_states_its_prior():
    bank = make_bank(n_items=10, n_areas=2, seed=17)
    loglik = np.zeros((1, 2, bank_tables(bank).quadrature.size))
    for name, estimator in ESTIMATORS.items():
        weights = posterior_weights(bank, estimator(), loglik)
        np.testing.assert_allclose(weights.sum(axis=2), 1.0, err_msg=name)
    flat = posterior_weights(bank, MLE(), loglik)
    np.testing.assert_allclose(flat, 1.0 / loglik.shape[2])
    normal = posterior_weights(bank, MAP(prior_mean=0.5), loglik)
    assert normal[0, 0] @ bank_tables(bank).quadrature == pytest.approx(0.5, abs=1e-6)
