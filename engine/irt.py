"""IRT response functions for a mixed 2PL / 3PL / graded bank.

Parameterisation (DESIGN §3): logistic, D = 1, ``a(theta - b)``.

* 2PL: ``P(X = 1) = sigma(a(theta - b))``; 3PL adds the lower asymptote c.
* GRM: ``P(X >= k) = sigma(a(theta - b_k))``, k = 1..m-1, b_k increasing.

All functions take plain arrays (so calibration can call them with trial
parameters) and broadcast over (thetas x items x categories). Shapes:
``theta`` (T,), ``discrimination`` (I,), ``thresholds`` (I, K-1) padded with
``+inf``, ``guessing`` (I,). Results are (T, I) or (T, I, K).
"""

from __future__ import annotations

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.special import expit

_TINY = 1e-300


def boundary_probabilities(
    theta: np.ndarray, discrimination: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> np.ndarray:
    """``P(X >= k)`` for k = 1..K-1, shape (T, I, K-1).

    The guessing asymptote applies to the first boundary only (it is 0 for
    every graded item, so this is exact for all three models).
    """
    theta = np.asarray(theta, dtype=float).reshape(-1, 1, 1)
    a = discrimination[None, :, None]
    star = expit(a * (theta - thresholds[None, :, :]))
    c = guessing[None, :]
    star[:, :, 0] = c + (1.0 - c) * star[:, :, 0]
    return star


def category_probabilities(
    theta: np.ndarray, discrimination: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> np.ndarray:
    """``P(X = k)`` for k = 0..K-1, shape (T, I, K); zero beyond an item's categories."""
    star = boundary_probabilities(theta, discrimination, thresholds, guessing)
    t, i, _ = star.shape
    upper = np.concatenate([np.ones((t, i, 1)), star], axis=2)
    lower = np.concatenate([star, np.zeros((t, i, 1))], axis=2)
    return np.clip(upper - lower, 0.0, 1.0)


def item_information(
    theta: np.ndarray, discrimination: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> np.ndarray:
    """Fisher information ``sum_k P'_k(theta)^2 / P_k(theta)``, shape (T, I).

    One formula for all three models: for 3PL it equals
    ``a^2 (P - c)^2 Q / ((1 - c)^2 P)``, for 2PL ``a^2 P Q``, and for the GRM
    Samejima's item information.
    """
    theta = np.asarray(theta, dtype=float).reshape(-1)
    prob, dprob = categories_and_slopes(
        theta[:, None, None],
        discrimination[None, :, None],
        thresholds[None, :, :],
        guessing[None, :],
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(prob > _TINY, dprob**2 / np.maximum(prob, _TINY), 0.0)
    return terms.sum(axis=2)


def categories_and_slopes(
    theta: np.ndarray, a: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``P(X = k)`` and ``dP(X = k) / dtheta`` over a trailing category axis.

    Arguments broadcast against each other: ``theta`` and ``a`` end in a
    length-1 axis, ``thresholds`` in K-1, ``guessing`` has no category axis.
    Both results end in K.
    """
    logistic = expit(a * (theta - thresholds))
    star = logistic.copy()
    star[..., 0] = guessing + (1.0 - guessing) * star[..., 0]
    slope = a * logistic * (1.0 - logistic)
    slope[..., 0] *= 1.0 - guessing
    edge = (*star.shape[:-1], 1)
    ones, zeros = np.ones(edge), np.zeros(edge)
    prob = np.concatenate([ones, star], axis=-1) - np.concatenate([star, zeros], axis=-1)
    dprob = np.concatenate([zeros, slope], axis=-1) - np.concatenate([slope, zeros], axis=-1)
    return prob, dprob


def expected_score(
    theta: np.ndarray, discrimination: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> np.ndarray:
    """Expected item score ``E[X | theta] = sum_k P(X >= k)``, shape (T, I)."""
    return boundary_probabilities(theta, discrimination, thresholds, guessing).sum(axis=2)


def expected_score_derivative(
    theta: np.ndarray, discrimination: np.ndarray, thresholds: np.ndarray, guessing: np.ndarray
) -> np.ndarray:
    """``d E[X | theta] / d theta``, shape (T, I)."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    a = discrimination[None, :, None]
    logistic = expit(a * (theta[:, None, None] - thresholds[None, :, :]))
    slope = a * logistic * (1.0 - logistic)
    slope[:, :, 0] *= 1.0 - guessing[None, :]
    return slope.sum(axis=2)


# Bank-level conveniences: the same functions over a whole ItemBank.


def bank_probabilities(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Category probabilities of every bank item at ``theta``, shape (T, I, K)."""
    return category_probabilities(theta, bank.discrimination, bank.thresholds, bank.guessing)


def bank_information(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Fisher information of every bank item at ``theta``, shape (T, I)."""
    return item_information(theta, bank.discrimination, bank.thresholds, bank.guessing)


def log_likelihood(
    bank: ItemBank, theta: np.ndarray, items: np.ndarray, responses: np.ndarray
) -> np.ndarray:
    """Log-likelihood of one response pattern at each ``theta``, shape (T,).

    ``items`` are bank indices and ``responses`` their scored categories.
    """
    items = np.asarray(items, dtype=np.intp)
    responses = np.asarray(responses, dtype=np.intp)
    if items.size == 0:
        return np.zeros(np.asarray(theta).reshape(-1).shape)
    probs = category_probabilities(
        theta, bank.discrimination[items], bank.thresholds[items], bank.guessing[items]
    )
    chosen = probs[:, np.arange(items.size), responses]
    return np.log(np.maximum(chosen, _TINY)).sum(axis=1)


def simulate_responses(
    bank: ItemBank, theta: np.ndarray, items: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw responses of examinees ``theta`` (N,) to ``items`` (N,) (one each)."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    items = np.asarray(items, dtype=np.intp).reshape(-1)
    a = bank.discrimination[items]
    star = expit(a[:, None] * (theta[:, None] - bank.thresholds[items]))
    c = bank.guessing[items]
    star[:, 0] = c + (1.0 - c) * star[:, 0]
    u = rng.random(theta.size)
    return (star > u[:, None]).sum(axis=1).astype(np.int16)
