"""Item response kernels in slope-intercept form, for estimation.

Estimation works in the slope-intercept form ``z_k = a * theta + d_k`` because
the log-likelihood is much better conditioned there than in ``a(theta - b)``
form; results are converted back to the bank's parameterisation (DESIGN §3)
with ``b_k = -d_k / a``.

Parameter vectors per item (one row per item of a group):

* graded (2PL is the graded model with two categories):
  ``[a, d_1, ..., d_{K-1}]`` with ``d`` decreasing;
* 3PL: ``[a, d, gamma]`` with the lower asymptote ``c = sigmoid(gamma)``;
* generalized partial credit: ``[a, d_1, ..., d_{K-1}]`` with
  ``z_k = sum_{v <= k} (a * theta + d_v)`` and ``P(X = k)`` proportional to
  ``exp(z_k)``; the step parameters ``b_v = -d_v / a`` may be in any order.

Every function works on a group of items with the same model and number of
categories, so the M-step is one vectorised Fisher-scoring step per group.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

GRADED = "graded"
THREEPL = "3pl"
GPCM = "gpcm"
#: 1PL and PCM items: partial credit with one slope shared by all such items
#: of a scale (rows ``[a, d_1, ..., d_{K-1}]`` with the same ``a``; a
#: dichotomous one is a 1PL item). The EM step holds the slope per item and
#: updates the shared value across them (:func:`nangluc.calibration.mml.fit_scale`).
SHARED = "shared-slope"


def n_params(family: str, n_categories: int) -> int:
    """Number of free parameters of an item."""
    return 3 if family == THREEPL else n_categories


def layout(family: str, n_params: int) -> tuple[int, np.ndarray, int | None]:
    """Where the slope, the intercepts and the guessing parameter sit in a parameter row.

    Returns ``(slope, intercepts, guessing)``: the slope's column, the
    intercepts' columns (``b_k = -d_k / a``) and the column of ``gamma``
    (``c = sigmoid(gamma)``) or None. Priors, bounds and diagnostics use this
    instead of knowing each model; a new model states its layout here.
    """
    if family == THREEPL:
        return 0, np.array([1]), 2
    if family in (GRADED, GPCM, SHARED):
        return 0, np.arange(1, n_params), None
    raise ValueError(f"unknown item family {family!r}")


def probabilities_and_derivatives(
    family: str, params: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Category probabilities and their derivatives w.r.t. the parameters.

    Parameters
    ----------
    family : {"graded", "3pl"}
    params : ndarray, shape (n, p)
    theta : ndarray, shape (Q,)

    Returns
    -------
    prob : ndarray, shape (n, Q, K)
    dprob : ndarray, shape (n, Q, K, p)
        ``d prob[..., k] / d params[:, j]`` in ``dprob[..., k, j]``.
    """
    n, p = params.shape
    q = theta.size
    a = params[:, 0][:, None]
    if family == THREEPL:
        c = expit(params[:, 2])[:, None]
        star = expit(a * theta[None, :] + params[:, 1][:, None])
        w = star * (1.0 - star)
        p1 = c + (1.0 - c) * star
        prob = np.stack([1.0 - p1, p1], axis=2)
        d1 = np.empty((n, q, 3))
        d1[:, :, 0] = (1.0 - c) * w * theta[None, :]
        d1[:, :, 1] = (1.0 - c) * w
        d1[:, :, 2] = (1.0 - star) * c * (1.0 - c)
        dprob = np.stack([-d1, d1], axis=2)
        return prob, dprob
    if family in (GPCM, SHARED):
        return _partial_credit(params, theta)
    k = p  # categories: a plus K-1 intercepts
    # boundaries P(X >= k) for k = 0..K, with the fixed ends 1 and 0
    star = np.ones((n, q, k + 1))
    star[:, :, k] = 0.0
    star[:, :, 1:k] = expit(a[:, :, None] * theta[None, :, None] + params[:, None, 1:])
    w = star[:, :, 1:k] * (1.0 - star[:, :, 1:k])
    dstar = np.zeros((n, q, k + 1, p))
    dstar[:, :, 1:k, 0] = w * theta[None, :, None]
    idx = np.arange(1, k)
    dstar[:, :, idx, idx] = w
    prob = star[:, :, :-1] - star[:, :, 1:]
    dprob = dstar[:, :, :-1, :] - dstar[:, :, 1:, :]
    return prob, dprob


def _partial_credit(params: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GPCM probabilities (n, Q, K) and their parameter derivatives (n, Q, K, p).

    ``dP_k / da = P_k theta (k - E[X])`` and ``dP_k / dd_v = P_k (1[k >= v] - P(X >= v))``.
    """
    n, p = params.shape
    k = p
    steps = params[:, 0][:, None, None] * theta[None, :, None] + params[:, None, 1:]
    z = np.concatenate([np.zeros((n, theta.size, 1)), np.cumsum(steps, axis=2)], axis=2)
    z -= z.max(axis=2, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=2, keepdims=True)
    category = np.arange(k, dtype=float)
    mean = prob @ category
    dprob = np.empty((n, theta.size, k, p))
    dprob[..., 0] = prob * theta[None, :, None] * (category[None, None, :] - mean[:, :, None])
    tail = np.cumsum(prob[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # P(X >= v), v = 1..K-1
    reached = (category[:, None] >= np.arange(1, k)[None, :]).astype(float)  # (K, K-1)
    dprob[..., 1:] = prob[..., None] * (reached[None, None, :, :] - tail[:, :, None, :])
    return prob, dprob


def log_probabilities(family: str, params: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """``log P(X = k | theta)``, shape (n, Q, K), floored to stay finite."""
    prob, _ = probabilities_and_derivatives(family, params, theta)
    return np.log(np.maximum(prob, 1e-300))


def to_irt(family: str, params: np.ndarray) -> dict[str, np.ndarray]:
    """Slope-intercept rows to bank parameters ``a``, ``b`` (thresholds), ``c``."""
    a = params[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        b = -params[:, 1:2] / a[:, None] if family == THREEPL else -params[:, 1:] / a[:, None]
    c = expit(params[:, 2]) if family == THREEPL else np.zeros(a.size)
    return {"a": a, "b": b, "c": c}


def from_irt(family: str, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """Bank parameters to slope-intercept rows (inverse of :func:`to_irt`)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float).reshape(a.size, -1)
    d = -a[:, None] * b
    if family == THREEPL:
        c = np.clip(np.asarray(c, dtype=float), 1e-4, 1 - 1e-4)
        return np.column_stack([a, d[:, 0], logit(c)])
    return np.column_stack([a, d])


def irt_jacobian(family: str, params: np.ndarray) -> np.ndarray:
    """``d (a, b_1.., c) / d (a, d_1.., gamma)`` per item, shape (n, p, p).

    Used to carry the covariance of the estimates to the bank's
    parameterisation (delta method).
    """
    n, p = params.shape
    a = params[:, 0]
    jac = np.zeros((n, p, p))
    jac[:, 0, 0] = 1.0
    n_b = 1 if family == THREEPL else p - 1
    for j in range(1, 1 + n_b):
        jac[:, j, 0] = params[:, j] / a**2
        jac[:, j, j] = -1.0 / a
    if family == THREEPL:
        c = expit(params[:, 2])
        jac[:, 2, 2] = c * (1.0 - c)
    return jac
