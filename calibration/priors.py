"""Prior distributions on item parameters (Bayes modal / MAP estimation).

Small samples and sparse adaptive data leave some items nearly unidentified:
maximum likelihood then sends a slope to 8 or a difficulty to 30. The usual
remedy (BILOG-MG, Mislevy 1986; mirt's ``prior`` argument) is to maximise the
marginal *posterior*: the marginal log-likelihood plus the log density of a
prior on each item parameter. With enough responses the likelihood dominates
and the estimates are the ML ones; with few, the prior keeps them plausible.

Defaults (:data:`DEFAULT_PRIORS`, documented for researchers):

* slope ``a``: log-normal, ``log a ~ N(0, 0.5^2)`` (median 1, 95% of the mass
  between 0.38 and 2.66) — BILOG-MG's default slope prior;
* difficulty ``b`` and every graded threshold ``b_k``: ``N(0, 2^2)`` —
  BILOG-MG's threshold prior;
* lower asymptote ``c`` (3PL): ``Beta(20 g + 1, 20 (1 - g) + 1)`` with ``g``
  = 1 / number of options (0.2 when unknown) — BILOG-MG's default weight 20.

``--prior none`` (``Priors.none()``) turns all three off: plain marginal ML.

The priors are stated on the bank's parameters (a, b, c) and evaluated in the
slope-intercept form the EM works in (``b_k = -d_k / a``, ``c = expit(gamma)``).
Each family's parameter layout comes from :func:`nangluc.calibration.kernels.layout`,
so a new model only has to describe its layout to get the same priors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, expit

from nangluc.calibration import kernels

#: Columns of a per-item prior row: log-normal slope (mean, sd of log a),
#: normal location (mean, sd), Beta lower asymptote (alpha, beta). NaN = no prior.
PRIOR_COLUMNS = ("slope_mean", "slope_sd", "location_mean", "location_sd", "alpha", "beta")
PRIOR_WIDTH = len(PRIOR_COLUMNS)
CHOICES = ("default", "none")


@dataclass(frozen=True)
class Priors:
    """Which priors a calibration uses.

    Parameters
    ----------
    slope : (float, float) or None
        Mean and SD of ``log a`` (log-normal prior on the slope).
    location : (float, float) or None
        Mean and SD of the normal prior on ``b`` and on every threshold.
    guessing_weight : float or None
        Weight ``w`` of the Beta prior on ``c``: ``Beta(w g + 1, w (1 - g) + 1)``
        with ``g`` = 1 / number of options.
    """

    slope: tuple[float, float] | None = (0.0, 0.5)
    location: tuple[float, float] | None = (0.0, 2.0)
    guessing_weight: float | None = 20.0

    def __post_init__(self) -> None:
        for name in ("slope", "location"):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and value[1] > 0):
                raise ValueError(f"{name} prior must be (mean, sd) with sd > 0, got {value!r}")
        if self.guessing_weight is not None and not self.guessing_weight > 0:
            raise ValueError(f"guessing_weight must be > 0, got {self.guessing_weight!r}")

    @classmethod
    def none(cls) -> Priors:
        """No priors: marginal maximum likelihood."""
        return cls(slope=None, location=None, guessing_weight=None)

    @classmethod
    def named(cls, name: str) -> Priors:
        """``"default"`` or ``"none"`` (the CLI's ``--prior``)."""
        if name == "default":
            return DEFAULT_PRIORS
        if name == "none":
            return cls.none()
        raise ValueError(f"unknown prior {name!r} (expected one of {', '.join(CHOICES)})")

    @property
    def active(self) -> bool:
        return (
            self.slope is not None or self.location is not None or self.guessing_weight is not None
        )

    def row(self, n_options: int | None) -> np.ndarray:
        """The prior row (:data:`PRIOR_COLUMNS`) of an item with ``n_options`` options."""
        out = np.full(PRIOR_WIDTH, np.nan)
        if self.slope is not None:
            out[0:2] = self.slope
        if self.location is not None:
            out[2:4] = self.location
        if self.guessing_weight is not None:
            g = 1.0 / max(n_options or 5, 2)
            out[4:6] = (self.guessing_weight * g + 1.0, self.guessing_weight * (1.0 - g) + 1.0)
        return out

    def to_dict(self) -> dict:
        return {
            "slope": None
            if self.slope is None
            else {"distribution": "lognormal", "log_mean": self.slope[0], "log_sd": self.slope[1]},
            "location": None
            if self.location is None
            else {"distribution": "normal", "mean": self.location[0], "sd": self.location[1]},
            "guessing": None
            if self.guessing_weight is None
            else {
                "distribution": "beta",
                "mean": "1 / number of options (0.2 when unknown)",
                "weight": self.guessing_weight,
            },
        }


DEFAULT_PRIORS = Priors()


def _terms(family: str, params: np.ndarray, rows: np.ndarray):
    slope, intercepts, guessing = kernels.layout(family, params.shape[1])
    return slope, intercepts, guessing, ~np.isnan(rows[:, 1]), ~np.isnan(rows[:, 3])


_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def log_density(family: str, params: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Log prior density of each item's (a, b..., c), shape (n,).

    A proper density (normalising constants included), so the reported
    log-posterior is the log-likelihood plus the log prior exactly. ``-inf``
    for a slope <= 0 under a log-normal prior.
    """
    slope, intercepts, guessing, has_slope, has_location = _terms(family, params, rows)
    out = np.zeros(params.shape[0])
    a = params[:, slope]
    if has_slope.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a = np.log(a)
            value = (
                -log_a
                - np.log(rows[:, 1])
                - _LOG_SQRT_2PI
                - 0.5 * ((log_a - rows[:, 0]) / rows[:, 1]) ** 2
            )
        out += np.where(has_slope, np.where(a > 0, value, -np.inf), 0.0)
    if has_location.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            b = -params[:, intercepts] / a[:, None]
            z = (b - rows[:, 2:3]) / rows[:, 3:4]
            value = (-0.5 * z**2 - np.log(rows[:, 3:4]) - _LOG_SQRT_2PI).sum(axis=1)
        out += np.where(has_location, np.where(np.isfinite(value), value, -np.inf), 0.0)
    if guessing is not None:
        has = ~np.isnan(rows[:, 4])
        if has.any():
            c = expit(params[:, guessing])
            value = (
                (rows[:, 4] - 1) * np.log(c)
                + (rows[:, 5] - 1) * np.log1p(-c)
                - betaln(rows[:, 4], rows[:, 5])
            )
            out += np.where(has, value, 0.0)
    return out


def gradient_and_information(
    family: str, params: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of :func:`log_density` and a positive semi-definite curvature.

    The curvature is the Fisher-scoring analogue for the prior terms: for the
    slope the curvature of the normal in ``log a`` (``1 / (sd a)^2``), for a
    location ``J^T J / sd^2`` with ``J = d b / d (a, d)``, for ``c`` the Beta's
    curvature in ``gamma``. Exact where it matters (at the mode of each
    term); the EM step is safeguarded by the objective anyway.

    Returns
    -------
    grad : ndarray, shape (n, p)
    info : ndarray, shape (n, p, p)
    """
    n, p = params.shape
    slope, intercepts, guessing, has_slope, has_location = _terms(family, params, rows)
    grad = np.zeros((n, p))
    info = np.zeros((n, p, p))
    a = params[:, slope]
    safe_a = np.where(a > 0, a, np.nan) if has_slope.any() else a
    if has_slope.any():
        log_a = np.log(np.where(has_slope, safe_a, 1.0))
        sd = np.where(has_slope, rows[:, 1], 1.0)
        g = -(1.0 + (log_a - np.where(has_slope, rows[:, 0], 0.0)) / sd**2) / np.where(
            has_slope, safe_a, 1.0
        )
        grad[:, slope] += np.where(has_slope, np.nan_to_num(g), 0.0)
        info[:, slope, slope] += np.where(
            has_slope, np.nan_to_num(1.0 / (sd * np.where(has_slope, safe_a, 1.0)) ** 2), 0.0
        )
    if has_location.any():
        rows_l = np.flatnonzero(has_location)
        ai = a[rows_l][:, None]
        d = params[np.ix_(rows_l, intercepts)]
        b = -d / ai
        z = (b - rows[rows_l, 2:3]) / rows[rows_l, 3:4] ** 2  # d(-log prior)/db
        # d b / d a = -b / a, d b / d d_k = -1 / a
        grad[rows_l, slope] += (z * b / ai).sum(axis=1)
        grad[np.ix_(rows_l, intercepts)] += z / ai
        w = 1.0 / rows[rows_l, 3] ** 2
        jac_a = -b / ai
        jac_d = -1.0 / ai
        info[rows_l, slope, slope] += w * (jac_a**2).sum(axis=1)
        for j, col in enumerate(intercepts):
            info[rows_l, slope, col] += w * jac_a[:, j] * jac_d[:, 0]
            info[rows_l, col, slope] += w * jac_a[:, j] * jac_d[:, 0]
            info[rows_l, col, col] += w * jac_d[:, 0] ** 2
    if guessing is not None:
        has = ~np.isnan(rows[:, 4])
        if has.any():
            c = expit(params[:, guessing])
            alpha = np.where(has, rows[:, 4], 1.0)
            beta = np.where(has, rows[:, 5], 1.0)
            grad[:, guessing] += (alpha - 1) * (1 - c) - (beta - 1) * c
            info[:, guessing, guessing] += (alpha + beta - 2) * c * (1 - c)
    return grad, info


def positive_slope(rows: np.ndarray) -> np.ndarray:
    """Items whose prior requires ``a > 0`` (a log-normal slope prior)."""
    return ~np.isnan(rows[:, 1])
