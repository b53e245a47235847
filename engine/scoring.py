"""Scores, proficiency levels and how sure a level is (DESIGN §4).

An area's score is its domain score: 100 x the expected fraction of the
maximum score over all operational items of that area at the area's theta.
The overall score follows the framework's overall rule (the mean of the area
scores, or a weighted mean). Levels are bands of the 100-point scale whose
lower bound belongs to the band; the bands and the rule are the bank's
framework (:attr:`ItemBank.scale`, a :class:`~nangluc.engine.scale.Scale`),
by default the Đà Nẵng framework's (:data:`DEFAULT_SCALE`).

Numbering: a level's public number is the framework's **code** (Đà Nẵng:
1 Bắt đầu to 5 Nâng cao); it is what the library's results, the API, reports
and exports show. Arrays with one column per level (level probabilities) are
in the order of the bank's ``scale.levels``; the 0-based position is called
an *index* here (:meth:`Scale.index`) and never leaves the engine and the
simulator. The module-level names (:data:`LEVELS`, :func:`level_code`, ...)
are the default framework's, kept for code written before frameworks were
data; code that has a bank uses ``bank.scale``.

How sure a level is comes from the posterior of the areas' abilities under
the test's population model (:class:`LevelPosterior`): each area's posterior
is exact on the quadrature grid and is mapped through the area's (bounded,
nonlinear) score curve, so area probabilities and intervals need no normal
approximation of the score; the overall score's posterior is taken as normal
with the exact mean and variance of the area scores' (weighted) mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.scale import DEFAULT_LEVELS, DEFAULT_SCALE, Level, Scale, band_widths
from nangluc.engine.special import ndtri
from nangluc.engine.tables import bank_tables, curve_crossing

Z_95 = 1.959963984540054


#: The default (Đà Nẵng) framework's levels; a bank's own are ``bank.scale.levels``.
LEVELS: tuple[Level, ...] = DEFAULT_LEVELS
LEVEL_CODES: tuple[int, ...] = DEFAULT_SCALE.codes
LEVEL_CUTS = DEFAULT_SCALE.cuts


def level_index(score: np.ndarray | float) -> np.ndarray:
    """0-based level position of each score under the default framework (:data:`DEFAULT_SCALE`).

    Code that has a bank uses ``bank.scale.index``.
    """
    return DEFAULT_SCALE.index(score)


def level_code(score: np.ndarray | float) -> np.ndarray:
    """The default framework's level code of each score (a bank's: ``bank.scale.code``)."""
    return DEFAULT_SCALE.code(score)


def level_by_code(code: int) -> Level:
    """The default framework's :class:`Level` with code ``code`` (a bank's: ``bank.scale.by_code``)."""
    return DEFAULT_SCALE.by_code(code)


@dataclass(frozen=True)
class Scores:
    """Area and overall scores of N test takers at their point estimates (arrays).

    The standard errors here are the delta method's, from the estimator's own
    standard errors and correlation; they drive selection and the overall-SE
    stopping rule. What a result states about the level comes from
    :class:`LevelPosterior`.
    """

    area_score: np.ndarray  # (N, A)
    area_se: np.ndarray  # (N, A)
    overall_score: np.ndarray  # (N,)
    overall_se: np.ndarray  # (N,)
    scale: Scale = DEFAULT_SCALE  # the bank's framework (levels and overall rule)

    @property
    def area_level(self) -> np.ndarray:
        """Level codes of the area scores, (N, A)."""
        return self.scale.code(self.area_score)

    @property
    def overall_level(self) -> np.ndarray:
        """Level codes of the overall scores, (N,)."""
        return self.scale.code(self.overall_score)


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
    The overall score is ``w . area`` with ``w`` the overall rule's area
    weights (:meth:`Scale.area_weights`; ``1/A`` each under the plain mean).
    Its variance is ``(w g)' C (w g)`` with ``g`` the area score SEs and
    ``C`` the posterior correlation of the areas (N, A, A); without it the areas are taken as independent (each estimated from its
    own items only).
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    theta_se = np.atleast_2d(np.asarray(theta_se, dtype=float))
    tables = bank_tables(bank)
    area, slope = tables.interpolate_areas(theta, tables.area_score, tables.area_score_slope)
    area = np.minimum(np.maximum(area, 0.0), 100.0)
    area_se = np.abs(slope) * theta_se
    # The framework's overall rule over areas with operational items, as one product (0 elsewhere).
    weights = tables.scored_area_weights
    overall = area @ weights
    if correlation is None:
        overall_se = np.sqrt(area_se**2 @ weights**2)
    else:
        g = slope * theta_se * weights
        variance = np.einsum("na,nab,nb->n", g, np.asarray(correlation, dtype=float), g)
        overall_se = np.sqrt(np.maximum(variance, 0.0))
    return Scores(area, area_se, overall, overall_se, bank.scale)


# ------------------------------------------------------------ level posterior
@dataclass(frozen=True, eq=False)
class _LevelTables:
    """Per-bank tables for the level posterior (cached with the bank's tables)."""

    # (A, Q, 2 + L - 1): per area and quadrature point, the area score, its
    # square, and for each cut the share of the point's cell below the cut.
    columns: np.ndarray
    score: np.ndarray  # (Q, A) area score at each quadrature point
    single_area: int  # the only scored area, or -1 when several (or none) are scored


def _level_tables(bank: ItemBank) -> _LevelTables:
    return bank_tables(bank).cached(("level tables",), lambda: _build_level_tables(bank))


def _build_level_tables(bank: ItemBank) -> _LevelTables:
    tables = bank_tables(bank)
    grid, fine = tables.quadrature, tables.fine
    step = float(grid[1] - grid[0])
    n_areas = tables.area_score.shape[1]
    score = np.clip(
        tables.interpolate_areas(np.repeat(grid[:, None], n_areas, axis=1), tables.area_score)[0],
        0.0,
        100.0,
    )
    cuts = bank.scale.cuts
    columns = np.zeros((n_areas, grid.size, 2 + cuts.size))
    # The theta at which each area's (increasing) score curve reaches each cut;
    # a cut never reached on the grid lies beyond its end.
    at = np.stack([curve_crossing(fine, tables.area_score, cut) for cut in cuts], axis=-1)
    columns[:, :, 0] = score.T
    columns[:, :, 1] = score.T**2
    # Each grid point stands for the cell [theta - step/2, theta + step/2].
    columns[:, :, 2:] = np.clip((at[:, None, :] - grid[None, :, None]) / step + 0.5, 0.0, 1.0)
    scored = np.flatnonzero(tables.scored_areas)
    cached = _LevelTables(
        columns=columns, score=score, single_area=int(scored[0]) if scored.size == 1 else -1
    )
    for array in (columns, score):
        array.setflags(write=False)
    return cached


@dataclass(frozen=True, eq=False)
class LevelPosterior:
    """What the posterior says about N takers' scores and levels.

    Level columns follow the bank's ``scale.levels`` (column k is the k-th level); the
    probabilities of each row sum to 1.

    Attributes
    ----------
    area_mean, area_sd : ndarray, shape (N, A)
        Posterior mean and SD of each area's score (0..100).
    area_probabilities : ndarray, shape (N, A, L)
        Posterior probability that each area's true score lies in each level.
    overall_mean, overall_sd : ndarray, shape (N,)
        Posterior mean and SD of the overall score.
    overall_probabilities : ndarray, shape (N, L)
        Posterior probability of each overall level.
    weights : ndarray, shape (N, A, Q)
        Each area's posterior on the quadrature grid (for intervals).
    """

    area_mean: np.ndarray
    area_sd: np.ndarray
    area_probabilities: np.ndarray
    overall_mean: np.ndarray
    overall_sd: np.ndarray
    overall_probabilities: np.ndarray
    weights: np.ndarray

    def area_interval(self, bank: ItemBank, confidence: float = 0.95) -> np.ndarray:
        """Equal-tailed posterior interval of each area's score, (N, A, 2).

        The theta quantiles of the area's grid posterior (each grid point's
        mass spread over its cell) mapped through the area's score curve: it
        stays within 0..100 and is as skewed as the curve makes it.
        """
        _check_confidence(confidence)
        tables = bank_tables(bank)
        grid = tables.quadrature
        step = float(grid[1] - grid[0])
        cumulative = np.cumsum(self.weights, axis=-1)
        tails = np.array([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
        theta = np.empty((*self.weights.shape[:2], 2))
        for j, p in enumerate(tails):
            cell = np.minimum(np.argmax(cumulative >= p, axis=-1), grid.size - 1)
            mass = np.take_along_axis(self.weights, cell[..., None], axis=-1)[..., 0]
            before = np.take_along_axis(cumulative, cell[..., None], axis=-1)[..., 0] - mass
            share = np.divide(p - before, mass, out=np.full_like(mass, 0.5), where=mass > 0)
            theta[..., j] = grid[cell] - step / 2 + step * np.clip(share, 0.0, 1.0)
        low = area_scores(bank, theta[..., 0])
        high = area_scores(bank, theta[..., 1])
        return np.stack([low, high], axis=-1)

    def overall_interval(self, bank: ItemBank, confidence: float = 0.95) -> np.ndarray:
        """Posterior interval of the overall score, (N, 2), within 0..100.

        Normal with the posterior mean and SD of the overall score; a bank with
        one scored area uses that area's exact interval.
        """
        _check_confidence(confidence)
        single = _level_tables(bank).single_area
        if single >= 0:
            return self.area_interval(bank, confidence)[:, single, :]
        half = float(ndtri(0.5 + confidence / 2.0)) * self.overall_sd
        return np.clip(
            np.stack([self.overall_mean - half, self.overall_mean + half], axis=-1), 0.0, 100.0
        )


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def level_posterior(bank: ItemBank, weights: np.ndarray, correlation: np.ndarray) -> LevelPosterior:
    """Scores and level probabilities from the areas' grid posteriors.

    Parameters
    ----------
    bank : ItemBank
    weights : ndarray, shape (N, A, Q)
        Each area's posterior on the quadrature grid (rows sum to 1), e.g.
        :attr:`nangluc.engine.estimation.JointPosterior.weights`.
    correlation : ndarray, shape (N, A, A)
        Posterior correlation of the areas' abilities, used for the areas'
        scores (the score curves are increasing, so the sign carries over).

    Returns
    -------
    LevelPosterior
    """
    tables = bank_tables(bank)
    level_tables = _level_tables(bank)
    weights = np.asarray(weights, dtype=float)
    n, n_areas, _ = weights.shape
    # One batched product per area: (A, N, Q) @ (A, Q, M) -> (A, N, M).
    out = np.matmul(weights.transpose(1, 0, 2), level_tables.columns).transpose(1, 0, 2)
    area_mean = out[..., 0]
    area_sd = np.sqrt(np.maximum(out[..., 1] - area_mean**2, 0.0))
    below = np.minimum(np.maximum(out[..., 2:], 0.0), 1.0)  # P(score < cut_k), (N, A, L - 1)
    below = np.maximum.accumulate(below, axis=-1)  # guard against rounding
    area_probabilities = band_widths(below)
    area_mean = np.where(tables.scored_areas, area_mean, 0.0)
    single = level_tables.single_area
    area_weights = tables.scored_area_weights
    overall_mean = area_mean @ area_weights
    if single >= 0:
        overall_sd = area_sd[:, single]
        overall_probabilities = area_probabilities[:, single, :]
    else:
        g = area_sd * area_weights
        variance = np.einsum("na,nab,nb->n", g, np.asarray(correlation, dtype=float), g)
        overall_sd = np.sqrt(np.maximum(variance, 0.0))
        overall_probabilities = bank.scale.band_probabilities(overall_mean, overall_sd)
    return LevelPosterior(
        area_mean=area_mean,
        area_sd=area_sd,
        area_probabilities=area_probabilities,
        overall_mean=overall_mean,
        overall_sd=overall_sd,
        overall_probabilities=overall_probabilities,
        weights=weights,
    )


def band_probabilities(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Default framework's level probabilities under ``N(mean, sd^2)`` (a bank's: ``bank.scale``)."""
    return DEFAULT_SCALE.band_probabilities(mean, sd)


def probability_of_level(probabilities: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Default framework's probability of each ``score``'s level (a bank's: ``bank.scale``)."""
    return DEFAULT_SCALE.probability_of_level(probabilities, score)


def root_mean_square_error(mean: np.ndarray, sd: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Posterior root-mean-square error of a reported ``point``: ``sqrt(sd^2 + (mean - point)^2)``.

    It is the posterior SD when the point is the posterior mean, and larger
    when it is not (a per-area estimate that does not borrow strength from
    the other areas, or a maximum-likelihood estimate).
    """
    return np.sqrt(np.asarray(sd) ** 2 + (np.asarray(mean) - np.asarray(point)) ** 2)
