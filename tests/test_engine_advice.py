"""What to learn next: next-step criteria from the measurement (issue #11)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import grid_loglik
from nangluc import items
from nangluc.engine import CITIZEN_TEST, advise, answer_item, irt, score_test, start_test
from nangluc.engine.advice import LEARNING_ZONE, next_steps, success_probability
from nangluc.engine.bank import KINDS, ItemBank
from nangluc.engine.estimation import CorrelatedEAP
from nangluc.engine.scoring import level_code, score

DOC = items.load_bank()
BANK = DOC.item_bank


def _bank_with_skills(seed: int = 5) -> ItemBank:
    """A 5-area bank whose items of areas 4 and 5 belong to basic skills."""
    rng = np.random.default_rng(seed)
    n = 60
    models = ["3pl" if i % 3 == 0 else "grm" for i in range(n)]
    thresholds = [
        [float(rng.normal())] if m == "3pl" else sorted(rng.normal(0, 1, 3).tolist())
        for m in models
    ]
    areas = [str(1 + i % 5) for i in range(n)]
    return ItemBank.from_items(
        version="advice-bank",
        item_ids=[f"{a}.1.{i:02d}" for i, a in enumerate(areas)],
        areas=areas,
        models=models,
        discrimination=rng.uniform(0.8, 2.0, n).tolist(),
        thresholds=thresholds,
        guessing=[0.25 if m == "3pl" else 0.0 for m in models],
        competences=[f"{a}.1" for a in areas],
        basic_skills=[("online-payment",) if a in "45" else () for a in areas],
        kinds=[
            "knowledge" if m == "3pl" else ("attitude" if i % 2 else "skill")
            for i, m in enumerate(models)
        ],
    )


SKILLED = _bank_with_skills()


def test_a_criterion_is_met_by_knowing_or_by_the_upper_categories():
    theta = np.array([-6.0, 0.0, 6.0])
    success = success_probability(BANK, theta)
    three_pl = np.flatnonzero(BANK.guessing > 0)[0]
    # A lucky guess is not knowing: at very low ability a 3PL criterion is not met.
    assert success[0, three_pl] < 0.01 < irt.bank_probabilities(BANK, theta)[0, three_pl, 1]
    graded = np.flatnonzero(BANK.n_categories == 4)[0]
    probs = irt.bank_probabilities(BANK, theta)[:, graded, :]
    np.testing.assert_allclose(success[:, graded], probs[:, 2:].sum(axis=1))
    assert np.all(np.diff(success, axis=0) >= 0)


def _posterior(bank, n, rng, shift=0.0):
    weights, levels, overall = [], [], []
    model = CorrelatedEAP(0.7)
    for _ in range(n):
        chosen = rng.choice(bank.n_items, rng.integers(0, 30), replace=False)
        truth = shift + rng.normal(size=bank.n_areas)
        responses = irt.simulate_responses(bank, truth[bank.area[chosen]], chosen, rng)
        joint = model.posterior(bank, grid_loglik(bank, chosen, responses))
        scores = score(bank, joint.theta, joint.se)
        weights.append(joint.weights[0])
        levels.append(scores.area_level[0])
        overall.append(scores.overall_level[0])
    return np.array(weights), np.array(levels), np.array(overall)


@given(seed=st.integers(0, 2**31 - 1), shift=st.floats(-2.5, 2.5))
@settings(max_examples=25, deadline=None)
def test_next_steps_are_unmet_criteria_of_their_area(seed, shift):
    rng = np.random.default_rng(seed)
    weights, area_level, overall_level = _posterior(SKILLED, 6, rng, shift)
    steps = next_steps(SKILLED, weights, area_level, overall_level)
    attitude = KINDS.index("attitude")
    for row in range(weights.shape[0]):
        assert sorted(steps.order[row]) == list(range(SKILLED.n_areas))
        tops = [a for a in steps.order[row] if steps.top_area[row, a]]
        assert list(steps.order[row][len(steps.order[row]) - len(tops) :]) == tops  # top areas last
        for area in range(SKILLED.n_areas):
            named = steps.items[row, area][steps.items[row, area] >= 0]
            assert len(set(named)) == named.size
            assert np.all(SKILLED.area[named] == area) and np.all(SKILLED.operational[named])
            assert np.all(steps.success[row, area, : named.size] < 0.5)
            assert np.all((steps.reach[row, area] >= 0) & (steps.reach[row, area] <= 1))
            assert np.sum(SKILLED.kind[named] == attitude) <= 1
            if steps.top_area[row, area]:
                assert named.size == 0 and steps.gain[row, area] == 0
            assert steps.gain[row, area] >= 0
        # Areas whose next steps include a basic skill come before the others with steps.
        with_steps = [a for a in steps.order[row] if steps.items[row, a, 0] >= 0]
        basic = [bool(SKILLED.basic_skills[steps.items[row, a, 0]]) for a in with_steps]
        assert basic == sorted(basic, reverse=True)


def test_next_steps_are_the_ones_most_likely_within_reach():
    rng = np.random.default_rng(3)
    weights, area_level, overall_level = _posterior(SKILLED, 1, rng)
    area_level[:] = 2
    steps = next_steps(SKILLED, weights, area_level, overall_level, per_area=1)
    grid = np.linspace(-6, 6, weights.shape[2])
    success = success_probability(SKILLED, grid)
    for area in range(SKILLED.n_areas):
        members = np.flatnonzero(SKILLED.area == area)
        w = weights[0, area]
        expected = w @ success[:, members]
        # Coarse check of "within reach" on the grid points themselves.
        within = w @ ((success[:, members] >= LEARNING_ZONE[0]) & (success[:, members] <= 0.7))
        candidates = expected < 0.5
        if not candidates.any():
            continue
        chosen = steps.items[0, area, 0]
        assert chosen in members[candidates]
        assert within[members == chosen][0] >= within[candidates].max() - 0.15


def test_bad_arguments():
    with pytest.raises(ValueError, match="per_area"):
        next_steps(SKILLED, np.ones((1, 5, 61)) / 61, np.ones((1, 5)), np.ones(1), per_area=0)


def _take_test(truth: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    state = start_test(BANK, CITIZEN_TEST, seed=seed)
    while not state.finished:
        i = BANK.index(state.next_item)
        response = irt.simulate_responses(BANK, truth[BANK.area[i : i + 1]], np.array([i]), rng)
        state = answer_item(BANK, CITIZEN_TEST, state, state.next_item, int(response[0]))
    return state


def test_a_citizen_at_the_top_is_told_so_and_given_nothing_remedial():
    """Regression (#11): a citizen who scored 93/100 (Nâng cao) was told to practise
    taking photos (the lowest area's fixed tip) and to ask for help."""
    state = _take_test(np.full(5, 2.6), seed=2)
    result = score_test(BANK, state)
    assert result.overall.level == 5 and result.overall.score >= 85
    advice = advise(BANK, state)
    assert advice.top_overall
    for area in advice.areas:
        assert area.top == (area.level == 5)
        if area.top:
            assert area.steps == ()
    photos = {"3.2.01", "3.2.06"}
    assert not photos & {s.item_id for a in advice.areas for s in a.steps}


def test_a_citizen_at_the_top_overall_with_one_weaker_area_gets_only_harder_steps():
    truth = np.array([2.6, 2.6, 1.0, 2.6, 2.6])
    state = _take_test(truth, seed=5)
    result = score_test(BANK, state)
    advice = advise(BANK, state)
    assert result.overall.level == 5 and advice.top_overall
    weaker = [a for a in advice.areas if not a.top]
    assert [a.area for a in weaker] == ["3"] and advice.areas[0].area == "3"
    for area in advice.areas:
        if area.top:
            assert area.steps == ()
        for step in area.steps:
            # Nothing below the citizen: the steps are criteria of the upper levels.
            assert DOC.item(step.item_id).level >= 4
            assert step.success < 0.5


def test_advice_orders_areas_and_flags_basic_skills():
    state = _take_test(np.full(5, -0.8), seed=9)
    advice = advise(BANK, state)
    assert not advice.top_overall
    assert [a.area for a in advice.areas] != []
    with_steps = [a for a in advice.areas if a.steps]
    assert len(with_steps) >= 3
    for area in with_steps:
        assert 2 <= len(area.steps) <= 3
        for step in area.steps:
            assert step.basic_skills == DOC.item(step.item_id).basic_skills
            assert step.competence == DOC.item(step.item_id).competence
    flags = [any(s.basic_skills for s in a.steps) for a in with_steps]
    assert flags == sorted(flags, reverse=True)
    levels = {a.area: a.level for a in advice.areas}
    assert levels == {a.area: a.level for a in score_test(BANK, state).areas}
    assert all(level_code(0) <= lv <= 5 for lv in levels.values())
