"""Ability estimation per area: EAP (default), MAP and bounded MLE.

Every estimator works on M rows at once (a row = one test taker's evidence in
one area) and returns ``theta`` and its standard error, shape (M,):

* ``loglik`` (M, Q): the log-likelihood of the row's scored responses on the
  quadrature grid of :mod:`engine.tables`;
* ``items``/``responses`` (M, L): the administered items (bank indices,
  -1 padding) and their responses; ``member`` (M, L) marks the entries that
  belong to the row (scored items of that area).

EAP needs only ``loglik``; MAP and MLE refine the grid maximum with Fisher
scoring on the items themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import expit

from engine.bank import ItemBank
from engine.tables import bank_tables


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

    def estimate(self, bank, loglik, items, responses, member):
        grid = bank_tables(bank).quadrature
        log_post = loglik - 0.5 * ((grid - self.prior_mean) / self.prior_sd) ** 2
        weight = normalized_exp(log_post)
        mean = weight @ grid
        variance = weight @ (grid**2) - mean**2
        return mean, np.sqrt(np.maximum(variance, 1e-12))


@dataclass(frozen=True)
class MAP:
    """Maximum a posteriori (mode) with a normal prior; SE from the posterior information."""

    prior_mean: float = 0.0
    prior_sd: float = 1.0
    iterations: int = 8
    name: str = "map"

    def __post_init__(self) -> None:
        _check_prior(self.prior_mean, self.prior_sd)

    def estimate(self, bank, loglik, items, responses, member):
        grid = bank_tables(bank).quadrature
        log_post = loglik - 0.5 * ((grid - self.prior_mean) / self.prior_sd) ** 2
        theta = grid[np.argmax(log_post, axis=1)]
        precision = 1.0 / self.prior_sd**2
        for _ in range(self.iterations):
            gradient, information = _score_and_information(bank, theta, items, responses, member)
            gradient = gradient - (theta - self.prior_mean) * precision
            theta = np.clip(theta + gradient / (information + precision), grid[0], grid[-1])
        _, information = _score_and_information(bank, theta, items, responses, member)
        return theta, 1.0 / np.sqrt(information + precision)


@dataclass(frozen=True)
class MLE:
    """Maximum likelihood, bounded to ``[-bound, bound]`` so it stays finite.

    All-lowest or all-highest patterns (and rows without responses) have no
    interior maximum: they get the bound (0 for no responses) and the SE of the
    information there, floored at ``max_se``.
    """

    bound: float = 4.0
    iterations: int = 10
    max_se: float = 10.0
    name: str = "mle"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.bound) and 0 < self.bound <= 6):
            raise ValueError(f"MLE bound must lie in (0, 6], got {self.bound}")

    def estimate(self, bank, loglik, items, responses, member):
        grid = bank_tables(bank).quadrature
        inside = np.abs(grid) <= self.bound
        start = grid[inside][np.argmax(loglik[:, inside], axis=1)]
        theta = np.where(member.any(axis=1), start, 0.0)
        for _ in range(self.iterations):
            gradient, information = _score_and_information(bank, theta, items, responses, member)
            step = np.divide(
                gradient, information, out=np.zeros_like(theta), where=information > 1e-9
            )
            theta = np.clip(theta + np.clip(step, -1.0, 1.0), -self.bound, self.bound)
        _, information = _score_and_information(bank, theta, items, responses, member)
        se = np.divide(
            1.0,
            np.sqrt(information),
            out=np.full_like(theta, self.max_se),
            where=information > 1e-9,
        )
        return theta, np.minimum(se, self.max_se)


def normalized_exp(log_weight: np.ndarray) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along the last axis, computed stably."""
    weight = np.exp(log_weight - log_weight.max(axis=-1, keepdims=True))
    weight /= weight.sum(axis=-1, keepdims=True)
    return weight


ESTIMATORS = {"eap": EAP, "map": MAP, "mle": MLE}


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
    a = bank.discrimination[safe][:, :, None]
    logistic = expit(a * (theta[:, None, None] - bank.thresholds[safe]))
    c = bank.guessing[safe]
    star = logistic.copy()
    star[:, :, 0] = c + (1.0 - c) * star[:, :, 0]
    slope = a * logistic * (1.0 - logistic)
    slope[:, :, 0] *= 1.0 - c
    m, length, _ = star.shape
    ones, zeros = np.ones((m, length, 1)), np.zeros((m, length, 1))
    prob = np.concatenate([ones, star], axis=2) - np.concatenate([star, zeros], axis=2)
    dprob = np.concatenate([zeros, slope], axis=2) - np.concatenate([slope, zeros], axis=2)
    prob = np.maximum(prob, 1e-300)
    chosen = np.where(member, responses, 0)[:, :, None]
    p_k = np.take_along_axis(prob, chosen, axis=2)[:, :, 0]
    dp_k = np.take_along_axis(dprob, chosen, axis=2)[:, :, 0]
    gradient = np.where(member, dp_k / p_k, 0.0).sum(axis=1)
    valid = prob > 1e-280
    info_terms = np.where(valid, dprob**2 / prob, 0.0).sum(axis=2)
    information = np.where(member, info_terms, 0.0).sum(axis=1)
    return gradient, information
