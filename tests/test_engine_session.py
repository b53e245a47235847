"""One test in progress: immutable JSON state advanced by a pure step."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_bank
from nangluc.engine import cat, irt
from nangluc.engine.config import CITIZEN_TEST, TestConfig
from nangluc.engine.estimation import MAP, CorrelatedEAP
from nangluc.engine.selection import (
    MaximumInformation,
    OverallPrecision,
    Randomesque,
    SympsonHetter,
)
from nangluc.engine.session import (
    TestState,
    answer_item,
    replay,
    score_patterns,
    score_responses,
    score_test,
    start_test,
)
from nangluc.engine.stopping import LevelProbability, OverallStandardError

BANK = make_bank(n_items=80, seed=21, version="session-bank", pretest=4)
CONFIG = replace(CITIZEN_TEST, pretest_positions=(3,))


def play(state, choices, config=CONFIG, bank=BANK):
    """Answer with choices[k] modulo the item's number of categories."""
    for k, choice in enumerate(choices):
        if state.finished:
            break
        n_cat = int(bank.n_categories[bank.index(state.next_item)])
        state = answer_item(bank, config, state, state.next_item, choice % n_cat)
        assert state.answered == k + 1
    return state


@given(seed=st.integers(0, 2**31 - 1), choices=st.lists(st.integers(0, 3), max_size=45))
@settings(max_examples=40, deadline=None)
def test_state_round_trips_through_json_and_replays(seed, choices):
    state = play(start_test(BANK, CONFIG, seed=seed), choices)
    text = json.dumps(state.to_json())
    assert TestState.from_json(json.loads(text)) == state
    rebuilt = replay(BANK, CONFIG, state)
    assert [BANK.item_ids[i] for i in rebuilt.items[0, : rebuilt.length[0]]] == list(
        state.administered
    )
    np.testing.assert_allclose(rebuilt.theta[0], state.theta, rtol=0, atol=1e-12)
    assert len(set(state.administered)) == state.answered
    assert sum(BANK.operational[BANK.index(i)] for i in state.administered) <= CONFIG.max_items


def test_step_is_pure_and_deterministic():
    state = play(start_test(BANK, CONFIG, seed=7), [1, 0, 2])
    snapshot = state.to_json()
    first = answer_item(BANK, CONFIG, state, state.next_item, 1)
    second = answer_item(BANK, CONFIG, state, state.next_item, 1)
    assert first == second
    assert state.to_json() == snapshot


def test_state_records_bank_version_and_refuses_another_bank():
    state = start_test(BANK, CONFIG, seed=1)
    assert state.bank_version == "session-bank"
    other = make_bank(n_items=80, seed=21, version="another", pretest=4)
    with pytest.raises(ValueError, match="runs on bank session-bank"):
        answer_item(other, CONFIG, state, state.next_item, 0)


def test_refusals_name_the_problem():
    state = start_test(BANK, CONFIG, seed=3)
    other_item = next(i for i in BANK.item_ids if i != state.next_item)
    with pytest.raises(ValueError, match="not the current item"):
        answer_item(BANK, CONFIG, state, other_item, 0)
    with pytest.raises(ValueError, match="out of range"):
        answer_item(BANK, CONFIG, state, state.next_item, 7)
    with pytest.raises(ValueError, match="integer"):
        answer_item(BANK, CONFIG, state, state.next_item, True)
    finished = play(state, [1] * 60)
    assert finished.finished and finished.next_item is None
    with pytest.raises(ValueError, match="finished"):
        answer_item(BANK, CONFIG, finished, "x", 0)


def test_single_sessions_match_the_lockstep_batch():
    # Without randomness in selection, the service path (one state at a time)
    # and the simulator path (N rows in lockstep) must choose the same items.
    config = TestConfig(
        name="det",
        selector=MaximumInformation(),
        estimator=MAP(),
        stopping=(OverallStandardError(3.0),),
        max_items=15,
    )
    rng = np.random.default_rng(4)
    choices = rng.integers(0, 4, size=(3, 15))
    states, batch = _side_by_side(
        BANK, config, 3, rng, lambda step, items: choices[:, step] % BANK.n_categories[items]
    )
    for row in range(3):
        assert states[row].finished == bool(batch.finished[row])
        # Same sums in another order; MAP's scoring stops at steps below 1e-7.
        np.testing.assert_allclose(states[row].theta, batch.theta[row], atol=1e-6)


def test_single_sessions_match_the_lockstep_batch_with_the_joint_estimator():
    # answer_item rebuilds one session's arrays with the answer in place and
    # calls cat.settle; the simulator records answers with cat.advance. With
    # no randomness in the rules they must choose the same items.
    config = TestConfig(
        name="joint-det",
        estimator=CorrelatedEAP(0.7),
        selector=OverallPrecision(),
        stopping=(LevelProbability(0.9),),
        min_items=3,
        max_items=20,
    )
    bank = make_bank(n_items=80, n_areas=5, seed=8, version="five-areas-b")
    rng = np.random.default_rng(9)
    truth = rng.normal(size=(4, bank.n_areas))
    states, batch = _side_by_side(
        bank,
        config,
        4,
        rng,
        lambda step, items: irt.simulate_responses(
            bank, truth[np.arange(4), bank.area[items]], items, rng
        ),
    )
    for row in range(4):
        assert states[row].finished and states[row].stop_reason == batch.stop_reason[row]
        np.testing.assert_allclose(states[row].theta, batch.theta[row], atol=1e-9)
        np.testing.assert_allclose(states[row].correlation, batch.theta_corr[row], atol=1e-9)


def _side_by_side(bank, config, n, rng, respond):
    """Run n sessions with answer_item and an n-row batch with cat.advance on the
    same responses (``respond(step, current items)``) until all finish, checking
    at every step that both offer the same item. Returns the states and the batch."""
    batch = cat.start(bank, config, n, rng)
    states = [start_test(bank, config, seed=s) for s in range(n)]
    step = 0
    while not batch.finished.all():
        items = np.where(batch.finished, 0, batch.next_item)
        responses = respond(step, items)
        for row in range(n):
            if not states[row].finished:
                assert states[row].next_item == bank.item_ids[batch.next_item[row]]
                states[row] = answer_item(
                    bank, config, states[row], states[row].next_item, int(responses[row])
                )
        batch = cat.advance(bank, config, batch, responses, rng)
        step += 1
    return states, batch


def test_exposure_lottery_is_reproduced_from_the_seed():
    config = TestConfig(
        name="sh",
        selector=MaximumInformation(),
        exposure=SympsonHetter(control=tuple(np.full(BANK.n_items, 0.5))),
        max_items=10,
    )
    a = play(start_test(BANK, config, seed=11), [1] * 10, config)
    b = play(start_test(BANK, config, seed=11), [1] * 10, config)
    c = play(start_test(BANK, config, seed=12), [1] * 10, config)
    assert a.administered == b.administered
    assert a.administered != c.administered


def test_score_test_reports_every_area():
    state = play(start_test(BANK, CONFIG, seed=5), [2, 1, 3, 0, 1, 2, 3, 1] * 5)
    result = score_test(BANK, state, CONFIG)
    assert len(result.areas) == BANK.n_areas
    assert result.overall.score == pytest.approx(np.mean([a.score for a in result.areas]))
    for part in (*result.areas, result.overall):
        assert 0 <= part.score <= 100 and part.se > 0
        assert 1 <= part.level <= 5
        assert part.interval[0] <= part.interval[1]
        assert sum(part.level_probabilities) == pytest.approx(1.0)
        assert part.probability == pytest.approx(part.level_probabilities[part.level - 1])
    assert result.answered == state.answered
    assert sum(a.answered for a in result.areas) == sum(
        BANK.operational[BANK.index(i)] for i in state.administered
    )


def test_from_json_rejects_malformed_states():
    good = start_test(BANK, CONFIG, seed=1).to_json()
    with pytest.raises(ValueError, match="lacks field"):
        TestState.from_json({k: v for k, v in good.items() if k != "seed"})
    with pytest.raises(ValueError, match="format"):
        TestState.from_json({**good, "format": 99})
    with pytest.raises(TypeError):
        TestState.from_json([1, 2])


def test_randomesque_sessions_vary_with_seed():
    config = replace(CONFIG, exposure=Randomesque(k=4))
    firsts = {start_test(BANK, config, seed=s).next_item for s in range(20)}
    assert len(firsts) > 1


def test_starts_share_the_prior_posterior_and_give_what_computing_it_gives(monkeypatch) -> None:
    bank = make_bank()
    config = CITIZEN_TEST
    start_test(bank, config, seed=0)  # the first start of a bank computes it
    model = type(config.posterior)
    computed = model.posterior
    calls: list[int] = []

    def counted(self, *args):
        calls.append(1)
        return computed(self, *args)

    monkeypatch.setattr(model, "posterior", counted)
    states = [start_test(bank, config, seed=seed) for seed in range(1, 6)]
    assert calls == []
    monkeypatch.undo()
    # The same numbers as the route that computes it each time (the level rules
    # computing their own posterior, the estimates from two rows at once).
    for seed, state in enumerate(states, start=1):
        rng = np.random.default_rng([seed, 0])
        batch = cat.empty(bank, config, 1, rng)
        own = cat._select_or_finish(bank, config, batch, np.arange(1), rng, None, None)
        assert state.next_item == bank.item_ids[int(own.next_item[0])]
        assert state.level_probability == round(float(own.level_probability[0]), 6)
    two = cat.empty(bank, config, 2, np.random.default_rng(0))
    assert states[0].theta == tuple(two.theta[0]) and states[0].se == tuple(two.se[0])
    assert states[0].correlation == tuple(map(tuple, two.theta_corr[0].tolist()))


@pytest.mark.parametrize("config", [CITIZEN_TEST, TestConfig(name="map-test", estimator=MAP())])
def test_score_patterns_gives_what_score_responses_gives_one_by_one(monkeypatch, config) -> None:
    from nangluc.engine import session as session_module

    monkeypatch.setattr(session_module, "PATTERN_BLOCK", 4)  # several blocks, one partial
    rng = np.random.default_rng(5)
    patterns = [{}]  # nothing answered
    for _ in range(10):
        chosen = rng.choice(BANK.n_items, size=int(rng.integers(1, 30)), replace=False)
        patterns.append(
            {
                BANK.item_ids[i]: int(rng.integers(int(BANK.n_categories[i])))
                for i in chosen.tolist()
            }
        )
    patterns.append(list(patterns[3].items())[::-1])  # pairs, in another order
    together = score_patterns(BANK, patterns, config=config)
    alone = [score_responses(BANK, p, config=config) for p in patterns]
    assert len(together) == len(alone)
    for block, single in zip(together, alone, strict=True):
        # Equal up to the last digits of the batched matrix products.
        assert _numbers(block) == pytest.approx(_numbers(single), rel=1e-12, abs=1e-12)
        assert _labels(block) == _labels(single)
    assert together[-1] == together[3]


def _numbers(result) -> list[float]:
    parts = [result.overall, *result.areas]
    out = []
    for p in parts:
        out += [p.score, p.se, *p.interval, p.probability, *p.level_probabilities]
    return out + [a.theta for a in result.areas] + [a.theta_se for a in result.areas]


def _labels(result) -> list:
    parts = [result.overall, *result.areas]
    out = [(p.level, p.settled) for p in parts] + [(a.area, a.answered) for a in result.areas]
    return out + [result.answered, result.finished, result.stop_reason, result.settled_by]


def test_score_patterns_names_the_pattern_that_is_wrong() -> None:

    good = {BANK.item_ids[0]: 0}
    with pytest.raises(ValueError, match=r"^pattern 2: item 'nope' is not in bank session-bank$"):
        score_patterns(BANK, [good, good, {"nope": 1}], config=CITIZEN_TEST)
    top = int(BANK.n_categories[1])
    with pytest.raises(ValueError, match=rf"^pattern 1: response {top} is out of range"):
        score_patterns(BANK, [good, {BANK.item_ids[1]: top}], config=CITIZEN_TEST)
    assert score_patterns(BANK, [], config=CITIZEN_TEST) == []
