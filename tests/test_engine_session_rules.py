"""Sessions under the new rules: JSON round-trip and replay, with every model in the bank."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_bank
from nangluc.engine import (
    WLE,
    AStratified,
    ConditionalSympsonHetter,
    Constraint,
    CorrelatedEAP,
    KullbackLeibler,
    MinimumExpectedPosteriorVariance,
    PosteriorKullbackLeibler,
    RandomSelection,
    RandomStart,
    ShadowTest,
    SympsonHetter,
    TestConfig,
    TestState,
    answer_item,
    start_test,
)
from nangluc.engine.session import replay

BANK = make_bank(
    n_items=48, n_areas=3, seed=41, models=("2pl", "3pl", "grm", "1pl", "gpcm", "pcm"),
    version="rules",
)  # fmt: skip
CONFIGS = (
    TestConfig(name="kl-wle", selector=KullbackLeibler(), estimator=WLE(), max_items=12),
    TestConfig(
        name="mepv-correlated", selector=MinimumExpectedPosteriorVariance(),
        estimator=CorrelatedEAP(0.6), start=RandomStart(k=4), max_items=12,
    ),
    TestConfig(
        name="klp-sh", selector=PosteriorKullbackLeibler(),
        exposure=SympsonHetter(control=tuple(np.linspace(0.3, 1.0, BANK.n_items))), max_items=12,
    ),
    TestConfig(
        name="random-csh", selector=RandomSelection(),
        exposure=ConditionalSympsonHetter(
            cuts=(0.0,), control=(tuple([0.5] * BANK.n_items), tuple([0.9] * BANK.n_items))
        ),
        max_items=12,
    ),
    TestConfig(name="astrat", selector=AStratified(strata=3, items_per_stratum=2), max_items=12),
    TestConfig(
        name="shadow",
        shadow=ShadowTest(
            length=9, constraints=tuple(Constraint("area", c, minimum=3) for c in BANK.area_codes),
            enemies=((BANK.item_ids[0], BANK.item_ids[3]),),
        ),
        min_items=9, max_items=9,
    ),
)  # fmt: skip


@given(
    which=st.integers(0, len(CONFIGS) - 1),
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.integers(0, 3), max_size=14),
)
@settings(max_examples=40, deadline=None)
def test_sessions_under_every_rule_round_trip_and_replay(which, seed, choices):
    config = CONFIGS[which]
    state = start_test(BANK, config, seed=seed)
    for choice in choices:
        if state.finished:
            break
        n_cat = int(BANK.n_categories[BANK.index(state.next_item)])
        state = answer_item(BANK, config, state, state.next_item, choice % n_cat)
    assert TestState.from_json(json.loads(json.dumps(state.to_json()))) == state
    rebuilt = replay(BANK, config, state)
    assert [BANK.item_ids[i] for i in rebuilt.items[0, : rebuilt.length[0]]] == list(
        state.administered
    )
    np.testing.assert_allclose(rebuilt.theta[0], state.theta, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(state.theta)) and np.all(np.asarray(state.se) > 0)
    assert len(set(state.administered)) == state.answered
