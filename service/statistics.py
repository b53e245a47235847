"""Group statistics for planner reports: level shares and mean scores with honest intervals.

A planner wants the share of a group's people at each level, and the mean
score, for the *true* scores, not for the test's estimates: a short adaptive
test places about one person in ten in a neighbouring level, and the errors
do not cancel when the group differs from the population the test's prior
assumes. Counting point classifications, or averaging each test's posterior
level probabilities, is biased by up to two points of share for a group one
standard deviation below the prior (``python -m benchmarks.report_coverage``
prints the figures).

What this module does instead is a deconvolution with a known measurement
model (Efron's *g-modelling*):

* every finished test contributes one count to a histogram of its estimated
  score (:data:`OBSERVED_BINS` bins of :data:`OBSERVED_WIDTH` points);
* the test's measurement model is a kernel ``K[j, b]``, the probability that
  a person whose true score lies in latent bin ``j`` (steps of
  :data:`LATENT_STEP` points) gets an estimate in observed bin ``b``. It is
  tabulated by running the real adaptive test on simulees
  (:func:`nangluc.simulations.measurement.measurement_model`), so it carries
  the item parameters, the selection, the stopping rule and the estimator's
  prior exactly as they act;
* the group's distribution of true scores is a smooth density ``g = exp(Q a)``
  on the latent grid (``Q`` cubic B-splines); expected counts are
  ``N g K``. The fit weighs each observed bin by its variance: Poisson
  sampling ``N f_b`` plus the variance of the privacy noise added to it, so
  noisy, even negative, counts are used as they are (they are unbiased);
* shares of levels, shares at or above a cut and the mean follow from ``g``;
  their standard errors come from the fit's covariance by the delta method.

The three sources of error of the issue are all in the interval: sampling
(the Poisson variance of the counts: the group is a sample of the population
it stands for), measurement (the kernel spreads each true score over the
estimates it produces) and the privacy noise (its variance in the weights).
What is *not* in it: the assumption that the bank's item parameters are right
(the kernel is computed from them) and the smoothness of ``g`` (a population
with a sharp notch is smoothed over).

Everything here is vectorised over groups: ``counts`` has one row per group
and all groups are fitted at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.estimation import normalized_exp
from nangluc.engine.scoring import Z_95, area_scores
from nangluc.engine.tables import bank_tables, log_normal_density

#: Width of the latent (true score) bins, in score points.
LATENT_STEP = 2.0
#: Number of latent bins covering 0..100.
LATENT_BINS = int(round(100 / LATENT_STEP))
#: Centres of the latent bins.
LATENT_CENTRES = (np.arange(LATENT_BINS) + 0.5) * LATENT_STEP
LATENT_CENTRES.setflags(write=False)
#: Observed (estimated) score histogram: 10 bins of 10 points; 100 falls in the last.
OBSERVED_BINS = 10
OBSERVED_WIDTH = 100.0 / OBSERVED_BINS

#: Default number of spline functions of a group's log-density. With eight, a
#: population of two humps (SD 10, 40 points apart) came out 2.3 points of
#: share too full in the valley between them (200,000 tests, no noise); twelve
#: follow it within 0.3 points, and under the roughness penalty they cost no
#: coverage for small, noisy groups (``benchmarks.report_coverage``: 93.3% of
#: shown figures either way).
DEFAULT_BASIS_SIZE = 12
#: Weight of the roughness penalty (see :func:`roughness_penalty`) and the
#: share of it that keeps a distribution from collapsing to a spike. Chosen
#: with ``benchmarks.report_coverage``: without the spread part, wards of a
#: few dozen tests under heavy privacy noise got confident, wrong one-level
#: fits (coverage 85%); 0.1 to 0.3 gave 94–95% (noise of ε = 2) and leave
#: large groups unchanged (95.5% without noise).
DEFAULT_SMOOTHING = 1.0
SPREAD_PENALTY = 0.1
#: A group's figures are shown when its estimated number of tests is at least
#: this many standard deviations of the noise on its total count
#: (:func:`precise_enough`). With ``benchmarks.report_coverage`` at ε = 1, the
#: area figures of small wards under heavy noise covered the truth 86% of the
#: time; withholding those below 1.5 SD brought the shown figures to 95%. The
#: rule also keeps cells with no test at all from showing as groups: their
#: noise alone passes 3 SD for 0.23% of cells (two of a ward x age table's
#: 784), 4 SD for 0.013%; 4 it is.
MIN_SIGNAL_TO_NOISE = 4.0


def observed_bin(score: np.ndarray | float) -> np.ndarray:
    """Observed histogram bin (0..9) of estimated scores (0..100; 100 is in the last bin)."""
    score = np.asarray(score, dtype=float)
    return np.clip(np.floor(score / OBSERVED_WIDTH), 0, OBSERVED_BINS - 1).astype(np.intp)


def latent_bin(score: np.ndarray | float) -> np.ndarray:
    """Latent bin (0..49) of true scores."""
    score = np.asarray(score, dtype=float)
    return np.clip(np.floor(score / LATENT_STEP), 0, LATENT_BINS - 1).astype(np.intp)


def discrete_laplace_variance(scale: float | np.ndarray) -> np.ndarray:
    """Variance of the discrete Laplace (two-sided geometric) noise of ``scale``.

    ``P(k) ∝ exp(-|k| / scale)``; its variance is ``2 q / (1 - q)^2`` with
    ``q = exp(-1 / scale)`` (about ``2 scale^2`` for large scales). A scale of
    0 means no noise.
    """
    scale = np.asarray(scale, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        q = np.exp(-1.0 / scale)
        variance = 2.0 * q / (1.0 - q) ** 2
    return np.where(scale > 0, variance, 0.0)


# ------------------------------------------------------------ observations
def observed_scores(
    bank: ItemBank, items: np.ndarray, responses: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The scores a planner release counts for N finished tests.

    Not the engine's final estimates, which borrow strength across areas
    through the prior's inter-area correlation: how such an area estimate
    spreads around its true score depends on the group's other areas, so one
    kernel would not serve every group (simulation: area intervals of wards
    one SD below the prior covered the truth 57% of the time).

    Each area's score from its own operational answers (EAP, standard
    normal prior, on the engine's quadrature grid), and the overall score as
    their mean over the areas with operational items (the engine's overall
    rule).

    Parameters
    ----------
    bank : ItemBank
    items : ndarray of int, shape (N, L)
        Administered items as bank indices, -1 padding.
    responses : ndarray of int, shape (N, L)
        Scored categories, aligned with ``items``.

    Returns
    -------
    overall : ndarray, shape (N,)
    areas : ndarray, shape (N, A)
    """
    items = np.atleast_2d(np.asarray(items, dtype=np.intp))
    responses = np.atleast_2d(np.asarray(responses, dtype=np.intp))
    if items.shape != responses.shape:
        raise ValueError("items and responses must have the same shape")
    tables = bank_tables(bank)
    n = items.shape[0]
    safe = np.where(items >= 0, items, 0)
    used = (items >= 0) & bank.operational[safe]
    rows, columns = np.nonzero(used)
    chosen = safe[rows, columns]
    loglik = np.zeros((n, bank.n_areas, tables.quadrature.size))
    np.add.at(
        loglik,
        (rows, bank.area[chosen]),
        tables.log_prob[chosen, responses[rows, columns]],
    )
    weight = normalized_exp(loglik + log_normal_density(0.0, 1.0))
    theta = weight @ tables.quadrature
    areas = area_scores(bank, theta)
    return areas @ tables.scored_area_weights, areas


def encode_bins(overall: float, areas: np.ndarray) -> str:
    """A finished test's observed bins as stored: one digit for the overall score, one per area.

    ``"4353344"``: overall bin 4, area bins 3, 5, 3, 3, 4, 4 (bank area order).
    SQL reads bin ``m`` as ``substr(report_bins, m + 1, 1)`` on SQLite and
    PostgreSQL alike.
    """
    bins = observed_bin(np.r_[overall, np.asarray(areas, dtype=float).ravel()])
    return "".join(str(int(b)) for b in bins)


# ----------------------------------------------------------------- kernels
@dataclass(frozen=True, eq=False)
class Kernel:
    """How a test's observed score relates to the true score, for one measure.

    An adaptive test does not measure everybody alike: which items, how many
    and from which areas depend on the answers, so a low-scoring group gets
    other items than a high-scoring one, and an area score's spread around
    the truth differs with the group's level. A kernel is therefore tabulated
    for populations centred at several levels (its *anchors*: the mean true
    overall score of each population) and read at the level of the group it
    serves (:meth:`at`); :attr:`pooled` is the kernel of all of them together.

    Attributes
    ----------
    matrices : ndarray, shape (S, LATENT_BINS, OBSERVED_BINS)
        ``matrices[s, j, b]`` = P(observed bin b | true score in latent bin j)
        in population s; rows of supported bins sum to 1.
    anchors : ndarray, shape (S,)
        Increasing mean true overall score of each population.
    pooled : ndarray, shape (LATENT_BINS, OBSERVED_BINS)
    support : ndarray of bool, shape (LATENT_BINS,)
        Latent bins the test can meet at all (true scores outside the range
        the bank's score functions reach have no row).
    simulees : int
        How many simulated tests the kernel was tabulated from.
    """

    matrices: np.ndarray
    anchors: np.ndarray
    pooled: np.ndarray
    support: np.ndarray
    simulees: int = 0

    def __post_init__(self) -> None:
        matrices = np.asarray(self.matrices, dtype=float)
        anchors = np.asarray(self.anchors, dtype=float)
        pooled = np.asarray(self.pooled, dtype=float)
        support = np.asarray(self.support, dtype=bool)
        shape = (LATENT_BINS, OBSERVED_BINS)
        if matrices.ndim != 3 or matrices.shape[1:] != shape or pooled.shape != shape:
            raise ValueError(f"kernel matrices must have shape (S, {shape[0]}, {shape[1]})")
        if anchors.shape != (matrices.shape[0],) or np.any(np.diff(anchors) <= 0):
            raise ValueError("a kernel needs one increasing anchor per matrix")
        if support.shape != (LATENT_BINS,) or not support.any():
            raise ValueError("a kernel needs a support mask with at least one latent bin")
        for m in (matrices, pooled):
            if not np.all(np.isfinite(m)) or np.any(m < 0):
                raise ValueError("kernel probabilities must be finite and >= 0")
            if not np.allclose(m[..., support, :].sum(axis=-1), 1.0, atol=1e-6):
                raise ValueError("every supported row of a kernel must sum to 1")
        for array in (matrices, anchors, pooled, support):
            array.setflags(write=False)
        object.__setattr__(self, "matrices", matrices)
        object.__setattr__(self, "anchors", anchors)
        object.__setattr__(self, "pooled", pooled)
        object.__setattr__(self, "support", support)

    def at(self, anchor: np.ndarray | None, groups: int) -> np.ndarray:
        """Kernel matrices for ``groups`` groups at their levels, (groups, LATENT_BINS, OBSERVED_BINS).

        ``anchor`` is each group's mean true overall score (linear
        interpolation between the tabulated populations, the nearest one
        beyond them); None gives every group the pooled kernel.
        """
        if anchor is None:
            return np.broadcast_to(self.pooled, (groups, *self.pooled.shape))
        anchor = np.broadcast_to(np.asarray(anchor, dtype=float), (groups,))
        anchor = np.where(np.isfinite(anchor), anchor, self.anchors.mean())
        if self.anchors.size == 1:
            return np.broadcast_to(self.matrices[0], (groups, *self.pooled.shape))
        upper = np.clip(np.searchsorted(self.anchors, anchor), 1, self.anchors.size - 1)
        lower = upper - 1
        t = np.clip(
            (anchor - self.anchors[lower]) / (self.anchors[upper] - self.anchors[lower]), 0.0, 1.0
        )
        return (1.0 - t)[:, None, None] * self.matrices[lower] + t[:, None, None] * self.matrices[
            upper
        ]

    @classmethod
    def tabulate(
        cls,
        true_scores: np.ndarray,
        observed_scores: np.ndarray,
        *,
        level: np.ndarray | None = None,
        level_centres: np.ndarray | None = None,
        overall: np.ndarray | None = None,
        bandwidth: float = 1.0,
        level_bandwidth: float = 0.5,
        shrinkage: float = 30.0,
        min_weight: float = 20.0,
    ) -> Kernel:
        """A kernel from simulated tests: their true and observed scores (0..100).

        Each latent bin's row is the histogram of the observed scores of
        simulees whose true score lies near the bin's centre, weighted by a
        Gaussian of ``bandwidth`` points (sparse bins borrow from their
        neighbours). Bins whose total weight is below ``min_weight`` are
        outside the support: the simulees, drawn widely around the prior, did
        not reach them, which for a bank's score function means nobody can.

        With ``level`` (each simulee's population level, e.g. its common
        ability shift), ``level_centres`` and ``overall`` (true overall
        scores), one matrix is tabulated per centre, weighting simulees by a
        Gaussian of ``level_bandwidth`` in ``level``; its anchor is the
        weighted mean of ``overall``. Rows with little weight lean on the
        pooled row (``shrinkage`` pseudo-simulees of it).
        """
        true_scores = np.asarray(true_scores, dtype=float).ravel()
        observed_scores = np.asarray(observed_scores, dtype=float).ravel()
        if true_scores.shape != observed_scores.shape or true_scores.size == 0:
            raise ValueError("need as many true as observed scores, at least one")
        if not (np.all(np.isfinite(true_scores)) and np.all(np.isfinite(observed_scores))):
            raise ValueError("scores must be finite")
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
        observed = observed_bin(observed_scores)
        rows = _kernel_rows(true_scores, observed, np.ones_like(true_scores), bandwidth)
        weight = rows.sum(axis=1)
        support = weight >= min_weight
        if not support.any():
            raise ValueError("too few simulated tests to tabulate a kernel")
        pooled = _normalised(rows, support)
        if level is None:
            return cls(pooled[None], np.array([0.0]), pooled, support, int(true_scores.size))
        level = np.asarray(level, dtype=float).ravel()
        overall = np.asarray(overall, dtype=float).ravel()
        centres = np.asarray(level_centres, dtype=float).ravel()
        if level.shape != true_scores.shape or overall.shape != true_scores.shape:
            raise ValueError("level and overall need one value per simulee")
        matrices, anchors = [], []
        for centre in centres:
            w = np.exp(-0.5 * ((level - centre) / level_bandwidth) ** 2)
            part = _kernel_rows(true_scores, observed, w, bandwidth)
            part = part + shrinkage * pooled
            matrices.append(_normalised(part, support))
            anchors.append(float((w * overall).sum() / w.sum()))
        return cls(np.stack(matrices), np.array(anchors), pooled, support, int(true_scores.size))

    def to_json(self) -> dict:
        def rounded(m):
            return [[round(float(x), 6) for x in row] for row in m]

        return {
            "latent_step": LATENT_STEP,
            "observed_width": OBSERVED_WIDTH,
            "simulees": self.simulees,
            "support": [bool(s) for s in self.support],
            "anchors": [round(float(a), 4) for a in self.anchors],
            "pooled": rounded(self.pooled),
            "matrices": [rounded(m) for m in self.matrices],
        }

    @classmethod
    def from_json(cls, data: dict) -> Kernel:
        if not isinstance(data, dict):
            raise TypeError("a kernel must be a JSON object")
        if data.get("latent_step") != LATENT_STEP or data.get("observed_width") != OBSERVED_WIDTH:
            raise ValueError("the kernel was tabulated on other bins than this version uses")
        support = np.asarray(data["support"], dtype=bool)
        # Rounding leaves rows a hair off 1.
        return cls(
            matrices=_normalised(np.asarray(data["matrices"], dtype=float), support),
            anchors=np.asarray(data["anchors"], dtype=float),
            pooled=_normalised(np.asarray(data["pooled"], dtype=float), support),
            support=support,
            simulees=int(data.get("simulees", 0)),
        )


def _kernel_rows(
    true_scores: np.ndarray, observed: np.ndarray, weight: np.ndarray, bandwidth: float
) -> np.ndarray:
    """Weighted observed-bin histograms around each latent centre, (LATENT_BINS, OBSERVED_BINS)."""
    order = np.argsort(true_scores)
    sorted_true, sorted_obs, sorted_w = true_scores[order], observed[order], weight[order]
    rows = np.zeros((LATENT_BINS, OBSERVED_BINS))
    reach = 4.0 * bandwidth
    for j, centre in enumerate(LATENT_CENTRES):
        lo, hi = np.searchsorted(sorted_true, [centre - reach, centre + reach])
        if hi > lo:
            w = sorted_w[lo:hi] * np.exp(-0.5 * ((sorted_true[lo:hi] - centre) / bandwidth) ** 2)
            rows[j] = np.bincount(sorted_obs[lo:hi], weights=w, minlength=OBSERVED_BINS)
    return rows


def _normalised(rows: np.ndarray, support: np.ndarray) -> np.ndarray:
    sums = rows.sum(axis=-1, keepdims=True)
    out = rows / np.where(sums > 0, sums, 1.0)
    out[..., ~support, :] = 0.0
    return out


# --------------------------------------------------------------------- fit
@dataclass(frozen=True, eq=False)
class LatentFit:
    """Fitted true-score distributions of M groups, with what the intervals need.

    Attributes
    ----------
    weights : ndarray, shape (M, LATENT_BINS)
        Probability of each latent bin (rows sum to 1).
    jacobian : ndarray, shape (M, LATENT_BINS, P)
        Derivative of ``weights`` with respect to the spline coefficients.
    covariance : ndarray, shape (M, P, P)
        Covariance of the spline coefficients (inverse of the weighted
        Gauss–Newton matrix at the optimum).
    tests, tests_se : ndarray, shape (M,)
        Estimated number of tests behind each group and its standard error
        (the sum of the noisy counts carries the noise of every bin).
    converged : ndarray of bool, shape (M,)
    """

    weights: np.ndarray
    jacobian: np.ndarray
    covariance: np.ndarray
    tests: np.ndarray
    tests_se: np.ndarray
    converged: np.ndarray
    kernels: int = 1

    @property
    def groups(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class Estimate:
    """Point estimates with standard errors and 95% intervals (arrays, one per group)."""

    value: np.ndarray
    se: np.ndarray
    low: np.ndarray
    high: np.ndarray


def spline_basis(support: np.ndarray, size: int = DEFAULT_BASIS_SIZE) -> np.ndarray:
    """Cubic B-spline functions over the supported latent range, (LATENT_BINS, size).

    Equally spaced knots; rows outside the support are zero (the fit gives
    those bins no mass at all). The functions sum to one at every supported
    bin, so adding a constant to all coefficients changes nothing.
    """
    from scipy.interpolate import BSpline

    if size < 4:
        raise ValueError(f"the spline basis needs at least 4 functions, got {size}")
    support = np.asarray(support, dtype=bool)
    inside = np.flatnonzero(support)
    lo = LATENT_CENTRES[inside[0]] - LATENT_STEP / 2
    hi = LATENT_CENTRES[inside[-1]] + LATENT_STEP / 2
    degree = 3
    inner = np.linspace(lo, hi, size - degree + 1)
    knots = np.r_[[lo] * degree, inner, [hi] * degree]
    x = np.clip(LATENT_CENTRES, lo, hi)
    basis = np.stack(
        [BSpline(knots, np.eye(size)[i], degree, extrapolate=False)(x) for i in range(size)],
        axis=1,
    )
    basis = np.nan_to_num(basis)
    basis[~support] = 0.0
    return basis


def roughness_penalty(size: int, smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """The prior on a group's log-density as a penalty matrix on its spline coefficients.

    ``smoothing * (D3' D3 + SPREAD_PENALTY * D2' D2)``: third differences of
    the coefficients vanish for a quadratic log-density (a normal
    distribution of true scores), so that part pulls a group towards the
    normal that fits it best and leaves that normal alone; the small second
    difference part keeps the normal from collapsing to a spike, which noisy
    counts of a small group would otherwise allow (with a spike the fit is
    sure of everything, and wrong). A tiny ridge pins the coefficients'
    common level, which changes no density.
    """
    second = np.diff(np.eye(size), n=2, axis=0)
    third = np.diff(np.eye(size), n=3, axis=0)
    return smoothing * (third.T @ third + SPREAD_PENALTY * second.T @ second) + 1e-6 * np.eye(size)


def fit_latent(
    counts: np.ndarray,
    kernels: list[Kernel] | tuple[Kernel, ...],
    noise_variance: np.ndarray | float = 0.0,
    *,
    anchor: np.ndarray | None = None,
    basis_size: int = DEFAULT_BASIS_SIZE,
    smoothing: float = DEFAULT_SMOOTHING,
    iterations: int = 60,
) -> LatentFit:
    """Fit each group's true-score distribution to its (noisy) observed histograms.

    Parameters
    ----------
    counts : ndarray, shape (M, V * OBSERVED_BINS)
        Per group, the observed histograms of V measurement models side by
        side (tests of several bank versions or test rules each have their
        own kernel; a group has one true-score distribution). Noisy counts
        may be negative.
    kernels : sequence of V Kernel
    noise_variance : float or ndarray broadcastable to ``counts``
        Variance of the privacy noise in each count (0: exact counts).
    anchor : ndarray, shape (M,), optional
        Each group's mean true overall score, to read the kernels at
        (:meth:`Kernel.at`); None uses the pooled kernels.
    basis_size, smoothing
        The log-density's spline functions and the weight of their roughness
        penalty.
    iterations : int
        Damped Gauss–Newton steps (all groups at once).

    Returns
    -------
    LatentFit
    """
    if not kernels:
        raise ValueError("need at least one kernel")
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    width = OBSERVED_BINS * len(kernels)
    if counts.ndim != 2 or counts.shape[1] != width:
        raise ValueError(
            f"counts must have shape (groups, {width}) for {len(kernels)} kernel(s), "
            f"got {counts.shape}"
        )
    if not np.all(np.isfinite(counts)):
        raise ValueError("counts must be finite")
    noise = np.broadcast_to(np.asarray(noise_variance, dtype=float), counts.shape)
    if np.any(noise < 0) or not np.all(np.isfinite(noise)):
        raise ValueError("noise variances must be finite and >= 0")
    support = np.logical_or.reduce([k.support for k in kernels])
    # A latent bin that one kernel does not support (another does) gets that
    # kernel's nearest supported row, so every stacked row stays a distribution.
    kernel = np.concatenate(
        [_filled(k, k.at(anchor, counts.shape[0])) for k in kernels], axis=2
    )  # (M, G, V*B)
    basis = spline_basis(support, basis_size)
    penalty = roughness_penalty(basis.shape[1], smoothing)
    n_groups, size, n_kernels = counts.shape[0], basis.shape[1], len(kernels)
    # Which kernel's block each observed column belongs to: every kernel has
    # its own number of tests (N_v), the true-score distribution is shared.
    block = np.repeat(np.eye(n_kernels), OBSERVED_BINS, axis=1)  # (V, V*B)
    alpha = np.zeros((n_groups, size))
    log_total = np.log(np.maximum(counts @ block.T, 1.0))  # (M, V)
    n_params = size + n_kernels
    eye = np.eye(n_params)
    converged = np.zeros(n_groups, dtype=bool)

    def model(alpha, log_total):
        eta = np.where(support, alpha @ basis.T, -np.inf)
        weights = np.exp(eta - eta.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        expected = (np.exp(log_total) @ block) * (weights[:, None, :] @ kernel)[:, 0, :]
        return weights, expected

    def objective(alpha, log_total, variance):
        _, expected = model(alpha, log_total)
        return ((counts - expected) ** 2 / variance).sum(axis=1) + np.einsum(
            "mp,pq,mq->m", alpha, penalty, alpha
        )

    def gauss_newton(alpha, log_total):
        weights, expected = model(alpha, log_total)
        variance = np.maximum(expected, 0.5) + noise
        d_weights = weights[:, :, None] * (basis[None] - (weights @ basis)[:, None, :])
        column_total = np.exp(log_total) @ block  # (M, V*B)
        jac = np.concatenate(
            [
                column_total[:, :, None] * (kernel.transpose(0, 2, 1) @ d_weights),
                expected[:, :, None] * block.T[None, :, :],
            ],
            axis=2,
        )
        inverse = 1.0 / variance
        hessian = (jac * inverse[:, :, None]).transpose(0, 2, 1) @ jac
        hessian[:, :size, :size] += penalty
        gradient = ((inverse * (counts - expected))[:, None, :] @ jac)[:, 0, :]
        gradient[:, :size] -= alpha @ penalty
        return weights, d_weights, variance, hessian, gradient

    # The number of tests of a kernel's block stays between half a test and
    # a billion: a block of pure noise (no tests of that kind) drifts to the
    # lower end instead of to zero's logarithm.
    log_bounds = (math.log(0.5), math.log(1e9))
    log_total = np.clip(log_total, *log_bounds)
    for _ in range(iterations):
        _, _, variance, hessian, gradient = gauss_newton(alpha, log_total)
        step = np.linalg.solve(hessian + 1e-9 * eye, gradient[:, :, None])[:, :, 0]
        # Long steps (far from the optimum, or a nearly flat objective) are
        # shortened: the spline coefficients are of order one.
        step *= np.minimum(1.0, 4.0 / np.maximum(np.abs(step).max(axis=1), 1e-300))[:, None]
        before = objective(alpha, log_total, variance)
        scale = np.ones(n_groups)
        for _ in range(12):
            new_alpha = alpha + scale[:, None] * step[:, :size]
            new_total = np.clip(log_total + scale[:, None] * step[:, size:], *log_bounds)
            after = objective(new_alpha, new_total, variance)
            worse = ~(after <= before + 1e-12)  # NaN counts as worse
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        # A group whose step did not help in 12 halvings keeps its estimate.
        keep = ~(objective(new_alpha, new_total, variance) <= before + 1e-12)
        new_alpha = np.where(keep[:, None], alpha, new_alpha)
        new_total = np.where(keep[:, None], log_total, new_total)
        converged = keep | (np.abs(scale[:, None] * step).max(axis=1) < 1e-6)
        alpha, log_total = new_alpha, new_total
        if converged.all():
            break
    weights, d_weights, _, hessian, _ = gauss_newton(alpha, log_total)
    covariance = np.linalg.pinv(hessian)
    totals = np.exp(log_total)  # (M, V)
    # Variance of N = sum_v N_v: d N / d log N_v = N_v.
    total_cov = covariance[:, size:, size:]
    tests_var = np.einsum("mv,mvw,mw->m", totals, total_cov, totals)
    return LatentFit(
        weights=weights,
        jacobian=d_weights,
        covariance=covariance[:, :size, :size],
        tests=totals.sum(axis=1),
        tests_se=np.sqrt(np.maximum(tests_var, 0.0)),
        converged=converged,
        kernels=n_kernels,
    )


def _filled(kernel: Kernel, matrices: np.ndarray) -> np.ndarray:
    """``matrices`` (M, G, B) with unsupported rows copied from the nearest supported one."""
    inside = np.flatnonzero(kernel.support)
    nearest = inside[np.abs(np.arange(LATENT_BINS)[:, None] - inside[None, :]).argmin(axis=1)]
    return matrices[:, nearest, :]


def fit_matched(
    counts: np.ndarray,
    kernels: list[Kernel] | tuple[Kernel, ...],
    noise_variance: np.ndarray | float = 0.0,
    *,
    anchor: np.ndarray | None = None,
    **options,
) -> LatentFit:
    """:func:`fit_latent` with each group's kernels read at the group's own level.

    With ``anchor`` (each group's mean true overall score, e.g. from its
    overall fit) one fit at those levels; without it (the overall score
    itself) a first fit on the pooled kernels gives the level and a second
    fit uses it.
    """
    if anchor is None:
        # The level only picks the kernel: a rough first fit is enough.
        first = fit_latent(counts, kernels, noise_variance, **{**options, "iterations": 12})
        anchor = mean_score(first).value
    return fit_latent(counts, kernels, noise_variance, anchor=anchor, **options)


def precise_enough(counts: np.ndarray, noise_variance: np.ndarray | float) -> np.ndarray:
    """Whether each group's counts say more than their privacy noise, (M,) bool.

    A group is reported when its (noisy) number of tests is at least
    :data:`MIN_SIGNAL_TO_NOISE` times the standard deviation of the noise on
    that number. Below it the counts are mostly noise: a fit can put
    everything in one level and be sure of it, and a cell with no test at
    all would now and then look like a group. The rule reads only released
    counts and the known noise, so it leaks nothing.

    Parameters
    ----------
    counts : ndarray, shape (M, K)
        The groups' noisy counts (any number of bins and kernels side by side).
    noise_variance : float or ndarray broadcastable to ``counts``
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    noise = np.broadcast_to(np.asarray(noise_variance, dtype=float), counts.shape)
    return counts.sum(axis=1) >= MIN_SIGNAL_TO_NOISE * np.sqrt(noise.sum(axis=1))


# ------------------------------------------------------------ quantities
def _interval(value: np.ndarray, se: np.ndarray, low: float, high: float) -> Estimate:
    return Estimate(
        value=value,
        se=se,
        low=np.clip(value - Z_95 * se, low, high),
        high=np.clip(value + Z_95 * se, low, high),
    )


def _linear(fit: LatentFit, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value and standard error of ``sum_j c_j g_j`` for each group (c: (G,) or (M, G))."""
    coefficients = np.broadcast_to(coefficients, fit.weights.shape)
    value = (fit.weights * coefficients).sum(axis=1)
    gradient = np.einsum("mgp,mg->mp", fit.jacobian, coefficients)
    variance = np.einsum("mp,mpq,mq->m", gradient, fit.covariance, gradient)
    return value, np.sqrt(np.maximum(variance, 0.0))


def band_weights(lower: float, upper: float) -> np.ndarray:
    """Fraction of each latent bin inside ``[lower, upper)`` (uniform within a bin)."""
    left = LATENT_CENTRES - LATENT_STEP / 2
    right = LATENT_CENTRES + LATENT_STEP / 2
    overlap = np.clip(np.minimum(right, upper) - np.maximum(left, lower), 0.0, LATENT_STEP)
    return overlap / LATENT_STEP


def share_between(fit: LatentFit, lower: float, upper: float) -> Estimate:
    """Share of each group whose true score lies in ``[lower, upper)``."""
    value, se = _linear(fit, band_weights(lower, upper))
    return _interval(np.clip(value, 0.0, 1.0), se, 0.0, 1.0)


def share_at_least(fit: LatentFit, cut: float) -> Estimate:
    """Share of each group whose true score is at least ``cut``."""
    return share_between(fit, cut, math.inf)


def mean_score(fit: LatentFit) -> Estimate:
    """Mean true score of each group (0..100)."""
    value, se = _linear(fit, LATENT_CENTRES)
    return _interval(value, se, 0.0, 100.0)


def difference(after: Estimate, before: Estimate, *, bound: float = 1.0) -> Estimate:
    """``after - before`` of two independent estimates, with its 95% interval.

    ``bound`` clips the interval to ``[-bound, bound]`` (1 for shares, 100
    for scores).
    """
    value = after.value - before.value
    se = np.sqrt(after.se**2 + before.se**2)
    return _interval(value, se, -bound, bound)
