"""Marginal maximum likelihood (Bock-Aitkin EM over a quadrature grid) for one scale.

One area of the framework is one latent scale: a person's responses in area A
inform only their theta_A. :func:`fit_scale` calibrates the items of one scale
from sparse long-format responses.

Why it is fast on sparse adaptive data
--------------------------------------
Responses are kept as a sparse (units x codes) indicator matrix ``S`` where a
unit is one person on this scale and a code is one (item, category) pair. Then

* E-step: the log-likelihood of every unit at every quadrature point is
  ``S @ log P`` (codes x points), one sparse product over the observed
  responses only; the posterior over the grid follows row by row;
* expected response counts per item x category x point are ``S.T @ posterior``,
  so the M-step works on a (codes x points) table whose size does not depend
  on the number of persons;
* the M-step is one vectorised Fisher-scoring step per group of items with
  the same model and number of categories.

Nothing (persons x items x points) is ever built.

Standard errors come from the empirical cross-product (XPD) information: the
sum over units of the outer product of each unit's score vector (the
posterior expectation of the complete-data gradient at the estimates, Louis
1982, with the cross-product approximation), plus the curvature of the item
priors (:mod:`nangluc.calibration.priors`) when they are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from nangluc.calibration import kernels, priors

# Bounds keep a diverging item (a Heywood case) finite; an estimate on a bound
# is reported by the diagnostics, never silently accepted.
SLOPE_BOUND = 8.0
INTERCEPT_BOUND = 40.0
GAMMA_BOUND = 7.0
# Cost bound of the cross-product information (see _cross_product_covariance):
# about this many score products, from at least XPD_MIN_UNITS units.
XPD_BUDGET = 12_000_000
XPD_MIN_UNITS = 10_000
# Largest difference of the marginal log-likelihood between the fitted grid
# and one twice as fine (and wider) that fit_scale accepts (see fit_scale).
GRID_TOLERANCE = 0.01
# ... or this much per unit, when larger: on a scale of a million respondents
# 0.01 in total is a relative error of 1e-9, and each refinement doubles
# the cost of every later E-step.
GRID_TOLERANCE_PER_UNIT = 2e-8


@dataclass(frozen=True)
class ScaleItems:
    """The items of one scale, in local order.

    Attributes
    ----------
    family : tuple of str
        ``"graded"`` or ``"3pl"`` per item (2PL is graded with 2 categories).
    n_categories : ndarray of int, shape (n,)
    fixed : ndarray of bool, shape (n,)
        True for items whose parameters are held at ``start``.
    start : list of ndarray
        Starting (or fixed) slope-intercept parameters per item.
    prior : ndarray, shape (n, priors.PRIOR_WIDTH)
        Prior row per item (:data:`nangluc.calibration.priors.PRIOR_COLUMNS`;
        NaN columns: no prior). Default: no priors.
    """

    family: tuple[str, ...]
    n_categories: np.ndarray
    fixed: np.ndarray
    start: list[np.ndarray]
    prior: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.prior is None:
            object.__setattr__(
                self, "prior", np.full((len(self.family), priors.PRIOR_WIDTH), np.nan)
            )


@dataclass(frozen=True)
class ScaleFit:
    """Result of :func:`fit_scale` (slope-intercept parameters)."""

    params: list[np.ndarray]
    cov: list[np.ndarray | None]
    loglik: float
    log_prior: float
    iterations: int
    converged: bool
    latent_mean: float
    latent_sd: float
    eap: np.ndarray
    psd: np.ndarray
    expected_counts: list[np.ndarray]
    theta: np.ndarray
    latent_weights: np.ndarray
    grid_checks: tuple[dict[str, float], ...] = ()


def quadrature(n_points: int, bound: float = 6.0) -> np.ndarray:
    """Equally spaced quadrature points on ``[-bound, bound]``."""
    return np.linspace(-bound, bound, n_points)


def grid_for(
    row_sizes: np.ndarray,
    *,
    estimate_latent: bool,
    n_points: int | None = None,
    bound: float | None = None,
) -> np.ndarray:
    """The quadrature grid of one scale.

    The E-step costs one pass per grid point over every unit, so the grid is
    as coarse as accuracy allows. The rectangle rule on a smooth, roughly
    normal integrand of SD ``s`` has relative error about
    ``exp(-2 pi^2 s^2 / h^2)``; with spacing ``h = 1.4 s`` that is 5e-5. The
    narrowest posteriors that matter are those of units with many
    responses: ``s = 1 / sqrt(1 + 0.5 m)`` for the 90th percentile ``m`` of
    responses per unit (information 0.5 per response). Spacing is at most
    0.7; the grid spans [-5, 5] for an N(0, 1) latent and [-6, 6] when the
    latent mean/SD are estimated. ``n_points`` and ``bound`` override the rule
    (``fit_scale`` then checks the default grid against a finer one).
    """
    if bound is None:
        bound = 6.0 if estimate_latent else 5.0
    elif not bound > 0:
        raise ValueError(f"quadrature bound must be > 0, got {bound!r}")
    if n_points is None:
        m = float(np.percentile(row_sizes, 90)) if row_sizes.size else 1.0
        spacing = min(0.7, 1.4 / np.sqrt(1.0 + 0.5 * m))
        n_points = int(np.ceil(2 * bound / spacing)) + 1
        n_points += 1 - n_points % 2  # odd: theta = 0 is a grid point
    return quadrature(n_points, bound)


def _log_normal_weights(theta: np.ndarray, mean: float, sd: float) -> np.ndarray:
    log_w = -0.5 * ((theta - mean) / sd) ** 2
    return log_w - np.log(np.exp(log_w - log_w.max()).sum()) - log_w.max()


class _Scale:
    """Sparse bookkeeping of one scale (kept private; built once per fit).

    The E-step works in float32 (half the memory traffic of the dense
    units x points arrays, which dominate the cost) and sums the expected
    counts chunk by chunk into float64, so rounding does not build up over
    a million units.
    """

    CHUNK = 1 << 17

    def __init__(self, unit: np.ndarray, item: np.ndarray, response: np.ndarray, items: ScaleItems):
        self.items = items
        k = items.n_categories.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(k)[:-1]])
        self.n_codes = int(k.sum())
        self.n_units = int(unit.max()) + 1 if unit.size else 0
        code = self.offsets[item] + response
        ones = np.ones(unit.size, dtype=np.float32)
        self.S = sp.csr_matrix((ones, (unit, code)), shape=(self.n_units, self.n_codes))
        self.S.sum_duplicates()
        self.row_sizes = np.diff(self.S.indptr)
        self.unit, self.code = unit, code
        # Row blocks of S (built once; their values are rewritten every
        # E-step). A block's transpose is a CSC view, whose product scatters
        # each unit's posterior row into the small counts table while reading
        # the posterior in order (much faster than a CSR transpose).
        self.blocks = [
            (a, min(a + self.CHUNK, self.n_units)) for a in range(0, self.n_units, self.CHUNK)
        ]
        self.block_matrices = [self.S[a:b].copy() for a, b in self.blocks]
        # groups of items sharing the model and the number of categories
        groups: dict[tuple[str, int], list[int]] = {}
        for i, (fam, kk) in enumerate(zip(items.family, items.n_categories, strict=True)):
            groups.setdefault((fam, int(kk)), []).append(i)
        self.groups = [(fam, kk, np.array(ix)) for (fam, kk), ix in groups.items()]

    def code_rows(self, index: np.ndarray, n_categories: int) -> np.ndarray:
        return self.offsets[index][:, None] + np.arange(n_categories)[None, :]

    def log_table(self, params: list[np.ndarray], theta: np.ndarray) -> np.ndarray:
        table = np.zeros((self.n_codes, theta.size))
        for fam, kk, index in self.groups:
            block = kernels.log_probabilities(fam, np.stack([params[i] for i in index]), theta)
            table[self.code_rows(index, kk).ravel()] = block.transpose(0, 2, 1).reshape(
                -1, theta.size
            )
        return table

    def likelihood(
        self, table: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Likelihood of each unit on the grid (float32), its marginal and log scale.

        Log-likelihoods are <= 0, so exp() cannot overflow. A unit with a
        long, unlikely pattern can underflow float32: those units (found by a
        tiny marginal) are recomputed shifted by their maximum log-likelihood
        (``shift``, added back in the log-likelihood).
        """
        like = self.S @ table.astype(np.float32)
        np.exp(like, out=like)
        total = (like @ weight.astype(np.float32)).astype(np.float64)
        shift = np.zeros(self.n_units)
        low = np.flatnonzero(total < 1e-30)
        if low.size:
            redo = self.S[low].astype(np.float64) @ table
            shift[low] = redo.max(axis=1)
            like[low] = np.exp(redo - shift[low, None])
            total[low] = like[low].astype(np.float64) @ weight
        return like, total, shift

    def e_step(
        self, table: np.ndarray, log_prior: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
        """One E-step.

        Returns
        -------
        like : ndarray (U, Q) float32
            Likelihood on the grid (posterior = like * weight / total).
        total : ndarray (U,)
            Marginal likelihood of each unit (up to ``exp(shift)``).
        loglik : float
        counts : ndarray (codes, Q)
            Expected response counts per (item, category) and grid point.
        mass : ndarray (Q,)
            Posterior mass summed over units (for the latent distribution).
        """
        weight = np.exp(log_prior)
        like, total, shift = self.likelihood(table, weight)
        loglik = float(shift.sum() + np.log(total).sum())
        inverse = 1.0 / total
        # Scale the sparse matrix (R values) rather than the dense posterior
        # (U x Q values): posterior weights factor out of every column.
        values = np.repeat(inverse.astype(np.float32), self.row_sizes)
        counts = np.zeros((self.n_codes, like.shape[1]))
        mass = np.zeros(like.shape[1])
        for (a, b), block in zip(self.blocks, self.block_matrices, strict=True):
            block.data[:] = values[self.S.indptr[a] : self.S.indptr[b]]
            counts += block.T @ like[a:b]
            mass += inverse[a:b].astype(np.float32) @ like[a:b]
        counts *= weight[None, :]
        mass *= weight
        return like, total, loglik, counts, mass

    def posterior(self, like: np.ndarray, total: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
        """Normalised posterior over the grid, float64 (U, Q)."""
        post = like.astype(np.float64)
        post *= np.exp(log_prior)[None, :]
        post /= total[:, None]
        return post


def _objective(fam: str, params: np.ndarray, r: np.ndarray, prior: np.ndarray, theta: np.ndarray):
    """Expected complete-data log-likelihood plus log prior, per item."""
    prob, dprob = kernels.probabilities_and_derivatives(fam, params, theta)
    safe = np.maximum(prob, 1e-300)
    value = (r * np.log(safe)).sum(axis=(1, 2)) + priors.log_density(fam, params, prior)
    return value, prob, dprob, safe


def _valid(fam: str, params: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    ok = np.all(np.isfinite(params), axis=1)
    _, intercepts, _ = kernels.layout(fam, params.shape[1])
    if fam == kernels.GRADED and intercepts.size > 1:
        ok &= np.all(np.diff(params[:, intercepts], axis=1) < 0, axis=1)
    if prior is not None:
        # a log-normal slope prior has no mass at a <= 0
        ok &= ~priors.positive_slope(prior) | (params[:, 0] > 0)
    return ok


def fisher_scoring_step(
    fam: str, params: np.ndarray, r: np.ndarray, prior: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """One safeguarded Fisher-scoring step for a group of items.

    ``r`` holds the expected counts (n, Q, K); ``prior`` the items' prior rows.
    The step is capped at 1 per parameter and halved until the expected
    complete-data log-posterior does not decrease (so each EM cycle still
    never lowers the marginal posterior).
    """
    value, prob, dprob, safe = _objective(fam, params, r, prior, theta)
    ratio = r / safe
    grad = np.einsum("nqk,nqkp->np", ratio, dprob)
    weight = r.sum(axis=2)[:, :, None] / safe
    info = np.einsum("nqk,nqkp,nqkm->npm", weight, dprob, dprob)
    prior_grad, prior_info = priors.gradient_and_information(fam, params, prior)
    grad += prior_grad
    info += prior_info
    p = params.shape[1]
    info += 1e-8 * np.eye(p)[None]
    # A parameter on its bound that the gradient pushes outward is held there
    # (projected Newton): otherwise the clipped joint step spoils the other
    # parameters' steps, the halving shrinks it to nothing, and EM stops
    # far from the maximum as if it had converged.
    lower, upper = _bounds(fam, p, prior)
    active = ((params <= lower + 1e-9) & (grad < 0)) | ((params >= upper - 1e-9) & (grad > 0))
    if fam == kernels.SHARED:
        active[:, 0] = True  # the shared slope moves in shared_slope_step, not per item
    if active.any():
        rows, cols = np.nonzero(active)
        info = info.copy()
        info[rows, cols, :] = 0.0
        info[rows, :, cols] = 0.0
        info[rows, cols, cols] = 1.0
        grad = grad.copy()
        grad[rows, cols] = 0.0
    step = _solve(info, grad)
    step /= np.maximum(1.0, np.abs(step).max(axis=1, keepdims=True))
    new = params.copy()
    pending = np.ones(params.shape[0], dtype=bool)
    scale = 1.0
    for _ in range(12):
        trial = _clip(fam, params[pending] + scale * step[pending], prior[pending])
        trial_value, *_ = _objective(fam, trial, r[pending], prior[pending], theta)
        good = _valid(fam, trial, prior[pending]) & (
            trial_value >= value[pending] - 1e-9 * np.abs(value[pending])
        )
        rows = np.flatnonzero(pending)
        new[rows[good]] = trial[good]
        pending[rows[good]] = False
        if not pending.any():
            break
        scale *= 0.5
    return new


def _solve(info: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Newton steps ``info^-1 grad`` per item; least squares where ``info`` is singular.

    Without priors a 3PL item whose lower asymptote runs to 0 or 1 leaves
    its information (numerically) singular; its step then comes from the
    pseudo-inverse instead of failing the whole calibration.
    """
    try:
        return np.linalg.solve(info, grad[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.pinv(m) @ g for m, g in zip(info, grad, strict=True)])


def _bounds(fam: str, n_params: int, prior: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every parameter of a group, shape (n, p) each."""
    n = 1 if prior is None else prior.shape[0]
    slope, intercepts, guessing = kernels.layout(fam, n_params)
    upper = np.empty((n, n_params))
    upper[:, slope] = SLOPE_BOUND
    upper[:, intercepts] = INTERCEPT_BOUND
    if guessing is not None:
        upper[:, guessing] = GAMMA_BOUND
    lower = -upper
    if prior is not None:
        # a log-normal slope prior needs a strictly positive slope
        lower[priors.positive_slope(prior), slope] = 1e-3
    return lower, upper


def shared_slope_step(blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]], theta) -> float:
    """One safeguarded Fisher-scoring step for the slope shared by the 1PL/PCM items of a scale.

    ``blocks`` are ``(params, r, prior)`` of each group of shared-slope items
    (all rows carry the current slope in column 0). The expected
    complete-data log-posterior is a sum over the items, so its gradient and
    information in the shared slope are sums too; the step is halved until
    that sum does not decrease.
    """
    fam = kernels.SHARED

    def total(slope: float) -> float:
        value = 0.0
        for params, r, prior in blocks:
            trial = params.copy()
            trial[:, 0] = slope
            value += float(_objective(fam, trial, r, prior, theta)[0].sum())
        return value

    slope = float(blocks[0][0][0, 0])
    grad = info = 0.0
    for params, r, prior in blocks:
        _, prob, dprob, safe = _objective(fam, params, r, prior, theta)
        grad += float(np.einsum("nqk,nqk->", r / safe, dprob[..., 0]))
        info += float(np.einsum("nqk,nqk->", r.sum(axis=2)[:, :, None] / safe, dprob[..., 0] ** 2))
        prior_grad, prior_info = priors.gradient_and_information(fam, params, prior)
        grad += float(prior_grad[:, 0].sum())
        info += float(prior_info[:, 0, 0].sum())
    step = float(np.clip(grad / max(info, 1e-8), -1.0, 1.0))
    current = total(slope)
    for _ in range(12):
        trial = float(np.clip(slope + step, 1e-3, SLOPE_BOUND))
        if total(trial) >= current - 1e-10 * abs(current):
            return trial
        step *= 0.5
    return slope


def _clip(fam: str, params: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    lower, upper = _bounds(fam, params.shape[1], prior)
    return np.clip(params, lower, upper)


def at_bound(fam: str, params: np.ndarray) -> list[str]:
    """Names of the parameters of one item (slope-intercept row) that sit on their bound."""
    slope, intercepts, guessing = kernels.layout(fam, params.size)
    found = []
    if abs(params[slope]) >= SLOPE_BOUND - 1e-6:
        found.append("a")
    if np.any(np.abs(params[intercepts]) >= INTERCEPT_BOUND - 1e-6):
        found.append("b" if fam == kernels.THREEPL else "thresholds")
    if guessing is not None and abs(params[guessing]) >= GAMMA_BOUND - 1e-6:
        found.append("c")
    return found


class _EMState:
    """The EM map on a packed vector of the free parameters (and latent mean/SD)."""

    def __init__(self, scale, items, theta, params, free_groups, estimate_latent):
        self.scale, self.items, self.theta = scale, items, theta
        self.base = params
        self.free_groups = free_groups
        self.estimate_latent = estimate_latent
        self.free_index = [i for _, _, ix in free_groups for i in ix]

    def pack(self, params, mean, sd):
        parts = [params[i] for i in self.free_index]
        if self.estimate_latent:
            parts.append(np.array([mean, np.log(sd)]))
        return np.concatenate(parts) if parts else np.zeros(0)

    def unpack(self, x):
        params = list(self.base)
        pos = 0
        for i in self.free_index:
            n = self.base[i].size
            params[i] = x[pos : pos + n]
            pos += n
        mean, sd = (
            (float(x[pos]), float(np.exp(x[pos + 1]))) if self.estimate_latent else (0.0, 1.0)
        )
        return params, mean, sd

    def project(self, x):
        """Clip an extrapolated point to the bounds; None if it is not a valid model."""
        params, mean, sd = self.unpack(x)
        for fam, _, index in self.free_groups:
            prior = self.items.prior[index]
            block = _clip(fam, np.stack([params[i] for i in index]), prior)
            if not np.all(_valid(fam, block, prior)):
                return None
            for j, i in enumerate(index):
                params[i] = block[j]
        if self.estimate_latent and not (abs(mean) < 4 and 0.05 < sd < 10):
            return None
        return self.pack(params, mean, sd)

    def log_prior(self, params) -> float:
        """Sum of the free items' log prior densities."""
        total = 0.0
        for fam, _, index in self.free_groups:
            block = np.stack([params[i] for i in index])
            total += float(priors.log_density(fam, block, self.items.prior[index]).sum())
        return total

    def integrals(self, x, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """Per unit ``log sum_q w_q L(theta_q)`` with unnormalised normal weights, and ``log sum w``.

        The marginal log-likelihood on ``theta`` is the sum of the first
        minus the units times the second; integrals on two grids combine into
        the integral on their union (see :func:`fit_scale`).
        """
        params, mean, sd = self.unpack(x)
        table = self.scale.log_table(params, theta)
        log_w = -0.5 * ((theta - mean) / sd) ** 2
        _, total, shift = self.scale.likelihood(table, np.exp(log_w))
        return np.log(total) + shift, float(np.log(np.exp(log_w).sum()))

    def em_map(self, x):
        """One EM cycle from ``x``: the updated vector and the log-posterior at ``x``."""
        params, mean, sd = self.unpack(x)
        log_prior = _log_normal_weights(self.theta, mean, sd)
        table = self.scale.log_table(params, self.theta)
        _, _, loglik, counts, mass = self.scale.e_step(table, log_prior)
        objective = loglik + self.log_prior(params)
        shared = []
        for fam, kk, index in self.free_groups:
            r = counts[self.scale.code_rows(index, kk)].transpose(0, 2, 1)
            old = np.stack([params[i] for i in index])
            new = fisher_scoring_step(fam, old, r, self.items.prior[index], self.theta)
            for j, i in enumerate(index):
                params[i] = new[j]
            if fam == kernels.SHARED:
                shared.append((index, r))
        if shared:
            blocks = [
                (np.stack([params[i] for i in index]), r, self.items.prior[index])
                for index, r in shared
            ]
            slope = shared_slope_step(blocks, self.theta)
            for index, _ in shared:
                for i in index:
                    params[i] = params[i].copy()
                    params[i][0] = slope
        if self.estimate_latent:
            mean = float(mass @ self.theta / mass.sum())
            sd = float(np.sqrt(mass @ (self.theta - mean) ** 2 / mass.sum()))
        return self.pack(params, mean, sd), objective


def _squarem(
    state: _EMState,
    x: np.ndarray,
    budget: int,
    tol: float,
    on_iteration: Callable[[int, float, float], None] | None,
    done: int,
) -> tuple[np.ndarray, int, bool]:
    """EM accelerated by SQUAREM from ``x``; returns (x, E-steps used, converged).

    SQUAREM (Varadhan & Roland 2008, scheme S3) around the EM map: EM on
    sparse adaptive data converges slowly (much of the information about
    theta is missing), and the squared extrapolation cuts the number of
    E-steps several-fold while keeping EM's monotone objective.
    """
    evaluations = 0
    if x.size == 0:
        return x, 0, True
    while evaluations < budget:
        x1, objective0 = state.em_map(x)
        x2, _ = state.em_map(x1)
        evaluations += 2
        r = x1 - x
        v = x2 - x1 - r
        alpha = -np.sqrt((r @ r) / max(v @ v, 1e-300))
        alpha = min(-1.0, alpha)
        candidate = x2
        if alpha < -1.0:
            trial = state.project(x - 2 * alpha * r + alpha**2 * v)
            if trial is not None:
                stabilised, trial_objective = state.em_map(trial)
                evaluations += 1
                if np.isfinite(trial_objective) and trial_objective >= objective0 - 1e-8 * abs(
                    objective0
                ):
                    candidate = stabilised
        change = float(np.abs(candidate - x).max())
        x = candidate
        if on_iteration is not None:
            on_iteration(done + evaluations, objective0, change)
        if change < tol:
            return x, evaluations, True
    return x, evaluations, False


def _grid_check(state: _EMState, x: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Log-likelihood at ``x`` on the grid and on the grid with its midpoints added.

    The midpoint grid costs one E-step of the same size; its union with the
    grid is the grid of half the spacing, so the difference of the two
    log-likelihoods estimates the rectangle rule's error on the grid.
    Returns (on the grid, on the union, the union grid).
    """
    theta = state.theta
    spacing = theta[1] - theta[0]
    coarse, z_coarse = state.integrals(x, theta)
    middle, z_middle = state.integrals(x, theta[:-1] + spacing / 2)
    n = coarse.size
    loglik = float(coarse.sum() - n * z_coarse)
    union = float(np.logaddexp(coarse, middle).sum() - n * np.logaddexp(z_coarse, z_middle))
    return loglik, union, quadrature(2 * theta.size - 1, float(theta[-1]))


def fit_scale(
    unit: np.ndarray,
    item: np.ndarray,
    response: np.ndarray,
    items: ScaleItems,
    *,
    estimate_latent: bool = False,
    n_quadrature: int | None = None,
    quadrature_bound: float | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
    grid_tolerance: float | None = None,
    on_iteration: Callable[[int, float, float], None] | None = None,
    standard_errors: bool = True,
) -> ScaleFit:
    """Calibrate the items of one scale by marginal maximum likelihood (or posterior).

    Parameters
    ----------
    unit, item, response : ndarray, shape (R,)
        One entry per observed response: the unit (person on this scale,
        0..U-1, every unit with at least one response), the local item index
        and the scored category.
    items : ScaleItems
        Models, categories, fixed flags, starting values and priors.
    estimate_latent : bool
        Estimate the latent mean and SD (only meaningful when fixed items set
        the scale); otherwise the latent distribution is N(0, 1).
    n_quadrature : int, optional
        Number of equally spaced grid points; by default chosen from the
        data (:func:`grid_for`) and then checked (see ``grid_tolerance``).
    quadrature_bound : float, optional
        Half-width of the grid (default: 5, or 6 with ``estimate_latent``).
    max_iter, tol : int, float
        EM stops when the largest change of a free slope-intercept parameter
        (and of the latent mean/SD) is below ``tol``, or after ``max_iter``
        E-steps (then ``converged`` is False).
    grid_tolerance : float, optional
        Default: :data:`GRID_TOLERANCE` (0.01), or
        :data:`GRID_TOLERANCE_PER_UNIT` times the number of units when that
        is larger (0.02 for a million). After EM converges on the default
        grid, the marginal log-likelihood is recomputed on the grid of half the spacing (:func:`_grid_check`); if
        the two differ by more than this, EM continues on the finer grid, and
        so on (at most three times). Steep items need a finer grid than the
        data-driven default, and this is where they get it. With an estimated
        latent distribution the grid is also widened to its mean +- 6 SD.
        Not applied when ``n_quadrature`` or ``quadrature_bound`` is given.
    on_iteration : callable, optional
        Called as ``on_iteration(e_steps, objective, change)`` (progress).
    standard_errors : bool
        Compute the cross-product covariance of the free parameters.

    Returns
    -------
    ScaleFit
    """
    scale = _Scale(unit, item, response, items)
    if grid_tolerance is None:
        grid_tolerance = max(GRID_TOLERANCE, GRID_TOLERANCE_PER_UNIT * scale.n_units)
    theta = grid_for(
        scale.row_sizes,
        estimate_latent=estimate_latent,
        n_points=n_quadrature,
        bound=quadrature_bound,
    )
    free_groups = [(fam, kk, ix[~items.fixed[ix]]) for fam, kk, ix in scale.groups]
    free_groups = [g for g in free_groups if g[2].size]
    params = [np.asarray(p, dtype=float).copy() for p in items.start]
    state = _EMState(scale, items, theta, params, free_groups, estimate_latent)
    x = state.pack(params, 0.0, 1.0)
    evaluations = 0
    grid_checks: list[dict[str, float]] = []
    while True:
        x, used, converged = _squarem(
            state, x, max_iter - evaluations, tol, on_iteration, evaluations
        )
        evaluations += used
        user_grid = n_quadrature is not None or quadrature_bound is not None
        if not converged or user_grid or len(grid_checks) >= 3:
            break
        loglik, union, finer = _grid_check(state, x)
        _, mean, sd = state.unpack(x)
        bound = float(state.theta[-1])
        # an estimated latent distribution must stay well inside the grid
        wide = max(bound, abs(mean) + 6.0 * sd) if estimate_latent else bound
        evaluations += 2
        grid_checks.append(
            {"points": int(state.theta.size), "bound": bound, "loglik": loglik, "finer": union}
        )
        if abs(union - loglik) <= grid_tolerance and wide <= bound:
            break
        if wide > bound:
            spacing = (
                float(finer[1] - finer[0])
                if abs(union - loglik) > grid_tolerance
                else float(state.theta[1] - state.theta[0])
            )
            n = int(np.ceil(2 * wide / spacing)) + 1
            finer = quadrature(n + 1 - n % 2, wide)
        state = _EMState(scale, items, finer, params, free_groups, estimate_latent)
    theta = state.theta
    params, mean, sd = state.unpack(x)
    log_prior = _log_normal_weights(theta, mean, sd)
    # Final E-step at the estimates: log-likelihood, EAPs and the XPD.
    table = scale.log_table(params, theta)
    like, total, loglik, counts, _ = scale.e_step(table, log_prior)
    weight = np.exp(log_prior)
    eap = (like @ (weight * theta).astype(np.float32)) / total
    psd = np.sqrt(np.maximum((like @ (weight * theta**2).astype(np.float32)) / total - eap**2, 0.0))
    cov: list[np.ndarray | None] = [None] * len(params)
    if standard_errors and free_groups:
        cov = _cross_product_covariance(scale, params, like, total, log_prior, theta, free_groups)
    expected = [counts[scale.offsets[i] + np.arange(k)] for i, k in enumerate(items.n_categories)]
    return ScaleFit(
        params=params,
        cov=cov,
        loglik=loglik,
        log_prior=state.log_prior(params),
        iterations=evaluations,
        converged=converged,
        latent_mean=mean,
        latent_sd=sd,
        eap=eap,
        psd=psd,
        expected_counts=expected,
        theta=theta,
        latent_weights=np.exp(log_prior),
        grid_checks=tuple(grid_checks),
    )


def marginal_loglik(
    unit: np.ndarray,
    item: np.ndarray,
    response: np.ndarray,
    items: ScaleItems,
    theta: np.ndarray,
    *,
    mean: float = 0.0,
    sd: float = 1.0,
) -> float:
    """Marginal log-likelihood of one scale's responses at the parameters ``items.start``.

    The latent distribution is N(mean, sd) on the grid ``theta``.
    """
    scale = _Scale(unit, item, response, items)
    table = scale.log_table([np.asarray(p, dtype=float) for p in items.start], theta)
    weight = np.exp(_log_normal_weights(theta, mean, sd))
    _, total, shift = scale.likelihood(table, weight)
    return float(shift.sum() + np.log(total).sum())


def _cross_product_covariance(
    scale: _Scale,
    params: list[np.ndarray],
    like: np.ndarray,
    total: np.ndarray,
    log_prior: np.ndarray,
    theta: np.ndarray,
    free_groups: list[tuple[str, int, np.ndarray]],
) -> list[np.ndarray | None]:
    """Covariance of the free parameters from the empirical cross-product information.

    The information is a sum over units of outer products of their score
    vectors. When that sum would cost more than :data:`XPD_BUDGET` products
    it is estimated from a systematic sample of units (every k-th, at least
    :data:`XPD_MIN_UNITS`) and scaled to the full sample: the relative error
    of a standard error is then about ``1 / sqrt(2 n)`` for an item with
    ``n`` responses in the sample (2-3% at worst at the sizes where the
    sample is used).
    """
    items = scale.items
    n_items = len(params)
    width = np.zeros(n_items, dtype=np.int64)
    for fam, kk, index in free_groups:
        width[index] = kernels.n_params(fam, kk)
    first = np.concatenate([[0], np.cumsum(width)[:-1]])
    n_free = int(width.sum())
    p_max = int(width.max())
    # d log P / d params for every code, shape (codes, Q, p_max); zero for fixed items
    dlog = np.zeros((scale.n_codes, theta.size, p_max))
    col = np.full((scale.n_codes, p_max), -1, dtype=np.int64)
    for fam, kk, index in free_groups:
        prob, dprob = kernels.probabilities_and_derivatives(
            fam, np.stack([params[i] for i in index]), theta
        )
        ratio = dprob / np.maximum(prob, 1e-300)[..., None]
        rows = scale.code_rows(index, kk).ravel()
        p = kernels.n_params(fam, kk)
        dlog[rows, :, :p] = ratio.transpose(0, 2, 1, 3).reshape(-1, theta.size, p)
        col[rows, :p] = (
            (first[index][:, None, None] + np.arange(p)[None, None, :])
            .repeat(kk, axis=1)
            .reshape(-1, p)
        )
    # work per unit ~ (responses x parameters)^2: sample units to a budget
    work = float(np.mean(scale.row_sizes.astype(float) ** 2)) * p_max**2
    wanted = max(XPD_MIN_UNITS, int(XPD_BUDGET / max(work, 1.0)))
    step = max(1, -(-scale.n_units // wanted))
    sample = np.arange(0, scale.n_units, step)
    sub = scale.S[sample]
    post = like[sample].astype(np.float64) * np.exp(log_prior)[None, :] / total[sample, None]
    row_unit = np.repeat(np.arange(sample.size), np.diff(sub.indptr))
    codes = sub.indices
    post_rows = post[row_unit]
    # per-response score vectors g (rows x p_max) and their parameter columns
    score = np.stack(
        [np.einsum("rq,rq->r", post_rows, dlog[codes, :, j]) for j in range(p_max)], axis=1
    )
    del post_rows
    columns = col[codes]
    info = np.zeros(n_free * n_free)
    # Sum of outer products of each unit's score (the sum of its rows' g),
    # done per group of units with the same number of responses so the
    # pairs are a regular array; bincount adds them into the matrix.
    sizes = np.diff(sub.indptr)
    for m in np.unique(sizes):
        units = np.flatnonzero(sizes == m)
        per_chunk = max(1, 4_000_000 // int(m * p_max) ** 2)
        for a in range(0, units.size, per_chunk):
            rows = sub.indptr[units[a : a + per_chunk]][:, None] + np.arange(m)[None, :]
            g = score[rows].reshape(rows.shape[0], -1)
            c = columns[rows].reshape(rows.shape[0], -1)
            valid = (c[:, :, None] >= 0) & (c[:, None, :] >= 0)
            pair = c[:, :, None] * n_free + c[:, None, :]
            outer = g[:, :, None] * g[:, None, :]
            info += np.bincount(pair[valid], weights=outer[valid], minlength=n_free * n_free)
    info = info.reshape(n_free, n_free) * (scale.n_units / sample.size)
    # One slope shared by the 1PL/PCM items: its score is the sum of their
    # slope scores, so the information is T' I T with T adding those columns.
    shared_columns = [
        first[i] for fam, _, index in free_groups if fam == kernels.SHARED for i in index
    ]
    # MAP: the prior's curvature adds to the information
    for fam, _, index in free_groups:
        _, prior_info = priors.gradient_and_information(
            fam, np.stack([params[i] for i in index]), items.prior[index]
        )
        for j, i in enumerate(index):
            block = slice(first[i], first[i] + width[i])
            info[block, block] += prior_info[j]
    if len(shared_columns) > 1:
        keep = np.setdiff1d(np.arange(n_free), shared_columns[1:])
        transform = np.zeros((n_free, keep.size))
        transform[keep, np.arange(keep.size)] = 1.0
        transform[shared_columns[1:], int(np.searchsorted(keep, shared_columns[0]))] = 1.0
        reduced = transform.T @ info @ transform
        try:
            cov_all = transform @ np.linalg.inv(reduced) @ transform.T
        except np.linalg.LinAlgError:
            cov_all = transform @ np.linalg.pinv(reduced) @ transform.T
    else:
        try:
            cov_all = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov_all = np.linalg.pinv(info)
    out: list[np.ndarray | None] = [None] * n_items
    for i in range(n_items):
        if width[i]:
            out[i] = cov_all[first[i] : first[i] + width[i], first[i] : first[i] + width[i]]
    return out
