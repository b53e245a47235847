"""Simulation core: populations, the lockstep run, references and the summary."""

from __future__ import annotations

import dataclasses
import json
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nangluc import simulations
from nangluc.engine import (
    CITIZEN_TEST,
    EAP,
    MLE,
    LevelDecided,
    MaximumInformation,
    OverallStandardError,
    PosteriorWeightedInformation,
    TestConfig,
    ThetaStandardError,
    answer_item,
    start_test,
)
from nangluc.simulations import core


@pytest.fixture(scope="module")
def bank5():
    return simulations.synthetic_bank(
        np.random.default_rng(11), n_items=100, n_areas=5, model="mixed"
    )


@pytest.fixture(scope="module")
def bank1():
    return simulations.synthetic_bank(
        np.random.default_rng(12), n_items=120, n_areas=1, model="2pl"
    )


SE_TEST = TestConfig(
    name="se-0.3",
    estimator=EAP(),
    selector=MaximumInformation(),
    stopping=(ThetaStandardError(0.3),),
    min_items=1,
    max_items=60,
)

# A short citizen test keeps the suite fast; the rules are the default ones.
SHORT_CITIZEN = dataclasses.replace(CITIZEN_TEST, name="citizen-short", max_items=20)


# -------------------------------------------------------------- population
def test_draw_population_has_the_requested_correlation_and_scale():
    theta = simulations.draw_population(20_000, 5, 0.7, np.random.default_rng(1))
    assert theta.shape == (20_000, 5)
    assert np.allclose(theta.mean(axis=0), 0.0, atol=0.03)
    assert np.allclose(theta.std(axis=0), 1.0, atol=0.03)
    corr = np.corrcoef(theta.T)[np.triu_indices(5, 1)]
    assert np.allclose(corr, 0.7, atol=0.02)


def test_draw_population_extremes_and_seed():
    same = simulations.draw_population(500, 3, 1.0, np.random.default_rng(2))
    assert np.allclose(same, same[:, :1])
    independent = simulations.draw_population(20_000, 2, 0.0, np.random.default_rng(3))
    assert abs(np.corrcoef(independent.T)[0, 1]) < 0.03
    a = simulations.draw_population(10, 5, 0.5, np.random.default_rng(4))
    b = simulations.draw_population(10, 5, 0.5, np.random.default_rng(4))
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 5, 0.7), "simulees"),
        ((10, 0, 0.7), "areas"),
        ((10, 5, 1.5), "correlation"),
        ((10, 5, -0.1), "correlation"),
        ((10, 5, float("nan")), "correlation"),
    ],
)
def test_draw_population_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        simulations.draw_population(*args, np.random.default_rng(0))


def test_read_population_by_area_codes_and_by_theta_names(tmp_path):
    codes = ("1", "2", "3")
    by_code = tmp_path / "codes.csv"
    by_code.write_text(
        "id,3,1,2,ward\na,0.3,0.1,0.2,Hải Châu\nb,-1,-3,-2,Sơn Trà\n\n", encoding="utf-8"
    )
    theta = simulations.read_population(by_code, codes)
    assert theta.tolist() == [[0.1, 0.2, 0.3], [-3.0, -2.0, -1.0]]
    by_name = tmp_path / "names.csv"
    by_name.write_text("theta_1,theta_2,theta_3\n1,2,3\n", encoding="utf-8")
    assert simulations.read_population(by_name, codes).tolist() == [[1.0, 2.0, 3.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("theta_1,theta_2\n1,2\n", "one column per area"),
        ("1,2,3\n", "no rows"),
        ("1,2,3\n1,x,3\n", "line 2, column 2: 'x' is not a number"),
        ("1,2,3\n1,inf,3\n", "finite"),
        ("1,2,3\n1,2\n", "expected 3 fields"),
    ],
)
def test_read_population_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "pop.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        simulations.read_population(path, ("1", "2", "3"))


def test_read_population_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        simulations.read_population(tmp_path / "nope.csv", ("1",))


# --------------------------------------------------------------------- run
def test_run_is_reproducible_and_independent_of_chunking_workers(bank5):
    theta = simulations.draw_population(300, 5, 0.7, np.random.default_rng(5))
    first = simulations.run(bank5, SHORT_CITIZEN, theta, np.random.default_rng(9), chunk_size=128)
    again = simulations.run(
        bank5, SHORT_CITIZEN, theta, np.random.default_rng(9), chunk_size=128, workers=2
    )
    assert np.array_equal(first.items, again.items)
    assert np.array_equal(first.theta, again.theta)
    for key in ("mean_items", "rmse", "bias", "level_accuracy", "theta_rmse", "level_confusion"):
        assert first.summary[key] == again.summary[key]
    other = simulations.run(bank5, SHORT_CITIZEN, theta, np.random.default_rng(10), chunk_size=128)
    assert not np.array_equal(first.items, other.items)


def test_run_follows_the_engine_rules_of_a_single_session(bank5):
    """Replaying a simulee's responses through the service's step gives its items and estimate."""
    config = dataclasses.replace(SHORT_CITIZEN, exposure=None)  # deterministic selection
    theta = simulations.draw_population(40, 5, 0.7, np.random.default_rng(6))
    result = simulations.run(bank5, config, theta, np.random.default_rng(1), chunk_size=16)
    for j in range(0, 40, 7):
        state = start_test(bank5, config, seed=0)
        length = int(result.administered[j])
        for k in range(length):
            item_id = bank5.item_ids[result.items[j, k]]
            assert state.next_item == item_id
            state = answer_item(bank5, config, state, item_id, int(result.responses[j, k]))
        assert state.finished
        assert state.stop_reason == result.stop_reason[j]
        assert np.allclose(state.theta, result.theta[j])
        assert np.allclose(state.se, result.theta_se[j])


def test_run_respects_length_limits_and_stop_rule(bank5):
    config = dataclasses.replace(
        SHORT_CITIZEN,
        stopping=(LevelDecided(confidence=0.95), OverallStandardError(target=4.0)),
        min_items=6,
    )
    theta = simulations.draw_population(400, 5, 0.7, np.random.default_rng(7))
    result = simulations.run(bank5, config, theta, np.random.default_rng(2))
    assert np.all(result.length >= config.min_items)
    assert np.all(result.length <= config.max_items)
    assert set(result.stop_reason) <= {"level_decided", "overall_se", "max_items", "no_item_left"}
    assert np.all(result.scores.overall_se[result.stop_reason == "overall_se"] <= 4.0)
    # Items are distinct within a test and the per-area counts add up.
    for row, n in zip(result.items, result.administered, strict=True):
        assert len(set(row[:n].tolist())) == n and np.all(row[n:] == -1)
    assert np.array_equal(result.area_counts.sum(axis=1), result.length)
    assert np.isclose(result.exposure.sum(), result.administered.mean())
    stopped_by_rule = result.stop_reason == "level_decided"
    # A result is settled exactly when its level rule is met: every test the
    # rule stopped, and none that ran to the maximum length.
    assert stopped_by_rule.any()
    np.testing.assert_array_equal(result.settled[stopped_by_rule], True)
    assert not result.settled[result.stop_reason == "max_items"].any()


def test_theta_se_rule_gives_the_promised_precision(bank1):
    theta = simulations.draw_population(1500, 1, 0.0, np.random.default_rng(8))
    result = simulations.run(bank1, SE_TEST, theta, np.random.default_rng(3))
    reached = result.stop_reason == "theta_se"
    assert reached.mean() > 0.95
    assert np.all(result.theta_se[reached] <= 0.3)
    # The posterior SD is an honest error: the RMSE is close to the SE target.
    rmse = result.summary["theta_rmse"]["1"]
    assert 0.22 < rmse < 0.36
    assert abs(result.summary["theta_bias"]["1"]) < 0.05


def test_true_theta_selection_is_not_longer_than_the_cat_for_point_information(bank1):
    theta = simulations.draw_population(1500, 1, 0.0, np.random.default_rng(9))
    real = simulations.run(bank1, SE_TEST, theta, np.random.default_rng(4))
    oracle = simulations.run(
        bank1, SE_TEST, theta, np.random.default_rng(4), true_theta_selection=True
    )
    assert oracle.name == "se-0.3+true-theta"
    assert oracle.summary["mean_items"] <= real.summary["mean_items"] * 1.02


def test_true_theta_selection_uses_point_information_and_no_exposure_control():
    pwi = dataclasses.replace(SE_TEST, selector=PosteriorWeightedInformation())
    assert isinstance(simulations.true_theta_selection_config(pwi).selector, MaximumInformation)
    oracle = simulations.true_theta_selection_config(CITIZEN_TEST)
    assert oracle.selector.posterior_weighted is False
    assert oracle.exposure is None
    assert oracle.stopping == CITIZEN_TEST.stopping and oracle.content == CITIZEN_TEST.content


def test_run_rejects_bad_input(bank5):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"shape \(simulees, 5\)"):
        simulations.run(bank5, SHORT_CITIZEN, np.zeros((10, 3)), rng)
    with pytest.raises(ValueError, match="finite"):
        simulations.run(bank5, SHORT_CITIZEN, np.full((10, 5), np.nan), rng)
    with pytest.raises(ValueError, match="at least one simulee"):
        simulations.run(bank5, SHORT_CITIZEN, np.zeros((0, 5)), rng)
    with pytest.raises(ValueError, match="chunk_size"):
        simulations.run(bank5, SHORT_CITIZEN, np.zeros((3, 5)), rng, chunk_size=0)


# ----------------------------------------------------------------- summary
def test_summary_is_plain_json_with_the_contract_keys(bank5):
    theta = simulations.draw_population(200, 5, 0.7, np.random.default_rng(10))
    result = simulations.run(bank5, SHORT_CITIZEN, theta, np.random.default_rng(5))
    summary = json.loads(json.dumps(result.summary, allow_nan=False))
    for key in ("examinees", "mean_items", "rmse", "bias", "level_accuracy", "seconds"):
        assert key in summary
    assert summary["examinees"] == 200
    error = result.scores.overall_score - result.true_scores.overall_score
    assert summary["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)), abs=1e-4)
    assert summary["bias"] == pytest.approx(error.mean(), abs=1e-4)
    confusion = np.array(summary["level_confusion"]["counts"])
    assert confusion.sum() == 200
    assert summary["level_accuracy"] == pytest.approx(np.trace(confusion) / 200, abs=1e-4)
    assert sum(summary["length"]["counts"].values()) == 200
    assert set(summary["theta_rmse"]) == set(bank5.area_codes)
    assert 0 < summary["exposure_mean"] <= summary["exposure_max"] <= 1


def test_overlap_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    items = np.full((30, 6), -1)
    lengths = rng.integers(2, 7, 30)
    for j, n in enumerate(lengths):
        items[j, :n] = rng.choice(12, n, replace=False)
    shared = [
        len(set(items[i][items[i] >= 0]) & set(items[k][items[k] >= 0]))
        for i, k in combinations(range(30), 2)
    ]
    expected = np.mean(shared) / lengths.mean()
    assert core._overlap(items, 12, lengths) == pytest.approx(expected, abs=1e-4)


# -------------------------------------------------------- full-bank reference
def test_full_bank_scores_beat_a_short_test(bank5):
    theta = simulations.draw_population(1000, 5, 0.7, np.random.default_rng(11))
    full = simulations.full_bank_scores(bank5, SHORT_CITIZEN, theta, np.random.default_rng(6))
    short = simulations.run(bank5, SHORT_CITIZEN, theta, np.random.default_rng(6))
    assert full.summary["items"] == bank5.n_items
    assert full.summary["rmse"] < short.summary["rmse"]
    assert full.summary["level_accuracy"] >= short.summary["level_accuracy"] - 0.01
    # EAP's posterior SD matches its actual error on the full bank.
    theta_rmse = np.sqrt(np.mean((full.theta - theta) ** 2, axis=0))
    assert np.allclose(theta_rmse, np.sqrt(np.mean(full.theta_se**2, axis=0)), rtol=0.15)
    assert np.array_equal(full.true_scores.overall_level, simulations.true_levels(bank5, theta))


def test_full_bank_scores_with_mle_are_finite_and_reproducible(bank1):
    config = dataclasses.replace(SE_TEST, estimator=MLE())
    theta = np.array([[-6.0], [0.0], [6.0]])
    a = simulations.full_bank_scores(bank1, config, theta, np.random.default_rng(1), chunk_size=2)
    b = simulations.full_bank_scores(bank1, config, theta, np.random.default_rng(1))
    assert np.all(np.isfinite(a.theta)) and np.all(np.abs(a.theta) <= 4.0)
    assert np.array_equal(a.theta, b.theta)


# ---------------------------------------------------------------- property
@settings(max_examples=12, deadline=None)
@given(
    n_areas=st.integers(1, 3),
    model=st.sampled_from(["2pl", "3pl", "grm", "mixed"]),
    min_items=st.integers(0, 4),
    extra=st.integers(0, 8),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_small_design_gives_consistent_results(n_areas, model, min_items, extra, n, seed):
    rng = np.random.default_rng(seed)
    bank = simulations.synthetic_bank(rng, n_items=12 * n_areas, n_areas=n_areas, model=model)
    config = TestConfig(
        name="prop", selector=MaximumInformation(), stopping=(ThetaStandardError(0.5),),
        min_items=min_items, max_items=max(1, min_items + extra),
    )  # fmt: skip
    theta = simulations.draw_population(n, n_areas, 0.5, rng)
    result = simulations.run(bank, config, theta, rng, chunk_size=16)
    assert np.all(np.isfinite(result.theta)) and np.all(result.theta_se > 0)
    assert np.all(result.length <= config.max_items)
    assert np.all((result.length >= config.min_items) | (result.stop_reason == "no_item_left"))
    assert np.array_equal(result.area_counts.sum(axis=1), result.length)
    given_items = result.items[result.items >= 0]
    assert np.all(result.responses[result.items >= 0] < bank.n_categories[given_items])
    assert np.isclose(result.exposure.sum(), result.administered.mean())
    assert 0 <= result.summary["level_accuracy"] <= 1
    json.dumps(result.summary, allow_nan=False)


def test_conditional_bias_and_se_by_true_score_and_theta(bank1):
    theta = np.random.default_rng(8).normal(size=(3000, 1))
    result = simulations.run(bank1, SE_TEST, theta, np.random.default_rng(9))
    conditional = result.summary["conditional"]
    rows = conditional["overall_score"]
    assert rows and all(r["n"] >= 20 for r in rows)
    error = result.scores.overall_score - result.true_scores.overall_score
    true = result.true_scores.overall_score
    for r in rows:
        inside = (true >= r["low"]) & (true < r["high"])
        assert r["n"] == int(inside.sum())
        assert r["bias"] == pytest.approx(error[inside].mean(), abs=1e-4)
        assert r["se"] == pytest.approx(error[inside].std(), abs=1e-4)
    (code,) = result.area_codes
    theta_rows = conditional["theta"][code]
    covered = sum(r["n"] for r in theta_rows)
    assert 0.95 * theta.shape[0] <= covered <= theta.shape[0]
    # Where the test stops at a fixed SE, the empirical SE is near the target.
    middle = [r for r in theta_rows if -1.5 <= r["low"] < 1.5]
    assert all(0.15 < r["se"] < 0.45 for r in middle)
