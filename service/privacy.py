"""Differential privacy of planner releases: the budget, its split and the noise (OpenDP).

Privacy unit: **one finished test**. Two databases are neighbours when one
has a test the other lacks (add/remove). A release is ε-differentially
private: anything computed from it (every report, CSV and chart a planner
sees is computed from releases only) changes its probability by at most a
factor ``e^ε`` whether or not any one test is in the data. A citizen who
took the test k times is protected with ``k ε``.

What one test touches
---------------------
Time is cut into periods (quarters by default). Each test belongs to exactly
one release: the period it finished in, or, for a test taken through a
training cohort's link, that cohort's release. Releases over disjoint tests
compose in parallel, so ε is also the whole privacy loss of a test over the
life of the service, however many periods and reports follow.

Within its release a regular test is counted in four tables — the whole
city, by ward, by age group, by ward × age group — and in each table in one
cell, in 1 + A histograms of 10 bins (A areas; six for the Đà Nẵng
framework): its estimated overall score and its area scores.
One count per histogram: each histogram has L1 sensitivity 1. The budget is
split (sequential composition, ε adds up):

=================  =======  ============================
table              share    of which
=================  =======  ============================
whole city         0.20     overall 1/2, each area 1/10
ward               0.40     overall 1/2, each area 1/10
age group          0.15     overall 1/2, each area 1/10
ward × age group   0.25     overall 1/2, each area 1/10
cohort (instead)   1.00     overall 1/2, each area 1/10
=================  =======  ============================

Each histogram of budget ``ε_h`` gets discrete Laplace noise of scale
``1 / ε_h`` on every count (OpenDP's ``make_laplace`` on integer vectors,
which samples exactly and needs no floating-point care); OpenDP's own
``map`` gives the ε it spends, and the release records their sum.

Why ε = 1 by default: it bounds what anyone can learn about one test by a
factor ``e ≈ 2.7`` in the odds, a level statistics offices call strong
protection. The city table exists because the city's figures (an area's, a
competence's) are what targets are set on: summed from 96 wards or 8 age
groups their noise would be 3 to 10 times larger. With quarterly periods the
noise on the overall level shares of a ward with 200 tests in a quarter is
about as large as their sampling error; smaller groups and the area figures
get wider intervals or are withheld, which the reports show. A city that wants narrower intervals can raise ``NANGLUC_REPORT_EPSILON``
(the README explains the trade).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

#: Privacy-loss budget of one test (over all releases it is part of).
DEFAULT_EPSILON = 1.0
#: Share of the budget of each table of a period's release (a regular test is in all three).
TABLE_SHARES: dict[str, float] = {
    "all": 0.2,
    "ward": 0.4,
    "age_group": 0.15,
    "ward_age_group": 0.25,
}
#: A cohort test is in its cohort's release only, which gets the whole budget.
COHORT_TABLE = "cohort"
#: Within a table: the overall score's histogram gets half, the areas share the rest.
OVERALL_SHARE = 0.5


def _opendp():
    import opendp.prelude as dp

    # OpenDP 0.16 marks every constructor whose proof has not finished its
    # review as "contrib", including the discrete Laplace mechanism and the
    # integer L1 space we use: without this the library refuses to build them.
    dp.enable_features("contrib")
    return dp


@cache
def _mechanism(scale: float):
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    return dp.m.make_laplace(*space, scale=scale)


@dataclass(frozen=True)
class HistogramNoise:
    """The noise of one kind of histogram in a table: its scale and its ε."""

    scale: float
    epsilon: float

    @property
    def variance(self) -> float:
        """Variance of one noisy count (discrete Laplace)."""
        q = math.exp(-1.0 / self.scale)
        return 2.0 * q / (1.0 - q) ** 2


@dataclass(frozen=True)
class TableNoise:
    """Noise of a table's overall-score histograms and of its area-score histograms."""

    table: str
    overall: HistogramNoise
    area: HistogramNoise
    areas: int

    @property
    def epsilon(self) -> float:
        """ε one test spends in this table (one overall and ``areas`` area histograms)."""
        return self.overall.epsilon + self.areas * self.area.epsilon


def table_noise(table: str, epsilon: float, areas: int) -> TableNoise:
    """The noise scales of ``table`` when one test's budget is ``epsilon``.

    Raises
    ------
    ValueError
        Unknown table, ε not a positive finite number, or no area.
    """
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"the privacy budget epsilon must be a number > 0, got {epsilon!r}")
    if areas < 1:
        raise ValueError("a release needs at least one area")
    if table == COHORT_TABLE:
        share = 1.0
    elif table in TABLE_SHARES:
        share = TABLE_SHARES[table]
    else:
        raise ValueError(f"unknown release table {table!r}")
    budget = epsilon * share
    overall_eps = budget * OVERALL_SHARE
    area_eps = budget * (1.0 - OVERALL_SHARE) / areas
    overall = HistogramNoise(1.0 / overall_eps, _spent(1.0 / overall_eps))
    area = HistogramNoise(1.0 / area_eps, _spent(1.0 / area_eps))
    return TableNoise(table, overall, area, areas)


def _spent(scale: float) -> float:
    """ε that OpenDP accounts for one count-vector (L1 sensitivity 1) at ``scale``."""
    return float(_mechanism(scale).map(1))


def release_epsilon(epsilon: float, areas: int, tables: tuple[str, ...]) -> float:
    """ε one test spends in a release whose tables it is counted in (OpenDP's accounting)."""
    return sum(table_noise(t, epsilon, areas).epsilon for t in tables)


def add_noise(counts: np.ndarray, scale: float) -> np.ndarray:
    """``counts`` plus discrete Laplace noise of ``scale`` on every entry (OpenDP).

    The noise comes from OpenDP's sampler (the operating system's secure
    random source): it cannot be replayed, so a release is drawn once and
    stored, and every later report reads the stored numbers.
    """
    counts = np.asarray(counts)
    if counts.size == 0:
        return counts.astype(np.int64)
    if not np.issubdtype(counts.dtype, np.integer) or counts.min() < 0:
        raise ValueError("only non-negative integer counts get noise")
    if counts.max() > 2**31 - 1:
        raise ValueError("a count is too large for the noise mechanism")
    noisy = _mechanism(float(scale))(counts.ravel().astype(int).tolist())
    return np.asarray(noisy, dtype=np.int64).reshape(counts.shape)
