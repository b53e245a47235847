"""Stopping rules.

A rule looks at the rows' current estimates and scores and says which rows
have reached its target. The test stops when any target rule is met after
the minimum length, at the maximum length, or when no informative item is
left (see :func:`nangluc.engine.cat.advance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from nangluc.engine.scoring import LEVELS, Z_95, Scores, level_of
from nangluc.engine.special import ndtr, ndtri


@dataclass(frozen=True)
class StopContext:
    """What stopping rules may look at, for R rows."""

    length: np.ndarray  # (R,) items administered
    area_counts: np.ndarray  # (R, A) scored items per area
    theta: np.ndarray  # (R, A)
    se: np.ndarray  # (R, A) standard error of theta
    scores: Scores | None  # None when no rule of the test looks at scores
    scored_areas: np.ndarray | None = None  # (A,) bool: areas with operational items (None: all)


class StopRule(Protocol):
    """Returns True for the rows whose target is met."""

    reason: str

    def met(self, context: StopContext) -> np.ndarray: ...


@dataclass(frozen=True)
class AreaStandardError:
    """Every area's theta has standard error <= ``target``.

    Only areas with operational items count: an area the bank cannot measure
    keeps its prior SE, and would otherwise keep every test running to its
    maximum length.
    """

    target: float = 0.5
    reason: str = "area_se"
    #: Looks at theta's SE only, so the step need not compute scores for it.
    uses_scores: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"SE target must be > 0, got {self.target}")

    def met(self, context):
        reached = context.se <= self.target
        if context.scored_areas is not None:
            reached |= ~np.asarray(context.scored_areas, dtype=bool)[None, :]
        return np.all(reached, axis=1)


@dataclass(frozen=True)
class ThetaStandardError(AreaStandardError):
    """The same rule under catsim's name, for single-area tests (SE <= 0.3 by default)."""

    target: float = 0.3
    reason: str = "theta_se"


@dataclass(frozen=True)
class OverallStandardError:
    """The overall score (0–100) has standard error <= ``target`` points."""

    target: float = 4.0
    reason: str = "overall_se"

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"overall SE target must be > 0, got {self.target}")

    def met(self, context):
        return context.scores.overall_se <= self.target


@dataclass(frozen=True)
class LevelDecided:
    """The ``confidence`` interval of the overall score lies inside one level band.

    ``margin`` > 0 shrinks the interval by that many points at each end, so an
    interval that crosses a cut by less than the margin counts as decided
    (an indifference zone around the cuts). The default 0 is the pure
    confidence rule.
    """

    confidence: float = 0.95
    margin: float = 0.0
    reason: str = "level_decided"

    def __post_init__(self) -> None:
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0.5, 1), got {self.confidence}")
        if self.margin < 0:
            raise ValueError("margin must be >= 0")

    @property
    def z(self) -> float:
        return Z_95 if self.confidence == 0.95 else float(ndtri(0.5 + self.confidence / 2))

    def met(self, context):
        z = self.z
        score = context.scores.overall_score
        half = z * context.scores.overall_se
        level = level_of(score)
        low = level_of(score - half + self.margin)
        high = level_of(score + half - self.margin)
        return (low == level) & (high == level)


@dataclass(frozen=True)
class LevelProbability:
    """The estimated overall level is right with probability >= ``threshold``.

    The probability is that of the level band under ``N(score, se^2)``, the
    normal approximation of the overall score's posterior. Looser than
    :class:`LevelDecided` at the same nominal level (it needs the two tails
    together, not each, below ``1 - threshold``), so it stops earlier near
    the cuts.
    """

    threshold: float = 0.9
    reason: str = "level_probable"

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0.5, 1), got {self.threshold}")

    def met(self, context):
        return (
            level_probability(context.scores.overall_score, context.scores.overall_se)
            >= self.threshold
        )


def level_probability(score: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Probability that the true score lies in the band of ``score`` under ``N(score, se^2)``."""
    score = np.asarray(score, dtype=float)
    se = np.maximum(np.asarray(se, dtype=float), 1e-12)
    level = level_of(score)
    return ndtr((_UPPER[level] - score) / se) - ndtr((_LOWER[level] - score) / se)


# Band limits with the open ends of the lowest and highest bands.
_LOWER = np.array([-np.inf] + [band.lower for band in LEVELS[1:]])
_UPPER = np.array([band.upper for band in LEVELS[:-1]] + [np.inf])
