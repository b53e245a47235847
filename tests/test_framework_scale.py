"""The framework is data: levels, cut scores and the overall rule come from the bank (issue #14, §1).

The Đà Nẵng framework stays the default and its results are pinned: the
figures in ``tests/data/default_framework_pinned.json`` were computed by
:func:`_figures` on the code before levels became data (commit eb9a67f) and
must not move by more than 1e-12.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import grid_loglik, make_bank
from nangluc import items
from nangluc.engine import CITIZEN_TEST, DEFAULT_SCALE, LEVELS, Level, Scale
from nangluc.engine.bank import ItemBank
from nangluc.engine.estimation import CorrelatedEAP
from nangluc.engine.scoring import area_scores, level_code, level_posterior, score
from nangluc.engine.session import score_responses
from nangluc.items.schema import validate_document
from nangluc.simulations import core

PINNED = Path(__file__).parent / "data" / "default_framework_pinned.json"

# A four-level scale with uneven cuts and distinct codes (not 1..L).
UNEVEN = (
    Level(10, "Chưa biết", "Not yet", 0.0, 30.0),
    Level(20, "Biết", "Aware", 30.0, 55.0),
    Level(30, "Vững", "Confident", 55.0, 80.0),
    Level(40, "Thành thạo", "Proficient", 80.0, 100.0),
)


def _figures(bank: ItemBank) -> dict:
    """Scores of seeded response patterns and a seeded simulation (what is pinned)."""
    rng = np.random.default_rng(20261206)
    out: dict = {"bank": bank.version, "patterns": [], "simulation": {}}
    for k in range(4):
        ids = list(bank.item_ids)
        chosen = rng.choice(len(ids), size=40 + 30 * k, replace=False)
        pattern = {ids[i]: int(rng.integers(0, bank.n_categories[i])) for i in chosen}
        r = score_responses(bank, pattern, config=CITIZEN_TEST)
        o = r.overall
        out["patterns"].append(
            {
                "responses": pattern,
                "overall": [
                    o.score,
                    o.se,
                    *o.interval,
                    o.level,
                    o.probability,
                    *o.level_probabilities,
                ],
                "areas": [
                    [a.score, a.se, *a.interval, a.level, a.probability, *a.level_probabilities]
                    for a in r.areas
                ],
            }
        )
    theta = rng.multivariate_normal(
        np.zeros(bank.n_areas), 0.7 + 0.3 * np.eye(bank.n_areas), size=60
    )
    res = core.run(bank, CITIZEN_TEST, theta, np.random.default_rng(7))
    out["simulation"] = {
        "true_theta": theta.tolist(),
        "overall_score": res.scores.overall_score.tolist(),
        "overall_se": res.scores.overall_se.tolist(),
        "area_score": res.scores.area_score.tolist(),
        "level_probabilities": res.level_probabilities.tolist(),
        "level": res.level.tolist(),
        "true_level": res.true_level.tolist(),
        "length": res.length.tolist(),
        "stated": res.stated_probability.tolist(),
        "interval": res.interval.tolist(),
        "area_level_probabilities": res.area_level_probabilities.tolist(),
    }
    return out


def _assert_close(now, then, path="") -> None:
    if isinstance(then, dict):
        assert set(now) == set(then), path
        for key in then:
            _assert_close(now[key], then[key], f"{path}.{key}")
    elif isinstance(then, list):
        assert len(now) == len(then), path
        for i, (a, b) in enumerate(zip(now, then, strict=True)):
            _assert_close(a, b, f"{path}[{i}]")
    elif isinstance(then, float):
        assert abs(now - then) <= 1e-12, (path, now, then)
    else:
        assert now == then, path


def test_default_bank_results_are_unchanged_to_1e_12():
    bank = items.load_bank().item_bank
    assert bank.scale == DEFAULT_SCALE
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert pinned["bank"] == bank.version
    _assert_close(json.loads(json.dumps(_figures(bank))), pinned)


def test_default_scale_is_the_shipped_framework():
    fw = items.load_framework()
    assert fw.scale == DEFAULT_SCALE
    assert DEFAULT_SCALE.levels == LEVELS
    assert DEFAULT_SCALE.rule == "mean"


# ------------------------------------------------------------------ the Scale
@given(st.floats(-50, 150, allow_nan=False))
def test_uneven_scale_codes_follow_its_cuts(value):
    scale = Scale(UNEVEN)
    code = int(scale.code(value))
    band = scale.by_code(code)
    clipped = min(max(value, 0.0), 100.0)
    assert band.lower <= clipped and (clipped < band.upper or band is UNEVEN[-1])
    assert scale.levels[int(scale.index(value))] is band


def test_scale_cuts_lower_bound_belongs_to_the_band():
    scale = Scale(UNEVEN)
    assert scale.code([0, 29.999, 30, 54.9, 55, 80, 100]).tolist() == [10, 10, 20, 20, 30, 40, 40]
    assert scale.cuts.tolist() == [30.0, 55.0, 80.0]


@settings(max_examples=50)
@given(st.floats(0, 100), st.floats(0.01, 40))
def test_band_probabilities_sum_to_one_with_one_column_per_level(mean, sd):
    p = Scale(UNEVEN).band_probabilities(np.array([mean]), np.array([sd]))
    assert p.shape == (1, 4)
    assert np.all(p >= 0) and abs(p.sum() - 1.0) < 1e-12


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (UNEVEN[:1], "levels: a framework needs at least 2 levels"),
        ((replace(UNEVEN[0], lower=5.0), *UNEVEN[1:]), r"levels\[0\].lower must be 0"),
        ((*UNEVEN[:3], replace(UNEVEN[3], upper=90.0)), r"levels\[3\].upper must be 100"),
        ((UNEVEN[0], replace(UNEVEN[1], lower=31.0), *UNEVEN[2:]), r"levels\[1\].lower must equal"),
        (
            (UNEVEN[0], replace(UNEVEN[1], code=10), *UNEVEN[2:]),
            r"levels\[1\].code must be greater",
        ),
        ((replace(UNEVEN[0], upper=0.0), *UNEVEN[1:]), r"levels\[0\] \(code 10\): lower 0 must be"),
        ((replace(UNEVEN[0], code=1.5), *UNEVEN[1:]), r"levels\[0\].code must be an integer"),
    ],
)
def test_bad_scales_are_refused_naming_the_field(levels, message):
    with pytest.raises(ValueError, match=message):
        Scale(levels)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"1": 0.0, "2": 1.0}, r"overall.weights\['1'\] must be a positive number"),
        ({"1": float("nan")}, r"overall.weights\['1'\] must be a positive number"),
        ({}, "overall.weights must name at least one area"),
    ],
)
def test_bad_weights_are_refused_naming_the_field(weights, message):
    with pytest.raises(ValueError, match=message):
        Scale(UNEVEN, weights)


def test_a_bank_needs_a_weight_for_each_of_its_areas():
    bank = make_bank(n_items=30, n_areas=3, seed=5)
    with pytest.raises(ValueError, match=r"overall.weights has no weight for area\(s\) 3"):
        replace(bank, scale=Scale(UNEVEN, {"1": 1.0, "2": 2.0}))


# ------------------------------------------------------------ overall rule
def _weighted_bank(weights=None) -> ItemBank:
    bank = make_bank(n_items=60, n_areas=3, seed=41, version="weighted")
    return replace(bank, scale=Scale(UNEVEN, weights or {"1": 2.0, "2": 1.0, "3": 1.0}))


def test_weighted_overall_score_is_the_weighted_mean_of_the_areas():
    bank = _weighted_bank()
    theta = np.array([[-1.0, 0.5, 1.5], [0.2, -0.3, 0.0]])
    se = np.full_like(theta, 0.4)
    scores = score(bank, theta, se)
    areas = area_scores(bank, theta)
    np.testing.assert_allclose(scores.overall_score, areas @ [0.5, 0.25, 0.25], atol=1e-12)
    # Independent areas: SE of a weighted mean.
    np.testing.assert_allclose(
        scores.overall_se, np.sqrt(scores.area_se**2 @ np.array([0.5, 0.25, 0.25]) ** 2), 1e-12
    )
    assert set(scores.overall_level.tolist()) <= {10, 20, 30, 40}
    plain = replace(bank, scale=Scale(UNEVEN))
    np.testing.assert_allclose(score(plain, theta, se).overall_score, areas.mean(axis=1), 1e-12)


def test_weights_are_renormalised_over_the_areas_a_bank_scores():
    bank = _weighted_bank({"1": 3.0, "2": 1.0, "3": 5.0})
    two = bank.subset(bank.area != 2)  # area "3" has no items left
    assert two.scale == bank.scale
    theta = np.array([[0.4, -0.8, 0.0]])
    scores = score(two, theta, np.full_like(theta, 0.3))
    areas = area_scores(two, theta)[0]
    assert scores.overall_score[0] == pytest.approx(0.75 * areas[0] + 0.25 * areas[1], abs=1e-12)


def test_level_posterior_has_one_column_per_level_of_the_bank():
    bank = _weighted_bank()
    loglik = grid_loglik(bank, [0, 1, 2, 3, 4, 5], [1, 0, 2, 1, 0, 1])
    joint = CorrelatedEAP(correlation=0.7).posterior(bank, loglik)
    post = level_posterior(bank, joint.weights, joint.correlation)
    assert post.area_probabilities.shape == (1, 3, 4)
    assert post.overall_probabilities.shape == (1, 4)
    np.testing.assert_allclose(post.overall_probabilities.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(post.area_probabilities.sum(axis=-1), 1.0, atol=1e-12)
    # The overall posterior mean follows the weighted rule.
    np.testing.assert_allclose(post.overall_mean, post.area_mean @ [0.5, 0.25, 0.25], atol=1e-12)


def test_results_name_the_banks_own_levels():
    bank = _weighted_bank()
    answers = {bank.item_ids[i]: 1 for i in range(0, 60, 4)}
    result = score_responses(bank, answers, config=CITIZEN_TEST)
    for part in (result.overall, *result.areas):
        assert part.level in (10, 20, 30, 40)
        assert len(part.level_probabilities) == 4
        assert part.level_name == bank.scale.by_code(part.level).name_vi
        assert part.level_name_en == bank.scale.by_code(part.level).name_en
    # The default functions keep the default framework's numbering.
    assert int(level_code(result.overall.score)) in (1, 2, 3, 4, 5)


def test_simulation_uses_the_banks_levels():
    bank = _weighted_bank()
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(80, 3))
    result = core.run(bank, CITIZEN_TEST, theta, np.random.default_rng(4))
    summary = core.summarize(result, bank)
    assert result.level_probabilities.shape == (80, 4)
    assert set(result.level.tolist()) <= {10, 20, 30, 40}
    assert summary["level_confusion"]["codes"] == [10, 20, 30, 40]
    assert np.array(summary["level_confusion"]["counts"]).shape == (4, 4)
    assert summary["framework"]["overall"] == {
        "rule": "weighted",
        "weights": {"1": 2.0, "2": 1.0, "3": 1.0},
    }
    assert [lv["lower"] for lv in summary["framework"]["levels"]] == [0.0, 30.0, 55.0, 80.0]


# ------------------------------------------------------------------ bank file
@pytest.fixture(scope="module")
def shipped() -> dict:
    return items.load_bank().to_dict()


def _messages(d) -> str:
    return " | ".join(str(p) for p in validate_document(d))


def test_bank_file_framework_gives_the_scale(shipped):
    d = copy.deepcopy(shipped)
    fw = d["framework"]
    fw["levels"] = [
        {"code": lv.code, "name": {"vi": lv.name_vi, "en": lv.name_en},
         "lower": lv.lower, "upper": lv.upper}
        for lv in UNEVEN
    ]  # fmt: skip
    for item in d["items"]:
        item.pop("level", None)
    fw["overall"] = {"rule": "weighted", "weights": {"1": 2, "2": 1, "3": 1, "4": 3, "5": 1}}
    d.pop("metadata")
    doc = items.bank_from_dict(d)
    assert doc.item_bank.scale == Scale(UNEVEN, {"1": 2, "2": 1, "3": 1, "4": 3, "5": 1})
    assert doc.to_dict()["framework"]["overall"] == fw["overall"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda fw: fw["levels"].__delitem__(slice(1, None)), "levels must list at least 2 levels"),
        (lambda fw: fw["levels"][0].update(lower=10), r"levels\[0\].lower must be 0"),
        (lambda fw: fw["levels"][-1].update(upper=90), r"levels\[4\].upper must be 100"),
        (lambda fw: fw["levels"][1].update(code=1), "duplicate level code 1"),
        (lambda fw: fw["levels"][2].update(lower=45), "level bands must be contiguous"),
        (
            lambda fw: fw.update(overall={"rule": "median"}),
            "overall.rule must be 'mean' or 'weighted'",
        ),
        (lambda fw: fw.update(overall={"rule": "weighted"}), "overall.weights must be an object"),
        (
            lambda fw: fw.update(overall={"rule": "weighted", "weights": {"1": 1, "2": -1}}),
            r"overall.weights\['2'\] must be a positive number",
        ),
        (
            lambda fw: fw.update(overall={"rule": "weighted", "weights": {"1": 1, "9": 1}}),
            "overall.weights names area '9', which is not in the framework",
        ),
        (
            lambda fw: fw.update(overall={"rule": "weighted", "weights": {"1": 1}}),
            r"overall.weights has no weight for area\(s\) 2, 3, 4, 5",
        ),
        (
            lambda fw: fw.update(overall={"rule": "mean", "weights": {"1": 1}}),
            "only allowed with rule 'weighted'",
        ),
        (lambda fw: fw.update(overall="mean"), "overall must be an object"),
    ],
)
def test_bad_framework_levels_and_rules_are_refused_naming_the_field(shipped, change, message):
    d = copy.deepcopy(shipped)
    change(d["framework"])
    found = _messages(d)
    assert found, "the bad framework was accepted"
    assert re.search(message, found), found
    with pytest.raises(items.BankError):
        items.bank_from_dict(d)


def test_schema_documents_the_overall_rule():
    fw = items.BANK_SCHEMA["$defs"]["framework"]["properties"]
    assert fw["overall"]["properties"]["rule"]["enum"] == ["mean", "weighted"]
    assert fw["levels"]["minItems"] == 2
    shipped_schema = json.loads(
        (Path(items.__file__).parent / "bank.schema.json").read_text(encoding="utf-8")
    )
    assert shipped_schema == json.loads(json.dumps(items.BANK_SCHEMA))


# ------------------------------------------------------- properties (hypothesis)
_cut_lists = st.lists(
    st.floats(0.5, 99.5, allow_nan=False).map(lambda x: round(x, 1)),
    min_size=1,
    max_size=7,
    unique=True,
).map(sorted)


def _levels_from(cuts: list[float]) -> tuple[Level, ...]:
    bounds = [0.0, *cuts, 100.0]
    return tuple(
        Level(10 * (k + 1), f"Mức {k + 1}", f"Level {k + 1}", bounds[k], bounds[k + 1])
        for k in range(len(bounds) - 1)
    )


@settings(max_examples=60, deadline=None)
@given(_cut_lists, st.lists(st.floats(-10, 110, allow_nan=False), min_size=1, max_size=20))
def test_any_valid_cut_list_makes_a_scale_that_bands_by_its_cuts(cuts, scores):
    scale = Scale(_levels_from(cuts))
    assert scale.n_levels == len(cuts) + 1
    index = np.searchsorted(cuts, scores, side="right")
    assert scale.index(scores).tolist() == index.tolist()
    assert scale.code(scores).tolist() == [10 * (k + 1) for k in index]
    p = scale.band_probabilities(np.array(scores), np.full(len(scores), 5.0))
    assert p.shape == (len(scores), scale.n_levels)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(_cut_lists, st.sampled_from(["gap", "first", "last", "codes", "empty"]), st.data())
def test_any_broken_level_list_is_refused_naming_levels(cuts, breakage, data):
    levels = list(_levels_from(cuts))
    k = data.draw(st.integers(1, len(levels) - 1))
    if breakage == "gap":
        levels[k] = replace(levels[k], lower=levels[k].lower + 0.05)
    elif breakage == "first":
        levels[0] = replace(levels[0], lower=data.draw(st.floats(0.01, levels[0].upper - 0.01)))
    elif breakage == "last":
        top = levels[-1]
        levels[-1] = replace(top, upper=data.draw(st.floats(top.lower + 0.01, 99.99)))
    elif breakage == "codes":
        levels[k] = replace(levels[k], code=levels[k - 1].code)
    else:
        levels = levels[:1] if data.draw(st.booleans()) else []
    with pytest.raises(ValueError, match=r"^levels"):
        Scale(levels)
    # The bank file's validator refuses the same list, naming the framework's levels.
    d = {
        "framework": {
            "areas": [{"code": "1", "name": {"vi": "Lĩnh vực 1"}}],
            "levels": [
                {"code": lv.code, "name": {"vi": lv.name_vi}, "lower": lv.lower, "upper": lv.upper}
                for lv in levels
            ],
        },
        "items": [
            {"id": "1.01", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0,
             "text": {"vi": "Câu hỏi?"}, "options": [{"vi": "Có"}, {"vi": "Không"}], "key": 0}
        ],
    }  # fmt: skip
    found = " | ".join(str(p) for p in validate_document(d))
    assert re.search(r"framework: [^|]*level", found), found
