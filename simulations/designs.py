"""Test designs to simulate: a base config with overrides, and grids of them.

A design is written with the same names as the ``nangluc simulate`` flags
(underscores for dashes), in the CLI or in a grid file::

    # grid.toml — every design runs on the same simulees
    [defaults]
    max_items = 40

    [designs.citizen]            # the default citizen test as it is

    [designs.short]
    max_items = 25

    [designs.mfi-se]
    selector = "mfi"
    stop_se = 0.4
    exposure = "randomesque:3"

The same document as JSON: ``{"defaults": {...}, "designs": {"citizen": {},
"short": {"max_items": 25}}}``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nangluc.engine.config import CITIZEN_TEST, CONFIGS, TestConfig
from nangluc.engine.estimation import ESTIMATORS
from nangluc.engine.selection import (
    SELECTORS,
    AreaMinimum,
    FixedStart,
    KindBalance,
    Randomesque,
    RandomStart,
    SympsonHetter,
)
from nangluc.engine.stopping import (
    LevelDecided,
    LevelProbability,
    OverallStandardError,
    ThetaStandardError,
)

# The engine's registries: a rule added there is available here by its name.
SELECTOR_CHOICES = tuple(SELECTORS)
ESTIMATOR_CHOICES = tuple(ESTIMATORS)

#: What each design key means (shown by ``nangluc simulate --help`` too).
DESIGN_KEYS: dict[str, str] = {
    "config": "start from this named engine config (default: citizen-v2, the citizen test)",
    "selector": "item selection: mfi (maximum information at the estimate), pwi (posterior-weighted "
    "information), overall (largest gain in precision of the overall score), kl (Kullback-Leibler "
    "around the estimate), kl-posterior (posterior-weighted KL), mepv (minimum expected posterior "
    "variance), random, a-stratified (low-a items first)",
    "estimator": "ability estimate: eap, map, mle (bounded at +-4), wle (Warm's weighted likelihood) "
    "per area"
    + (
        ", or eap-correlated (areas borrow strength from each other)"
        if "eap-correlated" in ESTIMATORS
        else ""
    ),
    "stop_se": "stop when every area's theta has SE <= X",
    "stop_overall_se": "stop when the overall score (0-100) has SE <= X points",
    "stop_level": "stop when the overall level is decided with confidence C (e.g. 0.95): the whole "
    "two-sided interval lies in one band",
    "stop_level_probability": "stop when the estimated overall level is right with probability >= P "
    "(e.g. 0.9)",
    "min_items": "never stop before N scored items",
    "max_items": "always stop at N scored items",
    "exposure": "none, randomesque:K (random among the K best items) or sympson-hetter:RATE "
    "(items given to at most about RATE of the test takers; control parameters derived by simulation)",
    "start": "how the first items are chosen: selector (as any other item), random-best:K (the "
    "first item at random among the K best at the prior) or fixed:ID[+ID...] (these items first)",
    "area_minimum": "every area gets at least N items first (0 = no such rule)",
    "kind_balance": "balance knowledge / skill / attitude items (true/false)",
}


@dataclass(frozen=True)
class Design:
    """A named test configuration to simulate.

    ``sympson_hetter_rate`` is set when the design asks for Sympson–Hetter
    exposure control: its control parameters are derived by simulation before
    the run (see :func:`nangluc.simulations.exposure.sympson_hetter_control`).
    """

    name: str
    config: TestConfig
    sympson_hetter_rate: float | None = None
    overrides: tuple[tuple[str, Any], ...] = ()


def parse_exposure(text: str) -> tuple[str, float | None]:
    """Parse ``none``, ``randomesque:K`` or ``sympson-hetter:RATE``.

    Returns the kind and its number (None for ``none``).
    """
    text = str(text).strip().lower()
    if text == "none":
        return "none", None
    kind, _, value = text.partition(":")
    if kind == "randomesque":
        try:
            k = int(value)
        except ValueError:
            raise ValueError(
                f"exposure {text!r}: randomesque needs an integer K, e.g. randomesque:3"
            ) from None
        if k < 1:
            raise ValueError(f"exposure {text!r}: K must be >= 1")
        return "randomesque", float(k)
    if kind in ("sympson-hetter", "sh"):
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(
                f"exposure {text!r}: sympson-hetter needs a rate, e.g. sympson-hetter:0.25"
            ) from None
        if not 0 < rate <= 1:
            raise ValueError(f"exposure {text!r}: the rate must lie in (0, 1]")
        return "sympson-hetter", rate
    raise ValueError(f"exposure {text!r} is not one of none, randomesque:K, sympson-hetter:RATE")


def parse_start(text: str):
    """Parse ``selector``, ``random-best:K`` or ``fixed:ID[+ID...]`` into a start rule (or None)."""
    text = str(text).strip()
    kind, _, value = text.partition(":")
    kind = kind.lower()
    if kind == "selector" and not value:
        return None
    if kind == "random-best":
        try:
            k = int(value)
        except ValueError:
            raise ValueError(
                f"start {text!r}: random-best needs an integer K, e.g. random-best:5"
            ) from None
        return RandomStart(k=k)
    if kind == "fixed" and value:
        return FixedStart(tuple(v for v in value.split("+") if v))
    raise ValueError(f"start {text!r} is not one of selector, random-best:K, fixed:ID[+ID...]")


def build_design(
    spec: Mapping[str, Any], *, name: str | None = None, base: TestConfig | None = None
) -> Design:
    """A :class:`Design` from a base config and the overrides in ``spec``.

    Keys are those of :data:`DESIGN_KEYS`; None values are ignored (a flag
    that was not given). If any stop key is given, the stopping rules are
    exactly those given (the test stops when any is met); otherwise the
    base config's rules stay.

    Raises
    ------
    ValueError
        Unknown key, unknown config name, or a value out of range.
    """
    spec = {k: v for k, v in dict(spec).items() if v is not None}
    unknown = sorted(set(spec) - set(DESIGN_KEYS) - {"name"})
    if unknown:
        raise ValueError(
            f"unknown design setting(s) {', '.join(unknown)}; known: {', '.join(DESIGN_KEYS)}"
        )
    if "config" in spec:
        if spec["config"] not in CONFIGS:
            raise ValueError(f"unknown config {spec['config']!r}; known: {', '.join(CONFIGS)}")
        config = CONFIGS[spec["config"]]
    else:
        config = base if base is not None else CITIZEN_TEST
    changes: dict[str, Any] = {}
    if "selector" in spec:
        if spec["selector"] not in SELECTORS:
            raise ValueError(
                f"selector {spec['selector']!r} is not one of {', '.join(SELECTOR_CHOICES)}"
            )
        changes["selector"] = SELECTORS[spec["selector"]]()
    if "estimator" in spec:
        if spec["estimator"] not in ESTIMATORS:
            raise ValueError(
                f"estimator {spec['estimator']!r} is not one of {', '.join(ESTIMATOR_CHOICES)}"
            )
        changes["estimator"] = ESTIMATORS[spec["estimator"]]()
    rules = []
    if "stop_level" in spec:
        rules.append(LevelDecided(confidence=_number(spec, "stop_level")))
    if "stop_level_probability" in spec:
        rules.append(LevelProbability(threshold=_number(spec, "stop_level_probability")))
    if "stop_overall_se" in spec:
        rules.append(OverallStandardError(target=_number(spec, "stop_overall_se")))
    if "stop_se" in spec:
        rules.append(ThetaStandardError(target=_number(spec, "stop_se")))
    if rules:
        changes["stopping"] = tuple(rules)
    for key in ("min_items", "max_items"):
        if key in spec:
            changes[key] = _integer(spec, key)
    content = list(changes.get("content", config.content))
    if "area_minimum" in spec:
        minimum = _integer(spec, "area_minimum")
        content = [r for r in content if not isinstance(r, AreaMinimum)]
        if minimum > 0:
            content.insert(0, AreaMinimum(items_per_area=minimum))
    if "kind_balance" in spec:
        if not isinstance(spec["kind_balance"], bool):
            raise ValueError(f"kind_balance must be true or false, got {spec['kind_balance']!r}")
        content = [r for r in content if not isinstance(r, KindBalance)]
        if spec["kind_balance"]:
            content.append(KindBalance())
    if tuple(content) != config.content:
        changes["content"] = tuple(content)
    if "start" in spec:
        changes["start"] = parse_start(spec["start"])
    rate = None
    if "exposure" in spec:
        kind, value = parse_exposure(spec["exposure"])
        if kind == "none":
            changes["exposure"] = None
        elif kind == "randomesque":
            changes["exposure"] = Randomesque(k=int(value))
        else:
            rate = value
            changes["exposure"] = SympsonHetter()
    overrides = tuple((k, spec[k]) for k in DESIGN_KEYS if k in spec and k != "config")
    if name is None:
        name = spec.get("name") or (
            config.name + "".join(f" {k}={v}" for k, v in overrides) if overrides else config.name
        )
    changes["name"] = str(name)
    try:
        config = dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as error:
        raise ValueError(f"design {name!r}: {error}") from None
    return Design(name=str(name), config=config, sympson_hetter_rate=rate, overrides=overrides)


def read_grid(path: str | Path, *, base: TestConfig | None = None) -> tuple[Design, ...]:
    """Read a grid file (TOML or JSON, see the module docstring) into designs.

    Raises
    ------
    ValueError
        The file is missing or malformed, has no designs, or a design is
        invalid (the message names the design).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grid file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read grid file {path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("designs"), dict):
        raise ValueError(f"grid file {path} needs a 'designs' table of named designs")
    extra = sorted(set(document) - {"defaults", "designs"})
    if extra:
        raise ValueError(
            f"grid file {path}: unknown section(s) {', '.join(extra)} (expected defaults, designs)"
        )
    defaults = document.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError(f"grid file {path}: 'defaults' must be a table")
    if not document["designs"]:
        raise ValueError(f"grid file {path} has no designs")
    designs = []
    for name, spec in document["designs"].items():
        if not isinstance(spec, dict):
            raise ValueError(f"grid file {path}: design {name!r} must be a table of settings")
        try:
            designs.append(build_design({**defaults, **spec}, name=str(name), base=base))
        except ValueError as error:
            raise ValueError(f"grid file {path}, design {name!r}: {error}") from None
    return tuple(designs)


def _number(spec: Mapping[str, Any], key: str) -> float:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _integer(spec: Mapping[str, Any], key: str) -> int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return value
