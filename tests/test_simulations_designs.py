"""Designs from flags and grid files; Sympson–Hetter parameters by simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nangluc import simulations
from nangluc.engine import (
    CITIZEN_TEST,
    MLE,
    AreaMinimum,
    KindBalance,
    LevelDecided,
    LevelProbability,
    MaximumInformation,
    OverallStandardError,
    PosteriorWeightedInformation,
    Randomesque,
    SympsonHetter,
    ThetaStandardError,
)
from nangluc.simulations.designs import build_design, parse_exposure, read_grid
from nangluc.simulations.exposure import sympson_hetter_control


def test_no_overrides_is_the_citizen_test():
    design = build_design({"selector": None, "max_items": None})
    assert design.config == CITIZEN_TEST
    assert design.name == CITIZEN_TEST.name and design.overrides == ()


def test_overrides_map_to_engine_rules():
    design = build_design(
        {
            "selector": "mfi",
            "estimator": "mle",
            "stop_se": 0.4,
            "stop_overall_se": 5,
            "min_items": 3,
            "max_items": 12,
            "exposure": "randomesque:4",
            "area_minimum": 1,
            "kind_balance": False,
        }
    )
    config = design.config
    assert isinstance(config.selector, MaximumInformation)
    assert isinstance(config.estimator, MLE)
    assert config.stopping == (OverallStandardError(5.0), ThetaStandardError(0.4))
    assert (config.min_items, config.max_items) == (3, 12)
    assert config.exposure == Randomesque(k=4)
    assert config.content == (AreaMinimum(items_per_area=1),)
    assert design.sympson_hetter_rate is None
    assert "selector=mfi" in design.name and config.name == design.name


def test_stop_level_replaces_the_stopping_rules_and_no_area_minimum_removes_it():
    config = build_design(
        {"stop_level": 0.9, "area_minimum": 0, "kind_balance": True, "exposure": "none"}
    ).config
    assert config.stopping == (LevelDecided(confidence=0.9),)
    assert not any(isinstance(r, AreaMinimum) for r in config.content)
    assert any(isinstance(r, KindBalance) for r in config.content)
    assert config.exposure is None
    config = build_design({"stop_level_probability": 0.8, "kind_balance": False}).config
    assert config.stopping == (LevelProbability(threshold=0.8),)
    assert not any(isinstance(r, KindBalance) for r in config.content)


def test_sympson_hetter_design_asks_for_calibration():
    design = build_design({"exposure": "sympson-hetter:0.25", "selector": "pwi"}, name="sh")
    assert design.sympson_hetter_rate == 0.25
    assert isinstance(design.config.exposure, SympsonHetter)
    assert isinstance(design.config.selector, PosteriorWeightedInformation)
    assert design.name == design.config.name == "sh"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"selectr": "mfi"}, "selectr: unknown setting"),
        ({"selector": "best"}, 'selector: "best" is not one of mfi, pwi, overall'),
        ({"stop_level_probability": 1.2}, "stop_level_probability: threshold must lie in"),
        ({"estimator": "ml"}, 'estimator: "ml" is not one of'),
        ({"config": "nope"}, 'config: unknown config: "nope"'),
        ({"stop_se": "small"}, "stop_se: must be a number"),
        ({"stop_se": -1.0}, "must be > 0"),
        ({"max_items": 2.5}, "max_items: must be an integer >= 1, got 2.5"),
        ({"min_items": 30, "max_items": 10}, "min_items .* exceeds max_items"),
        ({"kind_balance": "yes"}, "kind_balance: must be true or false"),
        ({"exposure": "topk:3"}, "not one of none, randomesque:K, sympson-hetter:RATE"),
    ],
)
def test_bad_design_settings_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        build_design(spec)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("none", ("none", None)),
        ("randomesque:3", ("randomesque", 3.0)),
        ("Sympson-Hetter:0.2", ("sympson-hetter", 0.2)),
    ],
)
def test_parse_exposure(text, parsed):
    assert parse_exposure(text) == parsed


@pytest.mark.parametrize(
    "text", ["randomesque:x", "randomesque:0", "sympson-hetter:", "sympson-hetter:1.5", "sh:0"]
)
def test_parse_exposure_rejects_bad_numbers(text):
    with pytest.raises(ValueError, match="exposure"):
        parse_exposure(text)


def test_read_grid_toml_and_json(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text(
        '[defaults]\nmax_items = 20\n\n[designs.base]\n\n[designs.fast]\nmax_items = 10\nselector = "mfi"\n',
        encoding="utf-8",
    )
    designs = read_grid(toml)
    assert [d.name for d in designs] == ["base", "fast"]
    assert [d.config.max_items for d in designs] == [20, 10]
    assert isinstance(designs[1].config.selector, MaximumInformation)
    as_json = tmp_path / "grid.json"
    as_json.write_text(json.dumps({"designs": {"a": {"stop_se": 0.5}}}), encoding="utf-8")
    (only,) = read_grid(as_json, base=build_design({"max_items": 15}).config)
    assert only.config.max_items == 15 and only.config.stopping == (ThetaStandardError(0.5),)


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("[designs]\n", ".toml", "has no designs"),
        ("designs = 3\n", ".toml", "needs a 'designs' table"),
        ("[designs.a]\nstop = 1\n", ".toml", "design 'a': stop: unknown setting"),
        ("[designs.a]\n[other]\n", ".toml", "unknown section"),
        ("[designs.a\n", ".toml", "cannot read grid file"),
        ('{"designs": {"a": 1}}', ".json", "design 'a' must be a table"),
        ("{", ".json", "cannot read grid file"),
    ],
)
def test_read_grid_errors(tmp_path, text, suffix, message):
    path = tmp_path / f"grid{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_grid(path)


def test_read_grid_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_grid(tmp_path / "none.toml")


def test_sympson_hetter_control_brings_exposure_down_to_the_target():
    bank = simulations.synthetic_bank(np.random.default_rng(3), n_items=60, n_areas=2)
    config = build_design({"max_items": 10, "min_items": 10, "exposure": "none"}).config
    theta = simulations.draw_population(600, 2, 0.5, np.random.default_rng(4))
    calibration = sympson_hetter_control(
        bank, config, theta, np.random.default_rng(5), max_rate=0.3, iterations=6
    )
    assert calibration.max_exposure[0] > 0.8  # without control the best items go to nearly everyone
    assert calibration.max_exposure[-1] < 0.4
    assert len(calibration.control) == bank.n_items
    assert all(0 <= k <= 1 for k in calibration.control)
    assert calibration.config.exposure.control == calibration.control
    with pytest.raises(ValueError, match="max_rate"):
        sympson_hetter_control(bank, config, theta, np.random.default_rng(5), max_rate=0.0)
