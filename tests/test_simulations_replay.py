"""Post-hoc simulation (replaying recorded answers), per-person unavailable items,
start rules, scoring any response pattern, and the area-SE stopping rule."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_bank
from nangluc.engine import (
    CITIZEN_TEST,
    EAP,
    MLE,
    WLE,
    CorrelatedEAP,
    FixedStart,
    MaximumInformation,
    RandomStart,
    TestConfig,
    answer_item,
    cat,
    irt,
    score_responses,
    score_test,
    start_test,
)
from nangluc.engine.stopping import AreaStandardError
from nangluc.simulations import replay
from nangluc.simulations.cli import simulate

DETERMINISTIC = replace(CITIZEN_TEST, name="citizen-deterministic", exposure=None)


def _recorded(bank, n, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(
        np.zeros(bank.n_areas), 0.3 + 0.7 * np.eye(bank.n_areas), size=n
    )
    recorded = np.empty((n, bank.n_items), dtype=np.int16)
    for i in range(bank.n_items):
        recorded[:, i] = irt.simulate_responses(bank, theta[:, bank.area[i]], np.full(n, i), rng)
    recorded[rng.random(recorded.shape) < missing] = -1
    return recorded


def test_replay_equals_a_live_session_on_the_same_answers(big_bank):
    recorded = _recorded(big_bank, 12, seed=1)
    result = replay(big_bank, DETERMINISTIC, recorded, np.random.default_rng(0))
    sim = result.simulation
    for row in range(recorded.shape[0]):
        state = start_test(big_bank, DETERMINISTIC, seed=row)
        while not state.finished:
            index = big_bank.index(state.next_item)
            state = answer_item(
                big_bank, DETERMINISTIC, state, state.next_item, int(recorded[row, index])
            )
        given = sim.items[row][sim.items[row] >= 0]
        assert state.administered == tuple(big_bank.item_ids[i] for i in given)
        np.testing.assert_allclose(state.theta, sim.theta[row], atol=1e-9)
    # The last row of the by-length table is the tests as they ended.
    assert result.by_length[-1]["level_agreement"] == result.summary["level_agreement"]
    assert result.by_length[-1]["rmse"] == result.summary["rmse"]


def test_replay_never_gives_an_item_the_respondent_did_not_answer(big_bank):
    recorded = _recorded(big_bank, 200, seed=2, missing=0.5)
    recorded[0, :] = -1
    recorded[0, :3] = 1  # respondent 0 answered only three items
    result = replay(big_bank, CITIZEN_TEST, recorded, np.random.default_rng(1))
    items = result.simulation.items
    given = items >= 0
    rows = np.nonzero(given)[0]
    assert np.all(recorded[rows, items[given]] >= 0)
    assert result.simulation.stop_reason[0] == "no_item_left"
    assert sorted(items[0][items[0] >= 0].tolist()) == [0, 1, 2]
    # Agreement grows with the test length allowed, and the reference is the full pattern.
    agreement = [row["level_agreement"] for row in result.by_length]
    assert agreement[-1] > agreement[0]
    assert result.summary["reference"].startswith("full-pattern")
    assert result.summary["mean_responses_available"] == pytest.approx(
        ((recorded >= 0).sum(axis=1)).mean(), rel=1e-3
    )


def test_replay_refuses_bad_matrices(big_bank):
    with pytest.raises(ValueError, match="shape"):
        replay(big_bank, CITIZEN_TEST, np.zeros((3, 5), dtype=int), np.random.default_rng(0))
    bad = np.zeros((2, big_bank.n_items), dtype=int)
    bad[0, 0] = 9
    with pytest.raises(ValueError, match="outside"):
        replay(big_bank, CITIZEN_TEST, bad, np.random.default_rng(0))
    empty = np.full((2, big_bank.n_items), -1)
    empty[1, 0] = 1
    with pytest.raises(ValueError, match="respondent 1 has no recorded answer"):
        replay(big_bank, CITIZEN_TEST, empty, np.random.default_rng(0))


def test_simulate_responses_flag_replays_a_long_file(tmp_path):
    from nangluc.items import load_bank

    bank = load_bank().item_bank
    recorded = _recorded(bank, 60, seed=3, missing=0.3)
    path = tmp_path / "responses.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["respondent_id", "item_id", "response", "ward"])
        for person, row in enumerate(recorded):
            for item in np.flatnonzero(row >= 0):
                writer.writerow([f"p{person}", bank.item_ids[item], int(row[item]), "Hải Châu"])
    out = tmp_path / "replay.json"
    report = tmp_path / "report"
    result = CliRunner().invoke(
        simulate,
        ["--responses", str(path), "--workers", "1", "--no-progress", "--json", str(out),
         "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["mode"] == "replay" and summary["respondents"] == 60
    assert summary["responses"]["responses"] == int((recorded >= 0).sum())
    for key in ("level_agreement", "score_correlation", "rmse", "by_length"):
        assert key in summary
    assert json.loads(out.read_text(encoding="utf-8")) == summary
    assert (report / "by_length.png").stat().st_size > 1000
    assert "full-pattern score" in (report / "report.md").read_text(encoding="utf-8")
    # Bad input: a clear message, no traceback.
    bad = tmp_path / "bad.csv"
    bad.write_text("respondent_id,item_id,response\np1,nope,1\n", encoding="utf-8")
    refused = CliRunner().invoke(simulate, ["--responses", str(bad), "--no-progress"])
    assert refused.exit_code != 0 and "nope" in refused.output
    assert "Traceback" not in refused.output
    both = CliRunner().invoke(
        simulate, ["--responses", str(path), "--grid", str(path), "--no-progress"]
    )
    assert both.exit_code != 0 and "cannot be combined with --grid" in both.output


def test_unavailable_items_are_per_test_taker():
    bank = make_bank(n_items=20, n_areas=1, seed=4)
    config = TestConfig(name="u", selector=MaximumInformation(), max_items=3)
    best = cat.start(bank, config, 1, np.random.default_rng(0)).next_item[0]
    unavailable = np.zeros((2, bank.n_items), dtype=bool)
    unavailable[0, best] = True
    batch = cat.start(bank, config, 2, np.random.default_rng(0), unavailable=unavailable)
    assert batch.next_item[0] != best and batch.next_item[1] == best
    with pytest.raises(ValueError, match="unavailable items must have shape"):
        cat.start(bank, config, 2, np.random.default_rng(0), unavailable=unavailable[:1])


def test_fixed_start_gives_its_items_first_then_the_selector_goes_on():
    bank = make_bank(n_items=30, n_areas=1, seed=5)
    config = TestConfig(
        name="f", selector=MaximumInformation(), start=FixedStart(("1.1.007", "1.1.003")),
        min_items=4, max_items=4,
    )  # fmt: skip
    state = start_test(bank, config, seed=1)
    assert state.next_item == "1.1.007"
    state = answer_item(bank, config, state, "1.1.007", 1)
    assert state.next_item == "1.1.003"
    state = answer_item(bank, config, state, "1.1.003", 0)
    assert state.next_item not in ("1.1.007", "1.1.003")
    with pytest.raises(ValueError, match="not in bank"):
        start_test(bank, replace(config, start=FixedStart(("zz",))), seed=1)


def test_random_start_spreads_the_first_item_over_the_k_best():
    bank = make_bank(n_items=40, n_areas=1, seed=6)
    config = TestConfig(name="r", selector=MaximumInformation(), start=RandomStart(k=4))
    fixed = cat.start(bank, replace(config, start=None), 8_000, np.random.default_rng(1))
    assert np.unique(fixed.next_item).size == 1  # everyone starts on the same item
    batch = cat.start(bank, config, 8_000, np.random.default_rng(1))
    firsts, counts = np.unique(batch.next_item, return_counts=True)
    assert firsts.size == 4 and fixed.next_item[0] in firsts
    np.testing.assert_allclose(counts / 8_000, 0.25, atol=0.02)
    # Sessions draw from their own seed, reproducibly.
    seen = {start_test(bank, config, seed=s).next_item for s in range(40)}
    assert len(seen) == 4
    assert start_test(bank, config, seed=3) == start_test(bank, config, seed=3)


def test_initial_theta_chooses_the_first_item_per_person():
    bank = make_bank(n_items=40, n_areas=1, seed=7)
    config = TestConfig(name="i", selector=MaximumInformation(), estimator=EAP())
    start = np.array([[-2.0], [2.0]])
    batch = cat.start(bank, config, 2, np.random.default_rng(0), initial_theta=start)
    info = irt.bank_information(bank, start[:, 0])
    assert batch.next_item.tolist() == np.argmax(info, axis=1).tolist()
    with pytest.raises(ValueError, match="initial theta"):
        cat.start(bank, config, 2, np.random.default_rng(0), initial_theta=np.zeros((2, 3)))


@pytest.mark.parametrize("estimator", [EAP(), CorrelatedEAP(0.7), MLE(), WLE()])
def test_score_responses_equals_the_end_of_a_session(big_bank, estimator):
    config = replace(DETERMINISTIC, name="s", estimator=estimator)
    state = start_test(big_bank, config, seed=2)
    answers = {}
    while not state.finished:
        index = big_bank.index(state.next_item)
        answers[state.next_item] = int(index % big_bank.n_categories[index])
        state = answer_item(big_bank, config, state, state.next_item, answers[state.next_item])
    live = score_test(big_bank, state, config)
    scored = score_responses(big_bank, dict(reversed(list(answers.items()))), config=config)
    assert scored.overall.score == pytest.approx(live.overall.score, abs=1e-6)
    assert scored.overall.level == live.overall.level
    for a, b in zip(scored.areas, live.areas, strict=True):
        assert a.theta == pytest.approx(b.theta, abs=1e-6)
        assert a.theta_se == pytest.approx(b.theta_se, abs=1e-6)
        assert a.answered == b.answered
    assert scored.finished and scored.answered == len(answers)


def test_score_responses_refuses_bad_patterns(big_bank):
    first = big_bank.item_ids[0]
    with pytest.raises(ValueError, match="not in bank"):
        score_responses(big_bank, {"nope": 1}, config=CITIZEN_TEST)
    with pytest.raises(ValueError, match="more than once"):
        score_responses(big_bank, [(first, 1), (first, 0)], config=CITIZEN_TEST)
    with pytest.raises(ValueError, match="out of range"):
        score_responses(big_bank, {first: 7}, config=CITIZEN_TEST)
    with pytest.raises(ValueError, match="integer"):
        score_responses(big_bank, {first: True}, config=CITIZEN_TEST)
    nothing = score_responses(big_bank, {}, config=CITIZEN_TEST)
    assert nothing.answered == 0 and all(a.theta == pytest.approx(0.0) for a in nothing.areas)


def test_area_standard_error_counts_only_areas_with_operational_items():
    # Issue 16: the docstring said "areas with items" but every area was checked,
    # so an area without operational items kept every test running to its maximum.
    bank = make_bank(n_items=90, n_areas=3, seed=8)
    only_two = bank.subset(np.ones(bank.n_items, dtype=bool))
    pretest_area = np.asarray(bank.area == 2)
    from nangluc.engine.bank import ItemBank

    partial = ItemBank(
        **{
            **{f: getattr(only_two, f) for f in ("version", "item_ids", "area_codes", "area",
                                                 "competence", "kind", "model", "discrimination",
                                                 "thresholds", "guessing", "n_categories")},
            "operational": ~pretest_area,
        }
    )  # fmt: skip
    config = TestConfig(
        name="se", selector=MaximumInformation(), estimator=EAP(),
        stopping=(AreaStandardError(0.7),), max_items=25,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    batch = cat.start(partial, config, 20, rng)
    truth = np.zeros((20, 3))
    while not batch.finished.all():
        item = np.where(batch.finished, 0, batch.next_item)
        responses = irt.simulate_responses(partial, truth[:, 0], item, rng)
        batch = cat.advance(partial, config, batch, responses, rng)
    # Before the fix no test could stop by this rule (area 3 keeps its prior SE of 1).
    assert np.mean(batch.stop_reason == "area_se") > 0.5
    assert np.all(batch.se[:, 2] > 0.7)


def test_start_rule_is_a_design_setting():
    from nangluc.simulations.designs import build_design

    assert build_design({"start": "random-best:5"}).config.start == RandomStart(k=5)
    assert build_design({"start": "fixed:1.1.01+1.2.02"}).config.start == FixedStart(
        ("1.1.01", "1.2.02")
    )
    assert build_design({"start": "selector"}).config.start is None
    for bad in ("random-best:x", "first", "fixed:"):
        with pytest.raises(ValueError, match="start"):
            build_design({"start": bad})
