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

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nangluc.engine.config import TestConfig
from nangluc.engine.definition import (
    RULE_KEYS,
    DefinitionError,
    build_rules,
    parse_exposure,
    parse_start,
)
from nangluc.engine.estimation import ESTIMATORS
from nangluc.engine.selection import SELECTORS

# The engine's registries: a rule added there is available here by its name.
SELECTOR_CHOICES = tuple(SELECTORS)
ESTIMATOR_CHOICES = tuple(ESTIMATORS)

#: What each design key means (shown by ``nangluc simulate --help`` too): the
#: rule keys of test definitions (:data:`nangluc.engine.definition.RULE_KEYS`).
DESIGN_KEYS: dict[str, str] = RULE_KEYS

__all__ = [
    "DESIGN_KEYS",
    "Design",
    "build_design",
    "parse_exposure",
    "parse_start",
    "read_grid",
]


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


def build_design(
    spec: Mapping[str, Any], *, name: str | None = None, base: TestConfig | None = None
) -> Design:
    """A :class:`Design` from a base config and the overrides in ``spec``.

    Keys are those of :data:`DESIGN_KEYS`, built by the engine's
    :func:`~nangluc.engine.definition.build_rules` (test definitions use the
    same builder); None values are ignored (a flag that was not given). If
    any stop key is given, the stopping rules are exactly those given (the
    test stops when any is met); otherwise the base config's rules stay.

    Raises
    ------
    ValueError
        Unknown key, unknown config name, or a value out of range; each
        problem names its key.
    """
    try:
        rules = build_rules(spec, name=name, base=base)
    except DefinitionError as error:
        raise ValueError("; ".join(error.problems)) from None
    return Design(
        name=rules.config.name,
        config=rules.config,
        sympson_hetter_rate=rules.sympson_hetter_rate,
        overrides=rules.overrides,
    )


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
