"""Joint estimation of correlated areas, and the rules that use it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from conftest import grid_loglik, make_bank
from nangluc.engine import cat, irt
from nangluc.engine.config import CITIZEN_TEST, TestConfig
from nangluc.engine.estimation import EAP, CorrelatedEAP, estimate_areas
from nangluc.engine.scoring import band_probabilities, level_posterior, probability_of_level, score
from nangluc.engine.selection import OverallPrecision, point_information
from nangluc.engine.stopping import LevelProbability, StopContext
from nangluc.engine.tables import bank_tables

TWO_AREAS = make_bank(n_items=30, n_areas=2, seed=17, version="two-areas")


_loglik = grid_loglik


def test_zero_correlation_is_the_independent_eap():
    rng = np.random.default_rng(0)
    items = rng.choice(TWO_AREAS.n_items, 8, replace=False)
    responses = irt.simulate_responses(TWO_AREAS, np.zeros(8), items, rng)
    loglik = _loglik(TWO_AREAS, items, responses)
    theta, se, corr = CorrelatedEAP(correlation=0.0).estimate_joint(TWO_AREAS, loglik)
    for area in range(2):
        t, s = EAP().estimate(TWO_AREAS, loglik[:, area], None, None, None)
        assert theta[0, area] == pytest.approx(t[0], abs=1e-9)
        assert se[0, area] == pytest.approx(s[0], abs=1e-9)
    np.testing.assert_allclose(corr[0], np.eye(2), atol=1e-12)


@pytest.mark.parametrize("n_items", [0, 3, 10])
def test_correlated_eap_is_close_to_the_exact_bivariate_posterior(n_items):
    rng = np.random.default_rng(n_items)
    r = 0.7
    items = np.concatenate(
        [np.flatnonzero(TWO_AREAS.area == 0)[:n_items], np.flatnonzero(TWO_AREAS.area == 1)[:1]]
    )
    truth = np.array([1.0, 0.5])
    responses = irt.simulate_responses(TWO_AREAS, truth[TWO_AREAS.area[items]], items, rng)
    loglik = _loglik(TWO_AREAS, items, responses)
    theta, se, corr = CorrelatedEAP(correlation=r).estimate_joint(TWO_AREAS, loglik)

    grid = bank_tables(TWO_AREAS).quadrature
    t1, t2 = np.meshgrid(grid, grid, indexing="ij")
    log_post = loglik[0, 0][:, None] + loglik[0, 1][None, :]
    log_post += multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).logpdf(np.dstack([t1, t2]))
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = np.array([(w * t1).sum(), (w * t2).sum()])
    sd = np.sqrt([(w * (t1 - mean[0]) ** 2).sum(), (w * (t2 - mean[1]) ** 2).sum()])
    exact_corr = (w * (t1 - mean[0]) * (t2 - mean[1])).sum() / sd.prod()
    # The other area's likelihood enters as a Gaussian summary: close, not exact.
    np.testing.assert_allclose(theta[0], mean, atol=0.06)
    np.testing.assert_allclose(se[0], sd, atol=0.04)
    assert corr[0, 0, 1] == pytest.approx(exact_corr, abs=0.08)


def test_collateral_information_shrinks_unseen_areas_towards_seen_ones():
    area0 = np.flatnonzero(TWO_AREAS.area == 0)[:8]
    responses = TWO_AREAS.n_categories[area0] - 1  # top answers in area 0 only
    loglik = _loglik(TWO_AREAS, area0, responses)
    theta, se, _ = CorrelatedEAP(correlation=0.7).estimate_joint(TWO_AREAS, loglik)
    assert theta[0, 1] > 0.5  # area 1 was never asked but is pulled up
    assert se[0, 1] < 1.0
    independent, _, _ = estimate_areas(
        TWO_AREAS,
        EAP(),
        loglik,
        np.zeros((1, 0), int),
        np.zeros((1, 0), int),
        np.zeros((1, 0), bool),
    )
    assert independent[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_correlation_matrix_validation():
    with pytest.raises(ValueError, match="positive definite"):
        CorrelatedEAP(correlation=((1.0, 1.0), (1.0, 1.0)))
    with pytest.raises(ValueError, match="unit diagonal"):
        CorrelatedEAP(correlation=((2.0, 0.1), (0.1, 1.0)))
    with pytest.raises(ValueError, match="2x2"):
        CorrelatedEAP(correlation=((1.0, 0.2), (0.2, 1.0))).correlation_matrix(3)


def test_overall_se_uses_the_area_correlation():
    bank = make_bank()
    theta = np.zeros((1, 5))
    se = np.full((1, 5), 0.4)
    independent = score(bank, theta, se).overall_se[0]
    correlated = score(bank, theta, se, np.full((1, 5, 5), 0.5) + 0.5 * np.eye(5)).overall_se[0]
    tables = bank_tables(bank)
    slope = tables.interpolate_areas(np.zeros((1, 5)), tables.area_score_slope)[0][0]
    g = slope * 0.4
    c = np.full((5, 5), 0.5) + 0.5 * np.eye(5)
    assert independent == pytest.approx(np.sqrt((g**2).sum()) / 5, rel=1e-3)
    assert correlated == pytest.approx(np.sqrt(g @ c @ g) / 5, rel=1e-3)


def test_overall_precision_equals_the_exact_variance_reduction():
    bank = make_bank(n_items=40, seed=2)
    config = TestConfig(
        estimator=CorrelatedEAP(0.6), selector=OverallPrecision(posterior_weighted=False)
    )
    batch = cat.start(bank, config, 1, np.random.default_rng(0))
    batch = cat.advance(bank, config, batch, np.array([1]), np.random.default_rng(1))
    crit = config.selector.criterion(bank, batch, np.array([0]))[0]
    tables = bank_tables(bank)
    slope = tables.interpolate_areas(batch.theta[:1], tables.area_score_slope)[0][0]
    cov = batch.theta_corr[0] * np.outer(batch.se[0], batch.se[0])
    info = point_information(bank, batch.theta)[0]
    before = slope @ cov @ slope
    for i in (0, 7, 13):
        precision = np.linalg.inv(cov)
        precision[bank.area[i], bank.area[i]] += info[i]
        after = slope @ np.linalg.inv(precision) @ slope
        assert crit[i] == pytest.approx(before - after, rel=1e-6)


def test_band_probabilities_against_direct_integration():
    scores = np.array([50.0, 41.0, 10.0, 95.0, 79.0])
    se = np.array([3.0, 2.0, 5.0, 4.0, 1.5])
    expected = [
        norm.cdf(60, 50, 3) - norm.cdf(40, 50, 3),
        norm.cdf(60, 41, 2) - norm.cdf(40, 41, 2),
        norm.cdf(20, 10, 5),
        1 - norm.cdf(80, 95, 4),
        norm.cdf(80, 79, 1.5) - norm.cdf(60, 79, 1.5),
    ]
    probabilities = band_probabilities(scores, se)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(probability_of_level(probabilities, scores), expected, rtol=1e-9)


def test_level_probability_rule_reads_the_posterior_of_the_evidence():
    bank = make_bank()
    rng = np.random.default_rng(3)
    items = rng.choice(bank.n_items, 14, replace=False)
    loglik = _loglik(bank, items, irt.simulate_responses(bank, np.full(14, 0.3), items, rng))
    model = CorrelatedEAP(correlation=0.7)
    joint = model.posterior(bank, loglik)
    scores = score(bank, joint.theta, joint.se, joint.correlation)
    context = StopContext(
        length=np.array([14]),
        area_counts=np.bincount(bank.area[items], minlength=5)[None, :],
        theta=joint.theta,
        se=joint.se,
        scores=scores,
        bank=bank,
        loglik=loglik,
        posterior_model=model,
    )
    levels = level_posterior(bank, joint.weights, joint.correlation)
    p = probability_of_level(levels.overall_probabilities, scores.overall_score)[0]
    assert 0.3 < p < 0.999
    assert LevelProbability(threshold=max(p - 0.01, 0.51)).met(context)[0]
    assert not LevelProbability(threshold=min(p + 0.01, 0.999)).met(context)[0]


def test_citizen_test_runs_to_a_decision():
    bank = make_bank(n_items=120, seed=3)
    rng = np.random.default_rng(5)
    truth = rng.multivariate_normal(np.zeros(5), np.full((5, 5), 0.7) + 0.3 * np.eye(5), size=200)
    batch = cat.start(bank, CITIZEN_TEST, 200, rng)
    while not batch.finished.all():
        item = np.where(batch.finished, 0, batch.next_item)
        batch = cat.advance(
            bank,
            CITIZEN_TEST,
            batch,
            irt.simulate_responses(bank, truth[np.arange(200), bank.area[item]], item, rng),
            rng,
        )
    assert np.all(batch.area_counts >= 1)
    assert np.all((batch.scored_length >= 5) & (batch.scored_length <= 40))
    scores = score(bank, batch.theta, batch.se, batch.theta_corr)
    probable = batch.stop_reason == "level_probable"
    assert probable.mean() > 0.5
    joint = CITIZEN_TEST.posterior.posterior(bank, batch.loglik)
    levels = level_posterior(bank, joint.weights, joint.correlation)
    stated = probability_of_level(levels.overall_probabilities, scores.overall_score)
    assert np.all(stated[probable] >= 0.9)
    assert np.all(stated[batch.stop_reason == "max_items"] < 0.9)


@pytest.mark.parametrize("r", [-0.2, 0.0, 0.4, 0.9])
def test_equal_correlation_closed_form_matches_the_matrix_inverse(r):
    # A scalar correlation takes the Sherman–Morrison closed form; the same
    # prior written as a full matrix takes np.linalg.inv. Both must agree.
    bank = make_bank(n_items=60, n_areas=5, seed=3, version="five-areas")
    rng = np.random.default_rng(int(10 * r) + 50)
    loglik = np.zeros((40, bank.n_areas, bank_tables(bank).quadrature.size))
    for row in range(40):
        items = rng.choice(bank.n_items, rng.integers(0, 25), replace=False)
        responses = irt.simulate_responses(bank, rng.normal(size=items.size), items, rng)
        loglik[row] = _loglik(bank, items, responses)[0]
    scalar = CorrelatedEAP(correlation=r, prior_mean=0.3, prior_sd=1.2)
    matrix = CorrelatedEAP(
        correlation=tuple(map(tuple, scalar.correlation_matrix(bank.n_areas))),
        prior_mean=0.3,
        prior_sd=1.2,
    )
    for a, b in zip(
        scalar.estimate_joint(bank, loglik), matrix.estimate_joint(bank, loglik), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
