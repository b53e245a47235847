"""Scores and proficiency levels (DESIGN §4).

An area's score is its domain score: 100 x the expected fraction of the
maximum score over all operational items of that area at the area's theta.
The overall score is the mean of the area scores. Levels are bands of the
100-point scale whose lower bound belongs to the band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.tables import bank_tables

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Level:
    """A proficiency level: scores in ``[lower, upper)`` (the top band includes 100)."""

    index: int
    name_vi: str
    name_en: str
    lower: float
    upper: float


LEVELS: tuple[Level, ...] = (
    Level(0, "Bắt đầu", "Beginning", 0.0, 20.0),
    Level(1, "Cơ bản", "Basic", 20.0, 40.0),
    Level(2, "Khá", "Fair", 40.0, 60.0),
    Level(3, "Cao", "High", 60.0, 80.0),
    Level(4, "Nâng cao", "Advanced", 80.0, 100.0),
)
LEVEL_CUTS = np.array([level.lower for level in LEVELS[1:]])


def level_of(score: np.ndarray | float) -> np.ndarray:
    """Level index (0..4) of each score; a band's lower bound belongs to it."""
    return np.searchsorted(LEVEL_CUTS, np.asarray(score, dtype=float), side="right")


def level_decided(score: np.ndarray, se: np.ndarray, z: float = Z_95) -> np.ndarray:
    """True where the two-sided interval ``score +- z se`` lies inside one band."""
    score = np.asarray(score, dtype=float)
    se = np.asarray(se, dtype=float)
    # Strict: an upper end exactly on a cut already reaches the next band.
    return level_of(score - z * se) == level_of(score + z * se)


@dataclass(frozen=True)
class Scores:
    """Area and overall scores of N test takers (arrays; one row per taker)."""

    area_score: np.ndarray  # (N, A)
    area_se: np.ndarray  # (N, A)
    overall_score: np.ndarray  # (N,)
    overall_se: np.ndarray  # (N,)

    @property
    def area_level(self) -> np.ndarray:
        return level_of(self.area_score)

    @property
    def overall_level(self) -> np.ndarray:
        return level_of(self.overall_score)

    @property
    def area_decided(self) -> np.ndarray:
        return level_decided(self.area_score, self.area_se)

    @property
    def overall_decided(self) -> np.ndarray:
        return level_decided(self.overall_score, self.overall_se)


def area_scores(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Domain score (0..100) of each area at ``theta`` (N, A) -> (N, A)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    tables = bank_tables(bank)
    return np.clip(tables.interpolate_areas(theta, tables.area_score)[0], 0.0, 100.0)


def score(
    bank: ItemBank, theta: np.ndarray, theta_se: np.ndarray, correlation: np.ndarray | None = None
) -> Scores:
    """Scores with standard errors from area estimates ``theta`` and ``theta_se`` (N, A).

    Standard errors use the delta method, ``|d score / d theta| * SE(theta)``.
    The overall score's variance is ``g' C g / A^2`` with ``g`` the area
    score SEs and ``C`` the posterior correlation of the areas (N, A, A);
    without it the areas are taken as independent (each estimated from its
    own items only).
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    theta_se = np.atleast_2d(np.asarray(theta_se, dtype=float))
    tables = bank_tables(bank)
    area, slope = tables.interpolate_areas(theta, tables.area_score, tables.area_score_slope)
    area = np.minimum(np.maximum(area, 0.0), 100.0)
    area_se = np.abs(slope) * theta_se
    # The mean over areas with operational items, as one product with weights 1/A' (0 elsewhere).
    weights = tables.scored_area_weights
    overall = area @ weights
    if correlation is None:
        overall_se = np.sqrt(area_se**2 @ weights**2)
    else:
        g = slope * theta_se * weights
        variance = np.einsum("na,nab,nb->n", g, np.asarray(correlation, dtype=float), g)
        overall_se = np.sqrt(np.maximum(variance, 0.0))
    return Scores(area, area_se, overall, overall_se)
