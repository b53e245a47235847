"""Ability estimation: EAP, MAP and MLE against direct numerical answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from scipy.stats import norm

from conftest import make_bank
from nangluc.engine import irt
from nangluc.engine.estimation import EAP, MAP, MLE
from nangluc.engine.tables import bank_tables

ONE_AREA = make_bank(n_items=40, n_areas=1, seed=11, version="one-area")


def _evidence(bank, items, responses):
    tables = bank_tables(bank)
    items = np.asarray(items)
    responses = np.asarray(responses)
    loglik = (
        tables.log_prob[items, responses].sum(axis=0)[None, :]
        if items.size
        else np.zeros((1, tables.quadrature.size))
    )
    return loglik, items[None, :], responses[None, :], np.ones((1, items.size), dtype=bool)


def _pattern(seed, n):
    rng = np.random.default_rng(seed)
    items = rng.choice(ONE_AREA.n_items, size=n, replace=False)
    responses = irt.simulate_responses(ONE_AREA, np.full(n, 0.7), items, rng)
    return items, responses


def test_eap_without_responses_is_the_prior():
    theta, se = EAP(prior_mean=0.5, prior_sd=0.8).estimate(ONE_AREA, *_evidence(ONE_AREA, [], []))
    assert theta[0] == pytest.approx(0.5, abs=1e-6)
    assert se[0] == pytest.approx(0.8, abs=1e-4)


def test_eap_matches_numerical_integration():
    items, responses = _pattern(1, 8)
    theta, se = EAP().estimate(ONE_AREA, *_evidence(ONE_AREA, items, responses))

    def posterior(t, power):
        return (
            t**power
            * np.exp(irt.log_likelihood(ONE_AREA, np.array([t]), items, responses)[0])
            * norm.pdf(t)
        )

    mass = integrate.quad(posterior, -8, 8, args=(0,))[0]
    mean = integrate.quad(posterior, -8, 8, args=(1,))[0] / mass
    second = integrate.quad(posterior, -8, 8, args=(2,))[0] / mass
    assert theta[0] == pytest.approx(mean, abs=2e-3)
    assert se[0] == pytest.approx(np.sqrt(second - mean**2), abs=2e-3)


def test_map_is_the_posterior_mode():
    items, responses = _pattern(2, 10)
    theta, se = MAP().estimate(ONE_AREA, *_evidence(ONE_AREA, items, responses))

    def negative_log_posterior(t):
        return -(irt.log_likelihood(ONE_AREA, np.array([t]), items, responses)[0] - 0.5 * t**2)

    mode = optimize.minimize_scalar(
        negative_log_posterior, bounds=(-6, 6), method="bounded", options={"xatol": 1e-8}
    ).x
    assert theta[0] == pytest.approx(mode, abs=1e-4)
    info = irt.bank_information(ONE_AREA, np.array([mode]))[0, items].sum()
    assert se[0] == pytest.approx(1 / np.sqrt(info + 1), rel=1e-3)


def test_mle_is_the_likelihood_maximum():
    items, responses = _pattern(3, 15)
    theta, se = MLE().estimate(ONE_AREA, *_evidence(ONE_AREA, items, responses))

    def negative_log_likelihood(t):
        return -irt.log_likelihood(ONE_AREA, np.array([t]), items, responses)[0]

    best = optimize.minimize_scalar(
        negative_log_likelihood, bounds=(-4, 4), method="bounded", options={"xatol": 1e-8}
    ).x
    assert theta[0] == pytest.approx(best, abs=1e-4)
    info = irt.bank_information(ONE_AREA, np.array([best]))[0, items].sum()
    assert se[0] == pytest.approx(1 / np.sqrt(info), rel=1e-3)


@pytest.mark.parametrize("level", ["lowest", "highest"])
def test_mle_stays_finite_for_extreme_patterns(level):
    items = np.arange(10)
    responses = np.zeros(10, dtype=int) if level == "lowest" else ONE_AREA.n_categories[items] - 1
    theta, se = MLE(bound=4.0).estimate(ONE_AREA, *_evidence(ONE_AREA, items, responses))
    assert np.isfinite(theta[0]) and np.isfinite(se[0])
    assert theta[0] == pytest.approx(-4.0 if level == "lowest" else 4.0)


@pytest.mark.parametrize("estimator", [EAP(), MAP(), MLE()], ids=["eap", "map", "mle"])
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_estimates_are_finite_for_any_pattern(estimator, data):
    n = data.draw(st.integers(0, 12))
    items = np.array(data.draw(st.permutations(range(ONE_AREA.n_items)))[:n], dtype=int)
    responses = np.array(
        [data.draw(st.integers(0, int(ONE_AREA.n_categories[i]) - 1)) for i in items], dtype=int
    )
    theta, se = estimator.estimate(ONE_AREA, *_evidence(ONE_AREA, items, responses))
    assert np.isfinite(theta).all() and np.isfinite(se).all()
    assert (se > 0).all()
    assert -6 <= theta[0] <= 6


@pytest.mark.parametrize("estimator", [EAP(), MAP(), MLE()], ids=["eap", "map", "mle"])
def test_estimates_converge_to_true_theta_on_long_tests(estimator):
    bank = make_bank(n_items=300, n_areas=1, seed=5, version="long")
    rng = np.random.default_rng(8)
    items = np.arange(bank.n_items)
    for true in (-1.5, 0.0, 1.2):
        estimates = []
        for _ in range(20):
            responses = irt.simulate_responses(bank, np.full(items.size, true), items, rng)
            theta, se = estimator.estimate(bank, *_evidence(bank, items, responses))
            estimates.append(theta[0])
        # 300 items give SE near 0.07; the mean of 20 replications is within 0.05
        assert np.mean(estimates) == pytest.approx(true, abs=0.06)
        assert se[0] < 0.12


def test_rows_are_estimated_independently():
    items, responses = _pattern(4, 6)
    loglik, it, rs, member = _evidence(ONE_AREA, items, responses)
    both = EAP().estimate(
        ONE_AREA,
        np.vstack([loglik, np.zeros_like(loglik)]),
        np.vstack([it, it]),
        np.vstack([rs, rs]),
        np.vstack([member, ~member]),
    )
    single = EAP().estimate(ONE_AREA, loglik, it, rs, member)
    assert both[0][0] == pytest.approx(single[0][0])
    assert both[0][1] == pytest.approx(0.0, abs=1e-9)


def test_invalid_priors_are_refused():
    with pytest.raises(ValueError, match="prior sd"):
        EAP(prior_sd=0)
    with pytest.raises(ValueError, match="bound"):
        MLE(bound=-1)


def test_mle_dodd_heuristic_halves_the_way_to_the_extreme_threshold():
    bank = make_bank(n_items=20, n_areas=1, models=("2pl",), seed=4, version="dodd")
    b = bank.thresholds[:, 0]
    estimator = MLE(extreme="dodd")
    for k in (1, 2, 5):
        items = np.arange(k)
        top, _ = estimator.estimate(bank, *_evidence(bank, items, np.ones(k, dtype=int)))
        bottom, _ = estimator.estimate(bank, *_evidence(bank, items, np.zeros(k, dtype=int)))
        assert top[0] == pytest.approx(b.max() * (1 - 0.5**k))
        assert bottom[0] == pytest.approx(b.min() * (1 - 0.5**k))
    mixed, _ = estimator.estimate(
        bank, *_evidence(bank, np.arange(6), np.array([1, 0, 1, 1, 0, 1]))
    )
    plain, _ = MLE().estimate(bank, *_evidence(bank, np.arange(6), np.array([1, 0, 1, 1, 0, 1])))
    assert mixed[0] == pytest.approx(plain[0])
    with pytest.raises(ValueError, match="extreme"):
        MLE(extreme="guess")
