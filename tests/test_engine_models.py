"""Partial-credit (GPCM, PCM) and 1PL/Rasch items, alone and mixed with 2PL/3PL/GRM."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax

from nangluc.engine import CITIZEN_TEST, MLE, TestConfig, irt
from nangluc.engine.bank import ItemBank
from nangluc.engine.cat import advance, start
from nangluc.engine.session import answer_item, score_test, start_test
from nangluc.items.schema import validate_document

thetas = st.floats(-6, 6, allow_nan=False)


@st.composite
def partial_credit_items(draw):
    a = draw(st.floats(0.2, 3.0))
    steps = draw(st.lists(st.floats(-3.5, 3.5), min_size=1, max_size=4))
    return a, np.asarray(steps, dtype=float)


def _arrays(items):
    width = max(t.size for _, t in items)
    table = np.full((len(items), width), np.inf)
    for i, (_, t) in enumerate(items):
        table[i, : t.size] = t
    a = np.array([a for a, _ in items])
    return a, table, np.zeros(len(items)), np.ones(len(items), dtype=bool)


def _gpcm_reference(theta: float, a: float, steps: np.ndarray) -> np.ndarray:
    """Muraki's GPCM written out term by term."""
    z = np.concatenate([[0.0], np.cumsum(a * (theta - steps))])
    return softmax(z)


@given(st.lists(partial_credit_items(), min_size=1, max_size=6), st.lists(thetas, min_size=1))
@settings(max_examples=150, deadline=None)
def test_partial_credit_probabilities_are_a_distribution(items, theta):
    a, table, c, partial = _arrays(items)
    probs = irt.category_probabilities(np.array(theta), a, table, c, partial)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-12)
    for i, (a_i, steps) in enumerate(items):
        assert np.all(probs[:, i, steps.size + 1 :] == 0)
        np.testing.assert_allclose(
            probs[0, i, : steps.size + 1], _gpcm_reference(theta[0], a_i, steps), atol=1e-12
        )


@given(st.lists(partial_credit_items(), min_size=1, max_size=5), thetas)
@settings(max_examples=150, deadline=None)
def test_partial_credit_information_is_a_squared_times_score_variance(items, theta):
    a, table, c, partial = _arrays(items)
    info = irt.item_information(np.array([theta]), a, table, c, partial)[0]
    assert np.all(info >= 0)
    probs = irt.category_probabilities(np.array([theta]), a, table, c, partial)[0]
    k = np.arange(probs.shape[1])
    variance = (probs * k**2).sum(axis=1) - (probs * k).sum(axis=1) ** 2
    np.testing.assert_allclose(info, a**2 * variance, rtol=1e-8, atol=1e-12)
    # The expected score's slope is the same a * Var(X).
    slope = irt.expected_score_derivative(np.array([theta]), a, table, c, partial)[0]
    np.testing.assert_allclose(slope, a * variance, rtol=1e-8, atol=1e-12)


def test_dichotomous_gpcm_item_is_a_2pl_item():
    theta = np.linspace(-4, 4, 17)
    a, b = np.array([1.4]), np.array([[0.3]])
    gpcm = irt.category_probabilities(theta, a, b, np.zeros(1), np.array([True]))
    two_pl = irt.category_probabilities(theta, a, b, np.zeros(1))
    np.testing.assert_allclose(gpcm, two_pl, atol=1e-12)
    np.testing.assert_allclose(gpcm[:, 0, 1], expit(1.4 * (theta - 0.3)))


def test_mixed_bank_keeps_each_model(every_model_bank: ItemBank):
    bank = every_model_bank
    theta = np.linspace(-3, 3, 7)
    probs = irt.bank_probabilities(bank, theta)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-12)
    for i in range(bank.n_items):
        m = int(bank.n_categories[i])
        a, t, c = bank.discrimination[i], bank.thresholds[i, : m - 1], bank.guessing[i]
        alone = irt.category_probabilities(
            theta, np.array([a]), t[None, :], np.array([c]), bank.partial_credit[i : i + 1]
        )[:, 0, :m]
        np.testing.assert_allclose(probs[:, i, :m], alone, atol=1e-12)
    # The expected item score rises with theta for every model.
    expected = irt.expected_score(
        np.linspace(-5, 5, 101),
        bank.discrimination,
        bank.thresholds,
        bank.guessing,
        bank.partial_credit,
    )
    assert np.all(np.diff(expected, axis=0) > 0)


def test_simulated_partial_credit_responses_follow_the_model(every_model_bank: ItemBank):
    bank = every_model_bank
    rng = np.random.default_rng(5)
    for item in np.flatnonzero(bank.partial_credit)[:2]:
        theta = np.full(40_000, -0.3)
        responses = irt.simulate_responses(bank, theta, np.full(theta.size, item), rng)
        probs = irt.bank_probabilities(bank, np.array([-0.3]))[0, item]
        observed = np.bincount(responses, minlength=probs.size) / theta.size
        np.testing.assert_allclose(observed, probs, atol=0.01)


def test_partial_credit_steps_may_be_reversed_but_graded_thresholds_may_not():
    bank = ItemBank.from_items(
        version="v",
        item_ids=["g", "p", "r"],
        areas=["1", "1", "1"],
        models=["gpcm", "pcm", "1pl"],
        discrimination=[1.2, 1.0, 1.0],
        thresholds=[[0.5, -0.5, 1.0], [1.0, 0.0], [0.2]],
    )
    assert bank.partial_credit.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="strictly increasing"):
        ItemBank.from_items(
            version="v",
            item_ids=["g"],
            areas=["1"],
            models=["grm"],
            discrimination=[1.0],
            thresholds=[[0.5, -0.5]],
        )
    with pytest.raises(ValueError, match="one difficulty"):
        ItemBank.from_items(
            version="v",
            item_ids=["r"],
            areas=["1"],
            models=["1pl"],
            discrimination=[1.0],
            thresholds=[[0.0, 1.0]],
        )


def test_bank_file_accepts_new_models_with_rasch_default():
    document = {
        "items": [
            {"id": "r1", "area": "1", "model": "1pl", "b": 0.3},
            {"id": "p1", "area": "1", "model": "pcm", "thresholds": [0.4, -0.2]},
            {"id": "g1", "area": "1", "model": "gpcm", "a": 1.3, "thresholds": [1.0, -1.0, 0.0]},
        ]
    }
    assert validate_document(document) == []
    missing_a = {"items": [{"id": "g1", "area": "1", "model": "gpcm", "thresholds": [0.0]}]}
    assert any("discrimination a is missing" in p.message for p in validate_document(missing_a))
    keyed = {"items": [{"id": "p", "area": "1", "model": "pcm", "thresholds": [0.0], "key": 1}]}
    assert any("ordered scores" in p.message for p in validate_document(keyed))
    from nangluc.items.bank import ItemRecord

    records = [ItemRecord.from_dict(d) for d in document["items"]]
    assert [r.a for r in records] == [1.0, 1.0, 1.3]
    assert records[1].to_dict()["thresholds"] == [0.4, -0.2]


def test_mle_recovers_theta_on_partial_credit_items():
    rng = np.random.default_rng(11)
    n = 40
    bank = ItemBank.from_items(
        version="pc",
        item_ids=[f"i{j}" for j in range(n)],
        areas=["1"] * n,
        models=["gpcm" if j % 2 else "pcm" for j in range(n)],
        discrimination=[1.5 if j % 2 else 1.0 for j in range(n)],
        thresholds=[list(rng.normal(0, 1.0, size=3)) for _ in range(n)],
    )
    truth = np.array([-1.5, 0.0, 1.2])
    items = np.tile(np.arange(n), (truth.size, 1))
    responses = irt.simulate_responses(bank, np.repeat(truth, n), items.ravel(), rng).reshape(
        truth.size, n
    )
    grid = np.linspace(-4, 4, 801)
    for row, true in enumerate(truth):
        loglik = irt.log_likelihood(bank, grid, items[row], responses[row])
        best = grid[np.argmax(loglik)]
        # Fisher scoring in the estimator reaches the grid maximum of the likelihood.
        from nangluc.engine.tables import bank_tables

        q = bank_tables(bank).quadrature
        ll_q = irt.log_likelihood(bank, q, items[row], responses[row])
        theta, se = MLE().estimate(
            bank, ll_q[None, :], items[row : row + 1], responses[row : row + 1],
            np.ones((1, n), dtype=bool),
        )  # fmt: skip
        assert abs(theta[0] - best) < 0.01
        assert abs(theta[0] - true) < 3 * se[0]


def test_adaptive_test_runs_on_every_model(every_model_bank: ItemBank):
    bank = every_model_bank
    config = TestConfig(name="every", max_items=15, min_items=15)
    rng = np.random.default_rng(2)
    batch = start(bank, config, 50, rng)
    truth = rng.normal(size=(50, bank.n_areas))
    while not batch.finished.all():
        going = ~batch.finished
        item = np.where(going, batch.next_item, 0)
        responses = irt.simulate_responses(bank, truth[np.arange(50), bank.area[item]], item, rng)
        batch = advance(bank, config, batch, responses, rng)
    assert np.all(np.isfinite(batch.theta)) and np.all(batch.se > 0)
    given = batch.items[batch.items >= 0]
    # Partial-credit items are informative, so the selector gives them.
    assert bank.partial_credit[given].any()
    # One session through the service path on the same bank.
    citizen = TestConfig(**{**CITIZEN_TEST.__dict__, "name": "every-session"})
    state = start_test(bank, citizen, seed=4)
    while not state.finished:
        index = bank.index(state.next_item)
        state = answer_item(
            bank, citizen, state, state.next_item, int(bank.n_categories[index]) // 2
        )
    result = score_test(bank, state, citizen)
    assert 0 <= result.overall.score <= 100
