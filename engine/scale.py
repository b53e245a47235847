"""A framework's proficiency levels and overall rule, as one frozen value (DESIGN §3, §4).

The 0–100 domain-score scale is fixed; how it is cut into levels, and how
the area scores make the overall score, belong to the framework. A
:class:`Scale` holds both; every :class:`~nangluc.engine.bank.ItemBank`
carries one (:attr:`ItemBank.scale`), built by :mod:`nangluc.items` from the
framework section of the bank file. :data:`DEFAULT_SCALE` is the shipped
Đà Nẵng framework's (five 20-point bands, overall = mean of the areas).

Numbering: a level's public number is the framework's **code** (the Đà Nẵng
framework: 1 Bắt đầu … 5 Nâng cao); arrays with one column per level are in
the order of :attr:`Scale.levels`, and the 0-based position of a level is
its *index* (:meth:`Scale.index`), which never leaves the engine and the
simulator.

This module sits below :mod:`nangluc.engine.bank` and
:mod:`nangluc.engine.scoring` (which re-exports its names).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nangluc.engine.special import ndtr

#: The domain-score scale every framework cuts into levels.
SCORE_MIN, SCORE_MAX = 0.0, 100.0
#: Overall rules: the plain mean of the scored areas, or a weighted mean.
OVERALL_RULES: tuple[str, ...] = ("mean", "weighted")


@dataclass(frozen=True)
class Level:
    """A proficiency level: scores in ``[lower, upper)`` (the top band includes 100).

    ``code`` is the framework's number of the level, the one public numbering.
    """

    code: int
    name_vi: str
    name_en: str
    lower: float
    upper: float

    def name(self, language: str = "vi") -> str:
        """The level's name in ``language`` ("vi" or "en"; anything else gives Vietnamese)."""
        return self.name_en if language == "en" else self.name_vi


def band_widths(below: np.ndarray) -> np.ndarray:
    """Probability of each band, (..., L), from ``below`` (..., L - 1): P(score < cut k).

    The differences of ``0, below..., 1`` (the same numbers as ``np.diff`` of
    the padded array, without building it).
    """
    out = np.empty(below.shape[:-1] + (below.shape[-1] + 1,))
    if below.shape[-1] == 0:
        out[...] = 1.0
        return out
    out[..., 0] = below[..., 0]
    np.subtract(below[..., 1:], below[..., :-1], out=out[..., 1:-1])
    np.subtract(1.0, below[..., -1], out=out[..., -1])
    return out


@dataclass(frozen=True)
class Scale:
    """A framework's levels (cut scores of the 0–100 scale) and its overall rule.

    Parameters
    ----------
    levels : sequence of Level
        At least two, in increasing order: the first starts at 0, the last
        ends at 100, each starts where the one before ends, codes are unique
        integers increasing with the band.
    weights : mapping of area code to weight, optional
        The overall score's weight of each area (positive numbers); the
        overall score is the weighted mean of the scored areas (weights
        renormalised over the areas a test scores). None: the plain mean.

    Raises
    ------
    ValueError
        With the field that is wrong.
    """

    levels: tuple[Level, ...]
    weights: tuple[tuple[str, float], ...] | None = None
    cuts: np.ndarray = field(init=False, repr=False, compare=False, hash=False)
    codes: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)
    _code_array: np.ndarray = field(init=False, repr=False, compare=False, hash=False)

    def __init__(
        self,
        levels: Sequence[Level],
        weights: Mapping[str, float] | Sequence[tuple[str, float]] | None = None,
    ) -> None:
        levels = tuple(levels)
        _check_levels(levels)
        if weights is not None:
            pairs = tuple(weights.items()) if isinstance(weights, Mapping) else tuple(weights)
            weights = tuple((str(code), float(w)) for code, w in pairs)
            _check_weights(weights)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "weights", weights)
        cuts = np.array([level.lower for level in levels[1:]], dtype=float)
        cuts.setflags(write=False)
        object.__setattr__(self, "cuts", cuts)
        codes = tuple(level.code for level in levels)
        object.__setattr__(self, "codes", codes)
        code_array = np.array(codes, dtype=np.int64)
        code_array.setflags(write=False)
        object.__setattr__(self, "_code_array", code_array)

    # ----------------------------------------------------------------- levels
    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def rule(self) -> str:
        """The overall rule: ``"mean"`` or ``"weighted"``."""
        return "mean" if self.weights is None else "weighted"

    @property
    def top(self) -> Level:
        """The highest level."""
        return self.levels[-1]

    def index(self, score: np.ndarray | float) -> np.ndarray:
        """0-based position in :attr:`levels` of each score's level (internal numbering)."""
        return np.searchsorted(self.cuts, np.asarray(score, dtype=float), side="right")

    def code(self, score: np.ndarray | float) -> np.ndarray:
        """The framework's level code of each score; a band's lower bound belongs to it."""
        return self._code_array[self.index(score)]

    def by_code(self, code: int) -> Level:
        """The :class:`Level` with framework code ``code``; ValueError for an unknown code."""
        for level in self.levels:
            if level.code == code:
                return level
        raise ValueError(f"no level has code {code!r}; codes are {', '.join(map(str, self.codes))}")

    def position(self, code: int) -> int:
        """0-based position of the level with framework code ``code`` (ValueError if unknown)."""
        return self.levels.index(self.by_code(code))

    def band_probabilities(self, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
        """Probability of each level under ``N(mean, sd^2)``, shape (..., L); rows sum to 1."""
        mean = np.asarray(mean, dtype=float)[..., None]
        sd = np.maximum(np.asarray(sd, dtype=float), 1e-9)[..., None]
        return band_widths(ndtr((self.cuts - mean) / sd))

    def probability_of_level(self, probabilities: np.ndarray, score: np.ndarray) -> np.ndarray:
        """The probability (from rows of level ``probabilities``) of the level of each ``score``."""
        index = self.index(score)
        probabilities = np.asarray(probabilities)
        if index.shape != probabilities.shape[:-1]:  # broadcast: the general route
            return np.take_along_axis(probabilities, index[..., None], axis=-1)[..., 0]
        rows = probabilities.reshape(-1, probabilities.shape[-1])
        return rows[np.arange(rows.shape[0]), index.ravel()].reshape(index.shape)

    # ----------------------------------------------------------- overall rule
    def weight_of(self, area_code: str) -> float:
        """The overall rule's weight of an area (1 under the plain mean); KeyError if unknown."""
        if self.weights is None:
            return 1.0
        for code, weight in self.weights:
            if code == area_code:
                return weight
        raise KeyError(f"the overall rule has no weight for area {area_code!r}")

    def area_weights(self, area_codes: Sequence[str], scored: np.ndarray) -> np.ndarray:
        """Each area's share of the overall score, (A,): zero on unscored areas, summing to 1.

        Under the plain mean it is ``1 / (number of scored areas)`` on the
        scored areas; under a weighted rule the areas' weights renormalised
        over the scored areas (a test of some areas weighs them as the
        framework does, relative to each other).
        """
        scored = np.asarray(scored, dtype=bool)
        if self.weights is None:
            return scored / max(int(scored.sum()), 1)
        raw = np.array([self.weight_of(code) for code in area_codes], dtype=float) * scored
        total = raw.sum()
        return raw / total if total > 0 else raw

    def check_areas(self, area_codes: Sequence[str]) -> None:
        """ValueError unless the overall rule has a weight for each of ``area_codes``."""
        if self.weights is None:
            return
        known = {code for code, _ in self.weights}
        missing = [code for code in area_codes if code not in known]
        if missing:
            raise ValueError(
                f"overall.weights has no weight for area(s) {', '.join(missing)} "
                f"(weights are given for {', '.join(sorted(known))})"
            )

    def describe(self) -> dict:
        """JSON-ready description: levels (code, names, bounds) and the overall rule."""
        overall: dict = {"rule": self.rule}
        if self.weights is not None:
            overall["weights"] = dict(self.weights)
        return {
            "levels": [
                {
                    "code": level.code,
                    "name": {"vi": level.name_vi, "en": level.name_en},
                    "lower": level.lower,
                    "upper": level.upper,
                }
                for level in self.levels
            ],
            "overall": overall,
        }


def _check_levels(levels: tuple[Level, ...]) -> None:
    if len(levels) < 2:
        raise ValueError(f"levels: a framework needs at least 2 levels, got {len(levels)}")
    for i, level in enumerate(levels):
        if not isinstance(level, Level):
            raise TypeError(f"levels[{i}] must be a Level, got {type(level).__name__}")
        if isinstance(level.code, bool) or not isinstance(level.code, int | np.integer):
            raise ValueError(f"levels[{i}].code must be an integer, got {level.code!r}")
        for bound in ("lower", "upper"):
            value = getattr(level, bound)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"levels[{i}].{bound} must be a finite number, got {value!r}")
        if not level.lower < level.upper:
            raise ValueError(
                f"levels[{i}] (code {level.code}): lower {level.lower:g} must be below "
                f"upper {level.upper:g}"
            )
    if levels[0].lower != SCORE_MIN:
        raise ValueError(f"levels[0].lower must be {SCORE_MIN:g}, got {levels[0].lower:g}")
    if levels[-1].upper != SCORE_MAX:
        raise ValueError(
            f"levels[{len(levels) - 1}].upper must be {SCORE_MAX:g}, got {levels[-1].upper:g}"
        )
    for i in range(1, len(levels)):
        before, level = levels[i - 1], levels[i]
        if level.lower != before.upper:
            raise ValueError(
                f"levels[{i}].lower must equal levels[{i - 1}].upper ({before.upper:g}): "
                f"bands are contiguous, got {level.lower:g}"
            )
        if level.code <= before.code:
            raise ValueError(
                f"levels[{i}].code must be greater than levels[{i - 1}].code ({before.code}): "
                f"codes are unique and increase with the band, got {level.code}"
            )


def _check_weights(weights: tuple[tuple[str, float], ...]) -> None:
    if not weights:
        raise ValueError("overall.weights must name at least one area")
    seen: set[str] = set()
    for code, weight in weights:
        if code in seen:
            raise ValueError(f"overall.weights names area {code!r} twice")
        seen.add(code)
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"overall.weights[{code!r}] must be a positive number, got {weight!r}")


#: The Đà Nẵng framework's levels (Decision 2242/QĐ-UBND), in increasing order.
#: English names follow DigComp's proficiency wording. The shipped framework
#: file (``items/data/framework.json``) holds the same codes, names and bands
#: (a test checks it).
DEFAULT_LEVELS: tuple[Level, ...] = (
    Level(1, "Bắt đầu", "Beginning", 0.0, 20.0),
    Level(2, "Cơ bản", "Basic", 20.0, 40.0),
    Level(3, "Khá", "Intermediate", 40.0, 60.0),
    Level(4, "Cao", "High", 60.0, 80.0),
    Level(5, "Nâng cao", "Advanced", 80.0, 100.0),
)
#: The shipped default: the Đà Nẵng levels, overall score = mean of the areas.
DEFAULT_SCALE = Scale(DEFAULT_LEVELS)
