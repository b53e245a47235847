"""IRT response functions: closed forms, invariants, derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from nangluc.engine import irt
from nangluc.engine.bank import ItemBank

thetas = st.floats(-6, 6, allow_nan=False)
discriminations = st.floats(0.2, 3.0)
locations = st.floats(-3.5, 3.5)


@st.composite
def graded_items(draw):
    a = draw(discriminations)
    steps = draw(st.lists(st.floats(0.05, 2.0), min_size=1, max_size=4))
    start = draw(locations)
    thresholds = start + np.cumsum([0.0, *steps[1:]]) if len(steps) > 1 else np.array([start])
    c = draw(st.sampled_from([0.0, 0.0, 0.2, 0.25])) if thresholds.size == 1 else 0.0
    return a, np.asarray(thresholds, dtype=float), c


def _arrays(items):
    width = max(t.size for _, t, _ in items)
    table = np.full((len(items), width), np.inf)
    for i, (_, t, _) in enumerate(items):
        table[i, : t.size] = t
    return np.array([a for a, _, _ in items]), table, np.array([c for _, _, c in items])


@given(st.lists(graded_items(), min_size=1, max_size=6), st.lists(thetas, min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_category_probabilities_are_a_distribution(items, theta):
    a, table, c = _arrays(items)
    probs = irt.category_probabilities(np.array(theta), a, table, c)
    assert probs.shape == (len(theta), len(items), table.shape[1] + 1)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-12)
    # categories beyond an item's last one have probability zero
    for i, (_, t, _) in enumerate(items):
        assert np.all(probs[:, i, t.size + 1 :] == 0)


@given(st.lists(graded_items(), min_size=1, max_size=6), thetas)
@settings(max_examples=150, deadline=None)
def test_information_is_nonnegative_and_matches_numerical_fisher(items, theta):
    a, table, c = _arrays(items)
    info = irt.item_information(np.array([theta]), a, table, c)[0]
    assert np.all(info >= 0)
    h = 1e-5
    p = irt.category_probabilities(np.array([theta]), a, table, c)[0]
    dp = (
        irt.category_probabilities(np.array([theta + h]), a, table, c)[0]
        - irt.category_probabilities(np.array([theta - h]), a, table, c)[0]
    ) / (2 * h)
    with np.errstate(divide="ignore", invalid="ignore"):
        numeric = np.where(p > 1e-12, dp**2 / p, 0.0).sum(axis=1)
    np.testing.assert_allclose(info, numeric, rtol=1e-4, atol=1e-7)


def test_two_and_three_parameter_closed_forms():
    theta = np.linspace(-3, 3, 13)
    a, b, c = np.array([1.3, 0.8]), np.array([[0.2], [-0.5]]), np.array([0.0, 0.25])
    probs = irt.category_probabilities(theta, a, b, c)
    p2 = expit(1.3 * (theta - 0.2))
    p3 = 0.25 + 0.75 * expit(0.8 * (theta + 0.5))
    np.testing.assert_allclose(probs[:, 0, 1], p2)
    np.testing.assert_allclose(probs[:, 1, 1], p3)
    info = irt.item_information(theta, a, b, c)
    np.testing.assert_allclose(info[:, 0], 1.3**2 * p2 * (1 - p2))
    expected_3pl = 0.8**2 * (p3 - 0.25) ** 2 * (1 - p3) / ((1 - 0.25) ** 2 * p3)
    np.testing.assert_allclose(info[:, 1], expected_3pl, rtol=1e-10)


def test_graded_boundaries_follow_design_parameterisation():
    theta = np.array([0.3])
    thresholds = np.array([[-1.0, 0.1, 1.2]])
    star = irt.boundary_probabilities(theta, np.array([1.7]), thresholds, np.array([0.0]))
    np.testing.assert_allclose(star[0, 0], expit(1.7 * (0.3 - thresholds[0])))
    probs = irt.category_probabilities(theta, np.array([1.7]), thresholds, np.array([0.0]))[0, 0]
    np.testing.assert_allclose(probs[0], 1 - star[0, 0, 0])
    np.testing.assert_allclose(probs[3], star[0, 0, 2])


@given(st.lists(graded_items(), min_size=1, max_size=5), thetas)
@settings(max_examples=100, deadline=None)
def test_expected_score_derivative_matches_finite_difference(items, theta):
    a, table, c = _arrays(items)
    h = 1e-6
    numeric = (
        irt.expected_score(np.array([theta + h]), a, table, c)
        - irt.expected_score(np.array([theta - h]), a, table, c)
    ) / (2 * h)
    analytic = irt.expected_score_derivative(np.array([theta]), a, table, c)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-8)


def test_expected_score_increases_with_theta(mixed_bank: ItemBank):
    theta = np.linspace(-5, 5, 101)
    expected = irt.expected_score(
        theta, mixed_bank.discrimination, mixed_bank.thresholds, mixed_bank.guessing
    )
    assert np.all(np.diff(expected, axis=0) > 0)


def test_simulated_responses_follow_the_model(mixed_bank: ItemBank):
    rng = np.random.default_rng(3)
    for item in (0, 1):  # a 3PL and a graded item
        theta = np.full(40_000, 0.4)
        responses = irt.simulate_responses(mixed_bank, theta, np.full(theta.size, item), rng)
        probs = irt.bank_probabilities(mixed_bank, np.array([0.4]))[0, item]
        observed = np.bincount(responses, minlength=probs.size) / theta.size
        np.testing.assert_allclose(observed, probs, atol=0.01)


def test_log_likelihood_sums_category_log_probabilities(mixed_bank: ItemBank):
    items, responses = np.array([0, 1, 2]), np.array([1, 2, 0])
    theta = np.array([-1.0, 0.5])
    probs = irt.bank_probabilities(mixed_bank, theta)
    expected = np.log(probs[:, items, responses]).sum(axis=1)
    np.testing.assert_allclose(irt.log_likelihood(mixed_bank, theta, items, responses), expected)


def test_bank_rejects_bad_parameters():
    base = dict(version="v", item_ids=["a", "b"], areas=["1", "1"], models=["2pl", "grm"])
    with pytest.raises(ValueError, match="discrimination"):
        ItemBank.from_items(**base, discrimination=[1.0, -0.2], thresholds=[[0.0], [-1.0, 1.0]])
    with pytest.raises(ValueError, match="strictly increasing"):
        ItemBank.from_items(**base, discrimination=[1.0, 1.0], thresholds=[[0.0], [1.0, -1.0]])
    with pytest.raises(ValueError, match="unknown model"):
        ItemBank.from_items(
            **{**base, "models": ["2pl", "4pl"]},
            discrimination=[1.0, 1.0],
            thresholds=[[0.0], [0.0]],
        )
    with pytest.raises(ValueError, match="duplicate"):
        ItemBank.from_items(
            **{**base, "item_ids": ["a", "a"]},
            discrimination=[1.0, 1.0],
            thresholds=[[0.0], [-1.0, 1.0]],
        )
    with pytest.raises(ValueError, match="one difficulty"):
        ItemBank.from_items(**base, discrimination=[1.0, 1.0], thresholds=[[0.0, 1.0], [-1.0, 1.0]])


def test_bank_arrays_are_read_only(mixed_bank: ItemBank):
    with pytest.raises(ValueError):
        mixed_bank.discrimination[0] = 5.0
