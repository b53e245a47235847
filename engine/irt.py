"""IRT response functions for a mixed bank: 1PL/2PL/3PL, graded and partial credit.

Parameterisation (DESIGN §3): logistic, D = 1, ``a(theta - b)``.

* 2PL: ``P(X = 1) = sigma(a(theta - b))``; 3PL adds the lower asymptote c; the
  1PL (Rasch when a = 1) is a 2PL whose a is shared by every 1PL item.
* GRM (cumulative): ``P(X >= k) = sigma(a(theta - b_k))``, k = 1..m-1, b_k increasing.
* GPCM (divide-by-total, Muraki 1992): ``P(X = k) ∝ exp(sum_{v <= k} a(theta - b_v))``
  with step parameters b_v in any order; the PCM is a GPCM whose a is shared
  (1 by default). A dichotomous GPCM item is exactly a 2PL item.

All functions take plain arrays (so calibration can call them with trial
parameters) and broadcast over (thetas x items x categories). Shapes:
``theta`` (T,), ``discrimination`` (I,), ``thresholds`` (I, K-1) padded with
``+inf``, ``guessing`` (I,), ``partial_credit`` (I,) bool (True for GPCM/PCM
items whose thresholds are step parameters; None means no such item).
Results are (T, I) or (T, I, K).
"""

from __future__ import annotations

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.special import expit

_TINY = 1e-300


def boundary_probabilities(
    theta: np.ndarray,
    discrimination: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
) -> np.ndarray:
    """``P(X >= k)`` for k = 1..K-1, shape (T, I, K-1).

    The guessing asymptote applies to the first boundary only (it is 0 for
    every polytomous item). For partial-credit items the boundaries are the
    upper tail sums of the category probabilities.
    """
    if _any(partial_credit):
        probs = category_probabilities(theta, discrimination, thresholds, guessing, partial_credit)
        return np.cumsum(probs[:, :, :0:-1], axis=2)[:, :, ::-1]
    theta = np.asarray(theta, dtype=float).reshape(-1, 1, 1)
    a = discrimination[None, :, None]
    star = expit(a * (theta - thresholds[None, :, :]))
    c = guessing[None, :]
    star[:, :, 0] = c + (1.0 - c) * star[:, :, 0]
    return star


def category_probabilities(
    theta: np.ndarray,
    discrimination: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
) -> np.ndarray:
    """``P(X = k)`` for k = 0..K-1, shape (T, I, K); zero beyond an item's categories."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    prob, _ = categories_and_slopes(
        theta[:, None, None],
        discrimination[None, :, None],
        thresholds[None, :, :],
        guessing[None, :],
        None if partial_credit is None else np.asarray(partial_credit)[None, :],
        slopes=False,
    )
    return np.clip(prob, 0.0, 1.0)


def item_information(
    theta: np.ndarray,
    discrimination: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
) -> np.ndarray:
    """Fisher information ``sum_k P'_k(theta)^2 / P_k(theta)``, shape (T, I).

    One formula for every model: for 3PL it equals
    ``a^2 (P - c)^2 Q / ((1 - c)^2 P)``, for 2PL ``a^2 P Q``, for the GRM
    Samejima's item information and for the GPCM ``a^2 Var(X | theta)``.
    """
    theta = np.asarray(theta, dtype=float).reshape(-1)
    prob, dprob = categories_and_slopes(
        theta[:, None, None],
        discrimination[None, :, None],
        thresholds[None, :, :],
        guessing[None, :],
        None if partial_credit is None else np.asarray(partial_credit)[None, :],
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(prob > _TINY, dprob**2 / np.maximum(prob, _TINY), 0.0)
    return terms.sum(axis=2)


def categories_and_slopes(
    theta: np.ndarray,
    a: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
    *,
    slopes: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``P(X = k)`` and ``dP(X = k) / dtheta`` over a trailing category axis.

    Arguments broadcast against each other: ``theta`` and ``a`` end in a
    length-1 axis, ``thresholds`` in K-1, ``guessing`` and ``partial_credit``
    have no category axis. Both results end in K (the slopes are None when
    ``slopes`` is False).
    """
    logistic = expit(a * (theta - thresholds))
    star = logistic.copy()
    star[..., 0] = guessing + (1.0 - guessing) * star[..., 0]
    edge = (*star.shape[:-1], 1)
    ones, zeros = np.ones(edge), np.zeros(edge)
    prob = np.concatenate([ones, star], axis=-1) - np.concatenate([star, zeros], axis=-1)
    dprob = None
    if slopes:
        slope = a * logistic * (1.0 - logistic)
        slope[..., 0] *= 1.0 - guessing
        dprob = np.concatenate([zeros, slope], axis=-1) - np.concatenate([slope, zeros], axis=-1)
    if _any(partial_credit):
        partial = np.asarray(partial_credit, dtype=bool)[..., None]
        pc_prob, pc_slope = _partial_credit(theta, a, thresholds, slopes)
        prob = np.where(partial, pc_prob, prob)
        if slopes:
            dprob = np.where(partial, pc_slope, dprob)
    return prob, dprob


def _partial_credit(
    theta: np.ndarray, a: np.ndarray, thresholds: np.ndarray, slopes: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """GPCM category probabilities and slopes (see :func:`categories_and_slopes`).

    ``log P_k = z_k - logsumexp(z)`` with ``z_k = sum_{v <= k} a(theta - b_v)``;
    padded steps (``b = +inf``) give ``z = -inf``, so probability 0.
    ``dP_k / dtheta = a P_k (k - E[X])``.
    """
    with np.errstate(invalid="ignore"):
        steps = a * (theta - thresholds)
    steps = np.where(np.isnan(steps), -np.inf, steps)
    z = np.concatenate([np.zeros((*steps.shape[:-1], 1)), np.cumsum(steps, axis=-1)], axis=-1)
    z = z - z.max(axis=-1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=-1, keepdims=True)
    if not slopes:
        return prob, None
    k = np.arange(prob.shape[-1], dtype=float)
    mean = (prob * k).sum(axis=-1, keepdims=True)
    return prob, a * prob * (k - mean)


def _any(partial_credit: np.ndarray | None) -> bool:
    return partial_credit is not None and bool(np.any(partial_credit))


def expected_score(
    theta: np.ndarray,
    discrimination: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
) -> np.ndarray:
    """Expected item score ``E[X | theta] = sum_k P(X >= k)``, shape (T, I)."""
    return boundary_probabilities(theta, discrimination, thresholds, guessing, partial_credit).sum(
        axis=2
    )


def expected_score_derivative(
    theta: np.ndarray,
    discrimination: np.ndarray,
    thresholds: np.ndarray,
    guessing: np.ndarray,
    partial_credit: np.ndarray | None = None,
) -> np.ndarray:
    """``d E[X | theta] / d theta``, shape (T, I)."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    if _any(partial_credit):
        _, dprob = categories_and_slopes(
            theta[:, None, None],
            discrimination[None, :, None],
            thresholds[None, :, :],
            guessing[None, :],
            np.asarray(partial_credit)[None, :],
        )
        return dprob @ np.arange(dprob.shape[-1], dtype=float)
    a = discrimination[None, :, None]
    logistic = expit(a * (theta[:, None, None] - thresholds[None, :, :]))
    slope = a * logistic * (1.0 - logistic)
    slope[:, :, 0] *= 1.0 - guessing[None, :]
    return slope.sum(axis=2)


# Bank-level conveniences: the same functions over a whole ItemBank.


def bank_probabilities(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Category probabilities of every bank item at ``theta``, shape (T, I, K)."""
    return category_probabilities(
        theta, bank.discrimination, bank.thresholds, bank.guessing, bank.partial_credit
    )


def bank_information(bank: ItemBank, theta: np.ndarray) -> np.ndarray:
    """Fisher information of every bank item at ``theta``, shape (T, I)."""
    return item_information(
        theta, bank.discrimination, bank.thresholds, bank.guessing, bank.partial_credit
    )


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
        theta,
        bank.discrimination[items],
        bank.thresholds[items],
        bank.guessing[items],
        bank.partial_credit[items],
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
    partial = bank.partial_credit[items]
    if partial.any():
        prob, _ = categories_and_slopes(
            theta[:, None],
            a[:, None],
            bank.thresholds[items],
            bank.guessing[items],
            partial,
            slopes=False,
        )
        # P(X >= k) for k = 1..K-1: tail sums of the category probabilities.
        star = np.cumsum(prob[:, :0:-1], axis=1)[:, ::-1]
    else:
        star = expit(a[:, None] * (theta[:, None] - bank.thresholds[items]))
        c = bank.guessing[items]
        star[:, 0] = c + (1.0 - c) * star[:, 0]
    u = rng.random(theta.size)
    return (star > u[:, None]).sum(axis=1).astype(np.int16)
