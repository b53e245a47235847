"""Ability estimation per area: EAP (default), MAP, bounded MLE and Warm's WLE.

Every estimator works on M rows at once (a row = one test taker's evidence in
one area) and returns ``theta`` and its standard error, shape (M,):

* ``loglik`` (M, Q): the log-likelihood of the row's scored responses on the
  quadrature grid of :mod:`nangluc.engine.tables`;
* ``items``/``responses`` (M, L): the administered items (bank indices,
  -1 padding) and their responses; ``member`` (M, L) marks the entries that
  belong to the row (scored items of that area).

EAP needs only ``loglik``; MAP, MLE and WLE refine the grid maximum with
Fisher scoring on the items themselves.

Every estimator also states its prior on the grid (:meth:`log_prior`: normal
for EAP and MAP, flat for MLE and WLE, the conditional normal given the other
areas for :class:`CorrelatedEAP`), so rules that average over the posterior
(:func:`posterior_weights`) use the estimator's own posterior.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.irt import categories_and_slopes
from nangluc.engine.special import expit
from nangluc.engine.tables import bank_tables, log_normal_density


class Estimator(Protocol):
    """Estimates theta and its standard error for M rows of evidence."""

    name: str

    def estimate(
        self,
        bank: ItemBank,
        loglik: np.ndarray,
        items: np.ndarray,
        responses: np.ndarray,
        member: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def log_prior(self, bank: ItemBank, loglik: np.ndarray) -> np.ndarray:
        """Log prior density of each area on the quadrature grid (up to a constant).

        ``loglik`` (N, A, Q); the result broadcasts against it.
        """
        ...


def posterior_weights(bank: ItemBank, estimator: Estimator, loglik: np.ndarray) -> np.ndarray:
    """The estimator's posterior of each area on the quadrature grid, normalised, (N, A, Q)."""
    return normalized_exp(loglik + estimator.log_prior(bank, loglik))


_FLAT = np.zeros(1)
_FLAT.setflags(write=False)


def _check_prior(mean: float, sd: float) -> None:
    if not np.isfinite(mean):
        raise ValueError(f"prior mean must be finite, got {mean}")
    if not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"prior sd must be a finite number > 0, got {sd}")


@dataclass(frozen=True)
class EAP:
    """Expected a posteriori with a normal prior; SE is the posterior SD."""

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    name: str = "eap"

    def __post_init__(self) -> None:
        _check_prior(self.prior_mean, self.prior_sd)

    def log_prior(self, bank, loglik):
        return log_normal_density(self.prior_mean, self.prior_sd)

    def estimate(self, bank, loglik, items, responses, member):
        moments = bank_tables(bank).quadrature_moments
        weight = normalized_exp(loglik + log_normal_density(self.prior_mean, self.prior_sd))
        m = weight @ moments
        mean, second = m[..., 0], m[..., 1]
        return mean, np.sqrt(np.maximum(second - mean**2, 1e-12))


@dataclass(frozen=True)
class MAP:
    """Maximum a posteriori (mode) with a normal prior; SE from the posterior information."""

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    iterations: int = 8
    name: str = "map"

    def __post_init__(self) -> None:
        _check_prior(self.prior_mean, self.prior_sd)

    def log_prior(self, bank, loglik):
        return log_normal_density(self.prior_mean, self.prior_sd)

    def estimate(self, bank, loglik, items, responses, member):
        grid = bank_tables(bank).quadrature
        log_post = loglik + log_normal_density(self.prior_mean, self.prior_sd)
        theta = _grid_mode(log_post, grid)
        precision = 1.0 / self.prior_sd**2
        items, responses, member = _used_columns(items, responses, member)
        for _ in range(self.iterations):
            gradient, information = _score_and_information(bank, theta, items, responses, member)
            gradient = gradient - (theta - self.prior_mean) * precision
            previous = theta
            theta = np.clip(theta + gradient / (information + precision), grid[0], grid[-1])
            if _converged(previous, theta):
                break
        _, information = _score_and_information(bank, theta, items, responses, member)
        return theta, 1.0 / np.sqrt(information + precision)


@dataclass(frozen=True)
class MLE:
    """Maximum likelihood, bounded to ``[-bound, bound]`` so it stays finite.

    All-lowest or all-highest patterns (and rows without responses) have no
    interior maximum. With ``extreme="bound"`` they get the bound (0 for no
    responses); with ``extreme="dodd"`` they follow Dodd's (1990) heuristic as
    catsim does: starting from ``start``, each answer moves the estimate half
    way to the highest (all-highest) or lowest (all-lowest) threshold of the
    area's items, so after k answers it is ``b + (start - b) / 2^k``. The SE is
    that of the information at the estimate, floored at ``max_se``.
    """

    bound: float = 4.0
    iterations: int = 10
    max_se: float = 10.0
    extreme: str = "bound"
    start: float = 0.0
    name: str = "mle"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.bound) and 0 < self.bound <= 6):
            raise ValueError(f"MLE bound must lie in (0, 6], got {self.bound}")
        if self.extreme not in ("bound", "dodd"):
            raise ValueError(f"extreme must be 'bound' or 'dodd', got {self.extreme!r}")

    def log_prior(self, bank, loglik):
        return _FLAT  # the likelihood alone

    def estimate(self, bank, loglik, items, responses, member):
        grid = bank_tables(bank).quadrature
        inside = np.abs(grid) <= self.bound
        start = _grid_mode(loglik[:, inside], grid[inside])
        theta = np.where(member.any(axis=1), start, 0.0)
        items, responses, member = _used_columns(items, responses, member)
        for _ in range(self.iterations):
            gradient, information = _score_and_information(bank, theta, items, responses, member)
            step = np.divide(
                gradient, information, out=np.zeros_like(theta), where=information > 1e-9
            )
            previous = theta
            theta = np.clip(theta + np.clip(step, -1.0, 1.0), -self.bound, self.bound)
            if _converged(previous, theta):
                break
        if self.extreme == "dodd":
            theta = self._dodd(bank, theta, items, responses, member)
        _, information = _score_and_information(bank, theta, items, responses, member)
        se = np.divide(
            1.0,
            np.sqrt(information),
            out=np.full_like(theta, self.max_se),
            where=information > 1e-9,
        )
        return theta, np.minimum(se, self.max_se)

    def _dodd(self, bank, theta, items, responses, member):
        answered = member.sum(axis=1)
        if items.shape[1] == 0:
            return theta
        safe = np.where(member, items, 0)
        top = bank.n_categories[safe] - 1
        all_low = (answered > 0) & ~np.any(member & (responses > 0), axis=1)
        all_high = (answered > 0) & ~np.any(member & (responses < top), axis=1)
        area = bank.area[safe[np.arange(items.shape[0]), np.argmax(member, axis=1)]]
        limits = bank_tables(bank).area_threshold_range[area]  # (M, 2)
        shrink = 0.5**answered
        theta = np.where(all_high, limits[:, 1] + (self.start - limits[:, 1]) * shrink, theta)
        theta = np.where(all_low, limits[:, 0] + (self.start - limits[:, 0]) * shrink, theta)
        return theta


@dataclass(frozen=True)
class WLE:
    """Warm's (1989) weighted likelihood estimator, bounded to ``[-bound, bound]``.

    Solves ``l'(theta) + J(theta) / (2 I(theta)) = 0`` with ``I`` the test
    information and ``J = sum_i sum_k P'_ik P''_ik / P_ik``, which removes the
    first-order bias of the MLE and, unlike it, is finite for all-lowest and
    all-highest patterns of 1PL/2PL/GRM/GPCM items. For 1PL, 2PL and GPCM
    items it is the mode of ``L(theta) sqrt(I(theta))``. The SE is that of the
    information at the estimate, at most ``max_se``; a row without responses
    gets 0 and ``max_se``. No prior: posterior-weighted selection rules see
    the likelihood alone.
    """

    bound: float = 4.0
    iterations: int = 20
    max_se: float = 10.0
    name: str = "wle"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.bound) and 0 < self.bound <= 6):
            raise ValueError(f"WLE bound must lie in (0, 6], got {self.bound}")

    def log_prior(self, bank, loglik):
        return _FLAT

    def estimate(self, bank, loglik, items, responses, member):
        tables = bank_tables(bank)
        grid = tables.quadrature
        items, responses, member = _used_columns(items, responses, member)
        answered = member.any(axis=1)
        # Start at the grid mode of L sqrt(I) (the answer for 1PL/2PL/GPCM items).
        safe = np.where(member, items, 0)
        test_info = np.einsum("qml,ml->mq", tables.quadrature_information[:, safe], member)
        inside = np.abs(grid) <= self.bound
        with np.errstate(divide="ignore"):
            weighted = loglik + 0.5 * np.log(np.maximum(test_info, 1e-300))
        theta = np.where(answered, _grid_mode(weighted[:, inside], grid[inside]), 0.0)
        for _ in range(self.iterations):
            gradient, information, bias = _warm_terms(bank, theta, items, responses, member)
            score = gradient + np.divide(
                bias, 2.0 * information, out=np.zeros_like(theta), where=information > 1e-9
            )
            step = np.divide(score, information, out=np.zeros_like(theta), where=information > 1e-9)
            previous = theta
            theta = np.clip(theta + np.clip(step, -1.0, 1.0), -self.bound, self.bound)
            if _converged(previous, theta):
                break
        _, information, _ = _warm_terms(bank, theta, items, responses, member)
        se = np.divide(
            1.0,
            np.sqrt(information),
            out=np.full_like(theta, self.max_se),
            where=information > 1e-9,
        )
        return theta, np.minimum(se, self.max_se)


def _warm_terms(
    bank: ItemBank, theta: np.ndarray, items: np.ndarray, responses: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of the log-likelihood, test information and Warm's ``J`` at ``theta`` (M,).

    ``P''`` is a central difference of the analytic slopes (step 1e-4: relative
    error about 1e-8, far below what moves the estimate).
    """
    if items.shape[1] == 0:
        zeros = np.zeros_like(theta)
        return zeros, zeros, zeros
    safe = np.where(member, items, 0)
    args = (
        bank.discrimination[safe][:, :, None],
        bank.thresholds[safe],
        bank.guessing[safe],
        bank.partial_credit[safe],
    )
    h = 1e-4
    prob, dprob = categories_and_slopes(theta[:, None, None], *args)
    _, up = categories_and_slopes((theta + h)[:, None, None], *args)
    _, down = categories_and_slopes((theta - h)[:, None, None], *args)
    curvature = (up - down) / (2.0 * h)
    valid = prob > 1e-280
    prob = np.maximum(prob, 1e-300)
    chosen = np.where(member, responses, 0)[:, :, None]
    p_k = np.take_along_axis(prob, chosen, axis=2)[:, :, 0]
    dp_k = np.take_along_axis(dprob, chosen, axis=2)[:, :, 0]
    gradient = np.where(member, dp_k / p_k, 0.0).sum(axis=1)
    information = np.where(member, np.where(valid, dprob**2 / prob, 0.0).sum(axis=2), 0.0)
    bias = np.where(member, np.where(valid, dprob * curvature / prob, 0.0).sum(axis=2), 0.0)
    return gradient, information.sum(axis=1), bias.sum(axis=1)


def _grid_mode(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Maximum of each row of ``values`` on ``grid``, refined by a parabola through
    the best point and its neighbours (a close start saves Fisher-scoring steps)."""
    best = np.argmax(values, axis=1)
    inner = np.clip(best, 1, grid.size - 2)
    rows = np.arange(values.shape[0])
    left, mid, right = values[rows, inner - 1], values[rows, inner], values[rows, inner + 1]
    curvature = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    interior = (best == inner) & np.isfinite(offset)
    step = grid[1] - grid[0]
    return np.where(interior, grid[inner] + np.clip(offset, -0.5, 0.5) * step, grid[best])


def normalized_exp(log_weight: np.ndarray) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along the last axis, computed stably."""
    weight = np.exp(log_weight - log_weight.max(axis=-1, keepdims=True))
    weight /= weight.sum(axis=-1, keepdims=True)
    return weight


ESTIMATORS = {
    "eap": EAP,
    "map": MAP,
    "mle": MLE,
    "wle": WLE,
}  # CorrelatedEAP is added below its definition


def _converged(previous: np.ndarray, theta: np.ndarray) -> bool:
    """Fisher scoring has converged for every row: further steps change nothing that matters."""
    return bool(np.max(np.abs(theta - previous), initial=0.0) < 1e-7)


def _used_columns(
    items: np.ndarray, responses: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the trailing columns where no row has an entry (the -1 padding of a batch).

    They add nothing to the gradient or information, but a batch is as wide as
    the longest test allows (e.g. the whole bank), so Fisher scoring on them
    dominated the cost of MLE and MAP.
    """
    used = np.flatnonzero(member.any(axis=0))
    width = int(used[-1]) + 1 if used.size else 0
    return items[:, :width], responses[:, :width], member[:, :width]


def _score_and_information(
    bank: ItemBank, theta: np.ndarray, items: np.ndarray, responses: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the log-likelihood and test information at ``theta`` (M,).

    Works on the (M, L) gathered items only: d log P_k / d theta = P'_k / P_k,
    and the Fisher information sum_k P'_k^2 / P_k (scoring uses the expected
    information, which is always positive).
    """
    if items.shape[1] == 0:
        zeros = np.zeros_like(theta)
        return zeros, zeros
    safe = np.where(member, items, 0)
    if bank.thresholds.shape[1] == 1:
        return _dichotomous_score_and_information(bank, theta, safe, responses, member)
    prob, dprob = categories_and_slopes(
        theta[:, None, None],
        bank.discrimination[safe][:, :, None],
        bank.thresholds[safe],
        bank.guessing[safe],
        bank.partial_credit[safe],
    )
    prob = np.maximum(prob, 1e-300)
    chosen = np.where(member, responses, 0)[:, :, None]
    p_k = np.take_along_axis(prob, chosen, axis=2)[:, :, 0]
    dp_k = np.take_along_axis(dprob, chosen, axis=2)[:, :, 0]
    gradient = np.where(member, dp_k / p_k, 0.0).sum(axis=1)
    valid = prob > 1e-280
    info_terms = np.where(valid, dprob**2 / prob, 0.0).sum(axis=2)
    information = np.where(member, info_terms, 0.0).sum(axis=1)
    return gradient, information


def _dichotomous_score_and_information(
    bank: ItemBank, theta: np.ndarray, safe: np.ndarray, responses: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The same for an all-dichotomous bank (2PL/3PL), on (M, L) arrays only."""
    a = bank.discrimination[safe]
    c = bank.guessing[safe]
    logistic = expit(a * (theta[:, None] - bank.thresholds[safe, 0]))
    p = np.clip(c + (1.0 - c) * logistic, 1e-300, 1.0 - 1e-16)
    dp = (1.0 - c) * a * logistic * (1.0 - logistic)
    gradient = np.where(member, np.where(responses > 0, dp / p, -dp / (1.0 - p)), 0.0).sum(axis=1)
    information = np.where(member, dp**2 / (p * (1.0 - p)), 0.0).sum(axis=1)
    return gradient, information


@dataclass(frozen=True, eq=False)
class JointPosterior:
    """The posterior of N takers' area abilities on the quadrature grid.

    Attributes
    ----------
    weights : ndarray, shape (N, A, Q)
        Each area's posterior probabilities on the quadrature grid of
        :mod:`nangluc.engine.tables` (each row sums to 1).
    theta, se : ndarray, shape (N, A)
        Posterior means and standard deviations.
    correlation : ndarray, shape (N, A, A)
        Posterior correlation of the areas.
    """

    weights: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    correlation: np.ndarray


@dataclass(frozen=True)
class CorrelatedEAP:
    """EAP per area that borrows strength from the other areas (collateral information).

    The areas' abilities have a multivariate normal prior with correlation
    ``correlation`` (a scalar for equal correlations, or a full matrix). Each
    area's own likelihood is used exactly on the quadrature grid; the other
    areas' likelihoods enter through Gaussian summaries (their independent
    posteriors with the prior divided out), which gives each area a
    conditional normal prior. Standard errors are the resulting posterior
    SDs, and :meth:`estimate_joint` also returns the posterior correlation of
    the areas (from the Gaussian approximation), which the overall score's
    standard error and the overall-precision selector use.

    With ``correlation=0`` this is exactly the independent :class:`EAP`.
    """

    correlation: float | tuple[tuple[float, ...], ...] = 0.7
    prior_mean: float = 0.0
    prior_sd: float = 1.0
    name: str = "eap-correlated"

    def __post_init__(self) -> None:
        _check_prior(self.prior_mean, self.prior_sd)
        if np.ndim(self.correlation) == 0:
            r = float(self.correlation)
            if not -0.25 < r < 1.0:
                raise ValueError(f"inter-area correlation must lie in (-0.25, 1), got {r}")
        else:
            matrix = np.asarray(self.correlation, dtype=float)
            if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise ValueError("a correlation matrix must be square")
            if not np.allclose(matrix, matrix.T) or not np.allclose(np.diag(matrix), 1.0):
                raise ValueError("a correlation matrix must be symmetric with a unit diagonal")
            if np.linalg.eigvalsh(matrix).min() <= 1e-8:
                raise ValueError("a correlation matrix must be positive definite")
            object.__setattr__(
                self, "correlation", tuple(tuple(float(x) for x in row) for row in matrix)
            )

    def correlation_matrix(self, n_areas: int) -> np.ndarray:
        if np.ndim(self.correlation) == 0:
            r = float(self.correlation)
            return np.full((n_areas, n_areas), r) + (1.0 - r) * np.eye(n_areas)
        matrix = np.asarray(self.correlation, dtype=float)
        if matrix.shape != (n_areas, n_areas):
            raise ValueError(
                f"the correlation matrix is {matrix.shape[0]}x{matrix.shape[0]}, the bank has {n_areas} areas"
            )
        return matrix

    def log_prior(self, bank, loglik):
        """Each area's conditional normal prior given the other areas' evidence, (N, A, Q)."""
        cond_mean, cond_sd, _ = self._conditional_prior(bank, loglik)
        grid = bank_tables(bank).quadrature
        z = (grid - cond_mean[:, :, None]) / cond_sd[:, :, None]
        return -0.5 * z * z

    def estimate(self, bank, loglik, items, responses, member):
        # Row-wise use without the other areas: the independent EAP.
        return EAP(self.prior_mean, self.prior_sd).estimate(bank, loglik, items, responses, member)

    def estimate_joint(
        self, bank: ItemBank, loglik: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimates of all areas from ``loglik`` (N, A, Q).

        Returns theta (N, A), standard errors (N, A) and the posterior
        correlation of the areas (N, A, A).
        """
        posterior = self.posterior(bank, loglik)
        return posterior.theta, posterior.se, posterior.correlation

    def posterior(self, bank: ItemBank, loglik: np.ndarray) -> JointPosterior:
        """The joint posterior of the areas given ``loglik`` (N, A, Q) under this prior.

        Each area's posterior is exact on the quadrature grid given the other
        areas' Gaussian summaries (``weights``); the areas' posterior
        correlation comes from the Gaussian approximation.
        """
        tables = bank_tables(bank)
        grid, moments = tables.quadrature, tables.quadrature_moments
        cond_mean, cond_sd, joint = self._conditional_prior(bank, loglik)
        z = (grid - cond_mean[:, :, None]) / cond_sd[:, :, None]
        w = normalized_exp(loglik - 0.5 * z * z)
        m = w @ moments
        theta, second = m[..., 0], m[..., 1]
        se = np.sqrt(np.maximum(second - theta**2, 1e-12))
        scale = np.sqrt(np.diagonal(joint, axis1=1, axis2=2))
        correlation = joint / (scale[:, :, None] * scale[:, None, :])
        return JointPosterior(weights=w, theta=theta, se=se, correlation=correlation)

    def _conditional_prior(
        self, bank: ItemBank, loglik: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each area's normal prior given the others (mean, sd: (N, A)) and the joint covariance.

        The other areas' likelihoods enter through Gaussian summaries (their
        independent posteriors with the prior divided out).
        """
        moments = bank_tables(bank).quadrature_moments
        prior_precision = 1.0 / self.prior_sd**2
        weight = normalized_exp(loglik + log_normal_density(self.prior_mean, self.prior_sd))
        m = weight @ moments  # E[theta], E[theta^2]: (N, A, 2)
        first, second = m[..., 0], m[..., 1]
        variance = np.maximum(second - first**2, 1e-12)
        # Gaussian summary of each area's likelihood: precision and (centred) information.
        precision = np.maximum(1.0 / variance - prior_precision, 0.0)
        information = np.where(
            precision > 0,
            first / variance - (prior_precision + precision) * self.prior_mean,
            0.0,
        )
        # Posterior covariance with every area's Gaussian summary: J = (S^-1 + diag p)^-1.
        joint = self._posterior_covariance(precision)
        diag = np.diagonal(joint, axis1=1, axis2=2)
        # Leaving out area a's own summary is a rank-one downdate of J
        # (Sherman–Morrison): row a of the result is J[a] / (1 - p_a J_aa).
        keep = 1.0 - precision * diag
        cond_mean = (
            self.prior_mean
            + ((joint @ information[:, :, None])[:, :, 0] - diag * information) / keep
        )
        cond_sd = np.sqrt(diag / keep)
        return cond_mean, cond_sd, joint

    def _posterior_covariance(self, precision: np.ndarray) -> np.ndarray:
        """``(S^-1 + diag p)^-1`` for each row of ``precision`` (N, A) -> (N, A, A).

        With one correlation r for every pair, ``S^-1 = alpha I - beta 11'`` and
        the inverse has the closed form ``diag(u) + gamma u u'`` with
        ``u = 1 / (alpha + p)`` and ``gamma = beta / (1 - beta sum(u))``
        (Sherman–Morrison), far cheaper than a batched ``inv``; a full
        correlation matrix takes the general route.
        """
        n_areas = precision.shape[1]
        if np.ndim(self.correlation) == 0:
            r, variance = float(self.correlation), self.prior_sd**2
            alpha = 1.0 / (variance * (1.0 - r))
            beta = alpha * r / (1.0 - r + n_areas * r)
            u = 1.0 / (alpha + precision)
            gamma = beta / (1.0 - beta * u.sum(axis=1))
            joint = (gamma[:, None] * u)[:, :, None] * u[:, None, :]
            on_diagonal = np.arange(n_areas)
            joint[:, on_diagonal, on_diagonal] += u
            return joint
        sigma_inv = _prior_precision_matrix(self.correlation, self.prior_sd, n_areas)
        return np.linalg.inv(sigma_inv + precision[:, :, None] * np.eye(n_areas))


ESTIMATORS["eap-correlated"] = CorrelatedEAP


def estimate_areas(
    bank: ItemBank,
    estimator: Estimator,
    loglik: np.ndarray,
    items: np.ndarray,
    responses: np.ndarray,
    scored: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates of every area for N takers: theta, SE (N, A), correlation (N, A, A).

    ``loglik`` (N, A, Q); ``items``/``responses``/``scored`` (N, L) as in a
    :class:`nangluc.engine.cat.CatBatch`. Estimators with ``estimate_joint`` see all
    areas at once; the others estimate each area alone (correlation = I).
    """
    n, n_areas, q = loglik.shape
    if hasattr(estimator, "estimate_joint"):
        return estimator.estimate_joint(bank, loglik)
    theta = np.empty((n, n_areas))
    se = np.empty((n, n_areas))
    valid = scored & (items >= 0)
    item_area = np.where(valid, bank.area[np.where(valid, items, 0)], -1)
    for area in range(n_areas):
        theta[:, area], se[:, area] = estimator.estimate(
            bank, loglik[:, area, :], items, responses, item_area == area
        )
    return theta, se, np.broadcast_to(np.eye(n_areas), (n, n_areas, n_areas)).copy()


def pattern_loglik(bank: ItemBank, responses: np.ndarray) -> np.ndarray:
    """Per-area log-likelihood on the quadrature grid of full response patterns.

    ``responses`` (N, I) holds each test taker's scored category of every bank
    item, -1 where there is no response; pretest items never count. Returns
    (N, A, Q): one matrix product per area and category.
    """
    responses = np.asarray(responses)
    if responses.ndim != 2 or responses.shape[1] != bank.n_items:
        raise ValueError(f"responses must have shape (N, {bank.n_items}), got {responses.shape}")
    if np.any(responses >= bank.n_categories[None, :]):
        raise ValueError("a response is out of its item's categories")
    tables = bank_tables(bank)
    loglik = np.zeros((responses.shape[0], bank.n_areas, tables.quadrature.size))
    for area, members in enumerate(tables.area_members):
        members = members[bank.operational[members]]
        for k in range(bank.max_categories):
            chosen = (responses[:, members] == k).astype(float)
            if chosen.any():
                loglik[:, area] += chosen @ tables.log_prob[members, k, :]
    return loglik


def estimate_patterns(
    bank: ItemBank, estimator: Estimator, responses: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimates of every area from full response patterns (N, I), -1 = no response.

    Returns theta, SE (N, A) and the posterior correlation of the areas
    (N, A, A), exactly as at the end of an adaptive test with these answers.
    """
    responses = np.asarray(responses)
    loglik = pattern_loglik(bank, responses)
    n = responses.shape[0]
    items = np.broadcast_to(np.arange(bank.n_items), (n, bank.n_items))
    scored = (responses >= 0) & bank.operational[None, :]
    return estimate_areas(bank, estimator, loglik, items, np.maximum(responses, 0), scored)


@functools.lru_cache(maxsize=64)
def _prior_precision_matrix(correlation, prior_sd: float, n_areas: int) -> np.ndarray:
    matrix = CorrelatedEAP(correlation=correlation, prior_sd=prior_sd).correlation_matrix(n_areas)
    inverse = np.linalg.inv(matrix * prior_sd**2)
    inverse.setflags(write=False)
    return inverse
